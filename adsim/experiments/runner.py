"""Scenario → results: the ``adsim run`` pipeline.

1. build the world from the scenario (seeded);
2. log a *training* log and an *evaluation* log under the logging policy π0, with propensities;
3. fit the reward model q̂ (for DM/DR) and the learning candidates on the training log;
4. for every candidate π: its exact value V(π) (oracle), each estimator's estimate on the
   evaluation log with a confidence interval, optionally an on-policy simulation;
5. write ``leaderboard.csv``, ``results.json``, ``log.parquet``, ``estimates.png``, ``report.md``.

Every random draw comes from one :class:`numpy.random.SeedSequence` of the scenario seed, split
into independent streams per stage, so the same scenario and seed give byte-identical
``results.json`` and ``leaderboard.csv``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from adsim import __version__
from adsim._io import atomic_dir, check_output_dir, write_json, write_with
from adsim.config import Scenario
from adsim.env.features import Contexts
from adsim.env.oracle import policy_value
from adsim.env.world import World
from adsim.estimators.ope import make_estimator
from adsim.experiments.leaderboard import PolicyResult, build_leaderboard, format_table
from adsim.experiments.plots import plot_estimates
from adsim.experiments.report import write_report
from adsim.policies.base import BanditPolicy
from adsim.policies.factory import PolicyBuilder, policy_label

__all__ = ["RunResult", "run_scenario", "library_versions"]


@dataclass
class RunResult:
    """What a run produced (also written to its output folder)."""

    scenario: Scenario
    leaderboard: pd.DataFrame
    results: dict[str, object]
    files: list[Path] = field(default_factory=list)

    def table(self) -> str:
        return format_table(self.leaderboard)


def library_versions() -> dict[str, str]:
    import scipy
    import sklearn

    return {
        "adsim": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
        "pandas": pd.__version__, "scikit-learn": sklearn.__version__,
        "python": ".".join(map(str, sys.version_info[:3])),
    }


def _online_value(
    world: World, policy: BanditPolicy, n_rounds: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Mean reward (and its standard error) of ``policy`` simulated on-policy."""
    log = world.collect(policy, n_rounds, rng)
    return float(log.reward.mean()), float(log.reward.std(ddof=1) / np.sqrt(log.n_rounds))


def run_scenario(
    scenario: Scenario, out_dir: str | os.PathLike[str] | None = None, progress: bool = True
) -> RunResult:
    """Run ``scenario``; write its result files to ``out_dir`` (if given).

    ``out_dir`` is checked before any work and written as a whole (:func:`adsim._io.atomic_dir`):
    a failed or killed run leaves no folder there (or the previous one, untouched).
    """
    if out_dir is not None:
        check_output_dir(out_dir, kind="scenario")
    if scenario.bidding is not None:  # the bidding leaderboard (issue 5)
        from adsim.experiments.bidding import run_bidding

        return run_bidding(scenario, out_dir, progress)  # type: ignore[return-value]
    if scenario.auction is not None:  # an auction day (issue 3)
        from adsim.experiments.auction_runner import run_auction_scenario

        return run_auction_scenario(scenario, out_dir, progress)  # type: ignore[return-value]
    ev = scenario.evaluation
    streams = np.random.SeedSequence(scenario.seed).spawn(6)
    rng_world, rng_logger, rng_train, rng_eval, rng_policy, rng_online = (
        np.random.default_rng(s) for s in streams
    )
    candidates = list(scenario.candidates)
    steps = 4 + len(candidates)
    bar = tqdm(total=steps, desc=scenario.name, disable=not progress, file=sys.stderr, leave=False)

    bar.set_postfix_str("world")
    world = World.from_config(scenario.world, rng_world)
    logger = PolicyBuilder(world, rng_logger).build(scenario.logging_policy)
    logger.name = f"logger ({policy_label(scenario.logging_policy)})"
    bar.update()

    bar.set_postfix_str("logging")
    train_log = world.collect(logger, ev.n_train_rounds, rng_train)
    log = world.collect(logger, ev.n_rounds, rng_eval)
    assert log.context is not None
    ctx = Contexts.from_frame(log.context, world.spec)
    bar.update()

    bar.set_postfix_str("reward model")
    builder = PolicyBuilder(world, rng_policy, train_log=train_log)
    needs_q = any(make_estimator(e).needs_reward_model for e in ev.estimators)
    q_hat = builder.fitted_model().predict(ctx) if needs_q else None
    bar.update()

    # overlap problems are collected per policy (and shown by the CLI), not raised as warnings
    estimators = [make_estimator(e, confidence=ev.confidence, warn=False) for e in ev.estimators]
    results: list[PolicyResult] = []
    for cfg in [None, *candidates]:
        policy = logger if cfg is None else builder.build(cfg)
        bar.set_postfix_str(policy.name)
        pi = policy.action_dist(ctx)
        res = PolicyResult(policy.name, policy_value(world, policy))
        res.estimates = [est.estimate(log, pi, reward_model=q_hat) for est in estimators]
        diag = res.estimates[0].diagnostics
        if diag is not None:
            res.overlap = diag.to_dict()
            res.problems = diag.problems()
        if ev.n_online_rounds:
            res.online_value, res.online_std_err = _online_value(
                world, policy, ev.n_online_rounds, rng_online
            )
        results.append(res)
        bar.update()
    bar.close()

    board = build_leaderboard(results)
    board.attrs["confidence"] = ev.confidence
    summary: dict[str, object] = {
        "scenario": scenario.model_dump(mode="json"),
        "seed": scenario.seed,
        "versions": library_versions(),
        "world": {
            "n_users": world.population.n_users, "n_actions": world.n_actions,
            "design_dim": world.spec.design_dim, "reward": world.reward,
        },
        "log": {
            "n_rounds": log.n_rounds,
            "n_train_rounds": train_log.n_rounds,
            "mean_reward": float(log.reward.mean()),
            "min_pscore": float(log.pscore.min()),
            "mean_pscore": float(log.pscore.mean()),
        },
        "policies": [r.to_dict() for r in results],
    }
    run = RunResult(scenario, board, summary)
    if out_dir is not None:
        final = Path(out_dir)
        with atomic_dir(final, "scenario") as out:  # built aside, manifest.json last, renamed into place
            write_with(out / "leaderboard.csv", lambda tmp: board.to_csv(tmp, index=False))
            write_json(out / "results.json", summary)
            log.to_parquet(out / "log.parquet")
            plot_estimates(board, out / "estimates.png")
            write_report(
                out / "report.md", name=scenario.name, description=scenario.description,
                seed=scenario.seed, table=run.table(), figures=["estimates.png"],
                facts={
                    "users × ads": f"{world.population.n_users} × {world.n_actions}",
                    "logging policy": logger.name,
                    "logged rounds (evaluation / training)": f"{log.n_rounds} / {train_log.n_rounds}",
                    "mean logged reward": f"{log.reward.mean():.4f}",
                    "min propensity": f"{log.pscore.min():.4g}",
                },
                command=f"adsim run <scenario.yaml> --seed {scenario.seed}",
            )
        run.files = [final / n for n in
                     ("leaderboard.csv", "results.json", "log.parquet", "estimates.png", "report.md")]
    return run
