"""``--target SCENARIO.yaml:CANDIDATE``: a scenario's candidate policy as the target of ``adsim ope``.

Rebuilds the scenario's world and candidate exactly as ``adsim run`` does (same seed streams, same
build order — :func:`adsim.experiments.runner.run_scenario`), then evaluates the candidate's action
distribution on the log's own context columns (``user_id``, ``x0…``, sparse fields), so a log
written by a simulation can be re-evaluated offline against any of its candidates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adsim.errors import ConfigError, DataError

__all__ = ["scenario_target"]


def scenario_target(spec: str, log_path: str | Path) -> np.ndarray:
    """``(n_rounds, n_actions)`` probabilities of candidate ``NAME`` in ``SCENARIO.yaml:NAME``."""
    from adsim.config import load_scenario
    from adsim.env.features import Contexts
    from adsim.env.logs import read_log
    from adsim.experiments.builders import PolicyBuilder, policy_label
    from adsim.worldmodel import build_world

    path, _, name = spec.rpartition(":")
    scn = load_scenario(path)
    labels = [policy_label(c) for c in scn.candidates]
    if name not in labels:
        raise ConfigError(
            f"{path}: no candidate named {name!r}; candidates are {', '.join(labels)}"
        )
    target = next(c for c in scn.candidates if policy_label(c) == name)
    if getattr(target, "learn", "offline") == "online":
        raise ConfigError(
            f"{path}: candidate {name!r} learns online (learn: online), so it is no fixed policy;"
            " its decisions are logged in the run folder's online_logs/ (use that as --log) —"
            " pick a candidate without learn: online as --target"
        )
    streams = np.random.SeedSequence(scn.seed).spawn(6)
    rng_world, rng_logger, rng_train, _, rng_policy, _ = (np.random.default_rng(s) for s in streams)
    world = build_world(scn.world, rng_world)
    logger = PolicyBuilder(world, rng_logger).build(scn.logging_policy)
    train_log = world.collect(logger, scn.evaluation.n_train_rounds, rng_train)
    builder = PolicyBuilder(world, rng_policy, train_log=train_log)
    policy = None
    for cfg in scn.candidates:  # same order as the runner, so noisy models draw the same noise
        if getattr(cfg, "learn", "offline") == "online":
            continue  # the runner does not build online learners from this generator either
        p = builder.build(cfg)
        if policy_label(cfg) == name:
            policy = p
            break
    assert policy is not None
    log = read_log(log_path, n_actions=world.n_actions)
    if log.context is None:
        raise DataError(f"{log_path}: the log has no context columns, so {spec} cannot be evaluated")
    ctx = Contexts.from_frame(log.context, world.spec)
    return policy.action_dist(ctx)
