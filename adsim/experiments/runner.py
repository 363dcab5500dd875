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

from adsim._figures import save_figure
from adsim._io import atomic_dir, check_output_dir, write_json, write_with
from adsim.config import Scenario
from adsim.env.features import Contexts
from adsim.env.oracle import policy_value
from adsim.env.world import World
from adsim.estimators.registry import make_estimator
from adsim.experiments.builders import PolicyBuilder, policy_label
from adsim.experiments.html_report import finish_run_folder
from adsim.experiments.leaderboard import PolicyResult, build_leaderboard, format_table
from adsim.experiments.plots import plot_estimates
from adsim.experiments.regret_run import run_online_candidates
from adsim.experiments.report import reproduce_command, write_report
from adsim.experiments.versions import library_versions
from adsim.experiments.world_models import scenario_world
from adsim.policies.base import BanditPolicy

__all__ = ["RunResult", "run_scenario", "library_versions"]


@dataclass
class RunResult:
    """What a run produced (also written to its output folder)."""

    scenario: Scenario
    leaderboard: pd.DataFrame
    results: dict[str, object]
    files: list[Path] = field(default_factory=list)
    #: the regret table of the ``learn: online`` candidates (empty if none)
    online_table: str = ""

    def table(self) -> str:
        board = format_table(self.leaderboard)
        return f"{board}\n\nlearning online:\n{self.online_table}" if self.online_table else board


def _online_value(
    world: World, policy: BanditPolicy, n_rounds: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Mean reward (and its standard error) of ``policy`` simulated on-policy."""
    log = world.collect(policy, n_rounds, rng)
    return float(log.reward.mean()), float(log.reward.std(ddof=1) / np.sqrt(log.n_rounds))


def _rl_candidates(scenario: Scenario, world: World, no_train: bool, progress: bool) -> dict:
    """Train (or load from the build cache) the scenario's ``type: rl`` candidates."""
    from adsim.experiments.rl_train import ensure_rl_bandit

    return {
        policy_label(cfg): ensure_rl_bandit(scenario, world, cfg, no_train=no_train, progress=progress)
        for cfg in scenario.candidates if cfg.type == "rl"
    }


def run_scenario(
    scenario: Scenario, out_dir: str | os.PathLike[str] | None = None, progress: bool = True,
    no_train: bool = False,
) -> RunResult:
    """Run ``scenario``; write its result files to ``out_dir`` (if given).

    A trained world the scenario names by its training config (``world.truth.train``) and RL
    agents the build cache lacks are trained first, unless ``no_train``: then a miss is a
    :class:`~adsim.errors.ConfigError`.

    ``out_dir`` is checked before any work and written as a whole (:func:`adsim._io.atomic_dir`):
    a failed or killed run leaves no folder there (or the previous one, untouched).
    """
    if out_dir is not None:
        check_output_dir(out_dir, kind="scenario")
    if scenario.bidding is not None:  # the bidding leaderboard (issue 5)
        from adsim.experiments.bidding import run_bidding

        return run_bidding(scenario, out_dir, progress, no_train=no_train)  # type: ignore[return-value]
    if scenario.auction is not None:  # an auction day (issue 3)
        from adsim.experiments.auction_runner import run_auction_scenario

        return run_auction_scenario(scenario, out_dir, progress, no_train=no_train)  # type: ignore[return-value]
    ev = scenario.evaluation
    streams = np.random.SeedSequence(scenario.seed).spawn(6)
    rng_world, rng_logger, rng_train, rng_eval, rng_policy, rng_online = (
        np.random.default_rng(s) for s in streams
    )
    # candidates with learn: online get a regret report instead (adsim.experiments.regret_run)
    candidates = [c for c in scenario.candidates if getattr(c, "learn", "offline") != "online"]
    steps = 4 + len(candidates)
    bar = tqdm(total=steps, desc=scenario.name, disable=not progress, file=sys.stderr, leave=False)

    bar.set_postfix_str("world")
    world = scenario_world(scenario, rng_world, no_train=no_train, progress=progress)
    logger = PolicyBuilder(world, rng_logger).build(scenario.logging_policy)
    logger.name = f"logger ({policy_label(scenario.logging_policy)})"
    bar.update()

    bar.set_postfix_str("logging")
    train_log = world.collect(logger, ev.n_train_rounds, rng_train)
    log = world.collect(logger, ev.n_rounds, rng_eval)
    assert log.context is not None
    ctx = Contexts.from_frame(log.context, world.spec)
    bar.update()

    rl_agents = _rl_candidates(scenario, world, no_train, progress)
    bar.set_postfix_str("reward model")
    builder = PolicyBuilder(world, rng_policy, train_log=train_log)
    needs_q = any(make_estimator(e).needs_reward_model for e in ev.estimators)
    q_hat = builder.fitted_model().predict(ctx) if needs_q else None
    bar.update()

    # overlap problems are collected per policy (and shown by the CLI), not raised as warnings
    estimators = [make_estimator(e, confidence=ev.confidence, warn=False) for e in ev.estimators]
    results: list[PolicyResult] = []
    for cfg in [None, *candidates]:
        if cfg is not None and cfg.type == "rl":
            from adsim.policies.rl import RLBanditPolicy

            policy = RLBanditPolicy.load(rl_agents[policy_label(cfg)].path)
            policy.name = policy_label(cfg)
        else:
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
    online = run_online_candidates(scenario, world, builder, progress)

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
    if online is not None:
        summary["online_learning"] = online.to_dict()
    run = RunResult(scenario, board, summary, online_table=online.table() if online else "")
    if out_dir is not None:
        final = Path(out_dir)
        with atomic_dir(final, "scenario") as out:  # built aside, manifest.json last, renamed into place
            write_with(out / "leaderboard.csv", lambda tmp: board.to_csv(tmp, index=False))
            write_json(out / "results.json", summary)
            log.to_parquet(out / "log.parquet")
            figures = save_figure(plot_estimates(board), out / "estimates")
            online_files = online.write(out) if online is not None else []
            write_report(
                out / "report.md", name=scenario.name, description=scenario.description,
                seed=scenario.seed, table=format_table(board), figures=["estimates.png"],
                facts={
                    "users × ads": f"{world.population.n_users} × {world.n_actions}",
                    "logging policy": logger.name,
                    "logged rounds (evaluation / training)": f"{log.n_rounds} / {train_log.n_rounds}",
                    "mean logged reward": f"{log.reward.mean():.4f}",
                    "min propensity": f"{log.pscore.min():.4g}",
                },
                command=reproduce_command(final, scenario.seed),
                sections=[] if online is None else [(
                    "Learning online: cumulative regret", online.table(), ["regret.png"],
                )],
            )
            run.files = [out / n for n in ("leaderboard.csv", "results.json", "log.parquet", "report.md")]
            run.files += figures + online_files
            if rl_agents:
                from adsim.experiments.rl_train import write_training_curves

                run.files += write_training_curves(rl_agents, out)
            run.files += finish_run_folder(out, scenario)  # scenario.yaml, report.html
        run.files = [final / p.relative_to(out) for p in run.files]
    return run
