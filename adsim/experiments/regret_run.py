"""The ``learn: online`` candidates of a bandit scenario: run, summarise, write.

:func:`run_online_candidates` builds every candidate declared ``learn: online`` at its prior,
lets it learn on the scenario's traffic for ``evaluation.online_rounds`` requests in batches
(``evaluation.online_batch`` or the candidate's own ``online_batch``), ``evaluation.n_seeds``
times, and scores it by cumulative regret against the exact per-round oracle
(:mod:`adsim.experiments.regret`). :meth:`OnlineSection.write` puts into the run folder

- ``regret.csv`` — one row per learner (final regret ± interval, log–log slope, rewards);
- ``regret_curves.csv`` — the curves: mean and band over seeds at log- and evenly-spaced rounds;
- ``regret.png`` — the curves, linear and log–log;
- ``online_logs/<learner>.parquet`` — seed 0's decisions with the learner's own propensities,
  readable by ``adsim ope --log``.

The traffic of seed i is the child ``(6, i)`` of the scenario seed's
:class:`numpy.random.SeedSequence` (the runner's six stages use children 0–5), so adding or
removing an online learner changes nothing else in the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adsim._figures import save_figure
from adsim._io import write_with
from adsim.config import Scenario
from adsim.env.world import World
from adsim.experiments.builders import PolicyBuilder, policy_label
from adsim.experiments.regret import (
    LearnerTrace,
    format_regret_table,
    log_filename,
    regret_curves,
    run_learners,
    summarise_learners,
)
from adsim.experiments.regret_plots import plot_regret_curves

__all__ = ["OnlineSection", "online_candidates", "run_online_candidates"]

ONLINE_STREAM = 6  # SeedSequence child of the scenario seed used for the learners' traffic


def online_candidates(scenario: Scenario) -> list[Any]:
    """The candidates declared ``learn: online``."""
    return [c for c in scenario.candidates if getattr(c, "learn", "offline") == "online"]


@dataclass
class OnlineSection:
    """What the online learners produced."""

    board: pd.DataFrame
    curves: pd.DataFrame
    traces: dict[str, list[LearnerTrace]]
    settings: dict[str, Any]
    confidence: float
    decades: float
    files: list[Path] = field(default_factory=list)

    def table(self) -> str:
        return format_regret_table(self.board, self.decades)

    def to_dict(self) -> dict[str, Any]:
        return {**self.settings, "learners": self.board.to_dict(orient="records")}

    def write(self, out: Path, colors: dict[str, str] | None = None) -> list[Path]:
        """Write the section's files into the run folder ``out`` (figures with the run's
        ``colors``); returns their paths."""
        write_with(out / "regret.csv", lambda tmp: self.board.to_csv(tmp, index=False))
        write_with(out / "regret_curves.csv", lambda tmp: self.curves.to_csv(tmp, index=False))
        fig = plot_regret_curves(
            self.curves, colors=colors,
            band_label=f"{self.confidence:.0%} band over {self.settings['n_seeds']} seeds",
        )
        files = [out / "regret.csv", out / "regret_curves.csv", *save_figure(fig, out / "regret")]
        logs = out / "online_logs"
        logs.mkdir(exist_ok=True)
        for name, runs in self.traces.items():
            assert runs[0].log is not None
            path = logs / log_filename(name)
            runs[0].log.to_parquet(path)
            files.append(path)
        self.files = files
        return files


def run_online_candidates(
    scenario: Scenario, world: World, builder: PolicyBuilder, progress: bool = True
) -> OnlineSection | None:
    """Run the scenario's ``learn: online`` candidates (None if it has none)."""
    cfgs = online_candidates(scenario)
    if not cfgs:
        return None
    ev = scenario.evaluation
    make = {policy_label(c): (lambda seed, c=c: builder.fresh(c, seed)) for c in cfgs}
    batches = {policy_label(c): c.online_batch or ev.online_batch for c in cfgs}
    root = np.random.SeedSequence(scenario.seed, spawn_key=(ONLINE_STREAM,))
    traces = run_learners(
        world, make, ev.online_rounds, root.spawn(ev.n_seeds), batches, ev.online_delay, progress
    )
    board = summarise_learners(world, traces, batches, ev.confidence, ev.slope_decades)
    settings = {
        "rounds": ev.online_rounds, "batch": ev.online_batch, "delay_batches": ev.online_delay,
        "n_seeds": ev.n_seeds, "slope_decades": ev.slope_decades, "confidence": ev.confidence,
        "regret": "sum over rounds of max_a q(x_t, a) - q(x_t, a_t), q = the world's exact"
                  " expected reward",
        "logs": {name: f"online_logs/{log_filename(name)}" for name in traces},
    }
    return OnlineSection(
        board, regret_curves(traces, ev.confidence), traces, settings, ev.confidence,
        ev.slope_decades,
    )
