"""RL candidates of a scenario: trained by ``adsim run`` into the build cache, or loaded from it.

A ``type: rl`` candidate names an SB3 algorithm and a step budget. On the first run
:func:`ensure_rl_bidder` / :func:`ensure_rl_bandit` train it on the scenario's own env
(:func:`adsim.policies.rl.train_agent`, with SB3's progress bar) inside
:func:`adsim.experiments.cache.cached_build`, keyed by what the training depends on:

* bidding: the ``world`` and ``auction`` sections, the agent campaign, the scenario seed (it
  seeds the world the env is built on) and the candidate's config without its ``name``;
* ad selection: the ``world`` section, the scenario seed and the candidate's config;

plus the training seed (the candidate's ``seed``, else the scenario's), the SB3 arguments as
resolved (adsim's defaults and the candidate's ``hyperparameters``), the agent format and the
versions of stable-baselines3 and torch. Later runs load the agent from the cache; ``--no-train`` turns a
miss into a :class:`~adsim.errors.ConfigError`. A candidate with ``model: path`` loads that file
and trains nothing. The training curves of the run's agents go to the run folder as
``rl_training.csv`` and ``rl_training.png`` (:func:`write_training_curves`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adsim._io import write_with
from adsim.experiments.cache import cached_build
from adsim.policies.rl import BANDIT_ENV, BIDDING_ENV, train_agent

__all__ = [
    "RLAgent",
    "ensure_rl_bandit",
    "ensure_rl_bidder",
    "train_bidding_candidate",
    "write_training_curves",
]

CURVE_COLUMNS = ["policy", "steps", "episodes", "mean_episode_reward", "eval_score"]


@dataclass
class RLAgent:
    """Where a candidate's agent is (``agent.pt``), its training curve (``None`` for a given
    ``model``) and what its held-out score measures."""

    path: Path
    curve: pd.DataFrame | None
    score_label: str


def _extra(cfg: Any, env_id: str) -> dict[str, Any]:
    """What else the agent depends on: the resolved SB3 arguments (adsim's defaults may change),
    the agent format (observation and action design) and the library versions."""
    import stable_baselines3
    import torch

    from adsim.policies.rl import FORMAT, resolved_hyperparameters

    return {"stable_baselines3": stable_baselines3.__version__, "torch": torch.__version__,
            "format": FORMAT, "hyperparameters": resolved_hyperparameters(cfg, env_id)}


def _seed(scenario: Any, cfg: Any) -> int:
    return int(scenario.seed if cfg.seed is None else cfg.seed)


def _label(cfg: Any) -> str:
    return cfg.name or cfg.type


def _bidding_meta(cfg: Any) -> dict[str, Any]:
    return {"action_type": cfg.action_type, "max_scale": cfg.max_scale, "max_dual": cfg.max_dual,
            "max_step": cfg.max_step, "lambda0": cfg.lambda0}


def _given(path: str, label: str) -> RLAgent:
    """A ``model: path`` agent, with the training curve ``adsim train-rl`` wrote beside it."""
    p = Path(path)
    curve = p.with_suffix(".training.csv")
    return RLAgent(p, pd.read_csv(curve) if curve.is_file() else None, label)


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------- bidding
def _bidding_evaluator(scenario: Any, cfg: Any, seed: int) -> Any:
    """% of the hindsight optimum of the greedy agent on ``cfg.eval_days`` held-out days."""
    if cfg.eval_days == 0:
        return None
    from adsim.policies.rl import make_bidding_env

    env = make_bidding_env(scenario, cfg, hindsight=True)
    day_seeds = [int(s) for s in np.random.SeedSequence([seed, 0xE7A1]).generate_state(cfg.eval_days)]

    def evaluate(policy: Any) -> float:
        pcts = []
        for s in day_seeds:
            obs, _ = env.reset(seed=s)
            done, info = False, {}
            while not done:
                act, _ = policy.predict(obs, deterministic=True)
                obs, _, done, _, info = env.step(act)
            pcts.append(info["pct_of_optimal"])
        return float(np.mean(pcts))

    return evaluate


def train_bidding_candidate(
    scenario: Any, cfg: Any, out_dir: str | os.PathLike[str], *, seed: int | None = None,
    progress: bool = False, stem: str = "agent",
) -> Any:
    """Train the bidding RL candidate ``cfg`` of ``scenario`` into ``out_dir`` (a TrainResult:
    ``<stem>.pt``, ``<stem>.json``, ``<stem>.training.csv``)."""
    from adsim.policies.rl import make_bidding_env

    seed = _seed(scenario, cfg) if seed is None else int(seed)
    return train_agent(
        cfg, lambda: make_bidding_env(scenario, cfg), env_id=BIDDING_ENV, seed=seed,
        out_dir=out_dir, evaluate=_bidding_evaluator(scenario, cfg, seed),
        meta={**_bidding_meta(cfg), "scenario": scenario.name}, progress=progress, stem=stem,
    )


def ensure_rl_bidder(
    scenario: Any, cfg: Any, *, no_train: bool = False, progress: bool = False
) -> RLAgent:
    """The bidding RL candidate's agent: ``cfg.model``, the cached agent, or a newly trained one."""
    label = "% of OPT (held-out days)"
    if cfg.model is not None:
        return _given(cfg.model, label)
    assert scenario.auction is not None
    agent = scenario.bidding.agent if scenario.bidding is not None else None
    key = {
        "env": BIDDING_ENV, "world": scenario.world.model_dump(mode="json"),
        "auction": scenario.auction.model_dump(mode="json"), "agent": agent,
        "scenario_seed": scenario.seed,
        "candidate": cfg.model_dump(mode="json", exclude={"name", "model"}),
    }
    seed = _seed(scenario, cfg)

    def build(folder: Path) -> None:
        _say(progress, f"training RL candidate {_label(cfg)!r}: {cfg.algo.upper()}, {cfg.steps}"
                       f" steps on {BIDDING_ENV} ({cfg.n_envs} envs)")
        res = train_bidding_candidate(scenario, cfg, folder, seed=seed, progress=progress)
        _say(progress, f"trained {_label(cfg)!r} in {res.seconds:.0f} s")

    folder = cached_build(
        "rl", key, seed, build, what=f"bidding candidate {_label(cfg)!r} (type rl, {cfg.algo})",
        no_train=no_train, extra=_extra(cfg, BIDDING_ENV),
        hint="give a trained agent as 'model: path' (adsim train-rl writes one)",
    )
    return RLAgent(folder / "agent.pt", pd.read_csv(folder / "agent.training.csv"), label)


# -------------------------------------------------------------------------------- ad selection
def ensure_rl_bandit(
    scenario: Any, world: Any, cfg: Any, *, no_train: bool = False, progress: bool = False
) -> RLAgent:
    """The ad-selection RL candidate's agent, trained on ``world`` (the run's own world object)."""
    from adsim.env.oracle import policy_value
    from adsim.policies.rl import RLBanditPolicy, make_bandit_env

    label = "% of the best ad's value"
    if cfg.model is not None:
        return _given(cfg.model, label)
    key = {
        "env": BANDIT_ENV, "world": scenario.world.model_dump(mode="json"),
        "scenario_seed": scenario.seed,
        "candidate": cfg.model_dump(mode="json", exclude={"name", "model"}),
    }
    seed = _seed(scenario, cfg)
    users = world.population.users
    best = float(world.expected_reward(users).max(axis=1) @ world.population.weights)

    def evaluate(policy: Any) -> float:
        pol = RLBanditPolicy(policy, {"algo": cfg.algo, "n_actions": world.n_actions})
        return 100.0 * policy_value(world, pol) / best if best > 0 else float("nan")

    def build(folder: Path) -> None:
        _say(progress, f"training RL candidate {_label(cfg)!r}: {cfg.algo.upper()}, {cfg.steps}"
                       f" steps on {BANDIT_ENV} ({cfg.n_envs} envs)")
        res = train_agent(cfg, lambda: make_bandit_env(world, cfg), env_id=BANDIT_ENV, seed=seed,
                          out_dir=folder, evaluate=evaluate, meta={"scenario": scenario.name},
                          progress=progress)
        _say(progress, f"trained {_label(cfg)!r} in {res.seconds:.0f} s")

    folder = cached_build(
        "rl", key, seed, build, what=f"candidate {_label(cfg)!r} (type rl, {cfg.algo})",
        no_train=no_train, extra=_extra(cfg, BANDIT_ENV),
        hint="give a trained agent as 'model: path'",
    )
    return RLAgent(folder / "agent.pt", pd.read_csv(folder / "agent.training.csv"), label)


# ------------------------------------------------------------------------------------- curves
def write_training_curves(
    agents: dict[str, RLAgent], out_dir: str | os.PathLike[str]
) -> list[Path]:
    """``rl_training.csv`` (one row per candidate and curve point) and ``rl_training.png``
    (mean episode reward and held-out score vs env steps); nothing if no agent was trained."""
    curves = {name: a for name, a in agents.items() if a.curve is not None and len(a.curve)}
    if not curves:
        return []
    out = Path(out_dir)
    table = pd.concat(
        [a.curve.assign(policy=name) for name, a in curves.items()], ignore_index=True
    )[CURVE_COLUMNS]
    write_with(out / "rl_training.csv", lambda tmp: table.to_csv(tmp, index=False))
    from adsim._figures import new_figure, policy_colors, save_figure

    colors = policy_colors(curves)
    fig, (ax1, ax2) = new_figure((10, 4), 1, 2)
    for name, a in curves.items():
        ax1.plot(a.curve["steps"], a.curve["mean_episode_reward"], marker="o", ms=3, label=name,
                 color=colors[name])
        ax2.plot(a.curve["steps"], a.curve["eval_score"], marker="o", ms=3, label=name,
                 color=colors[name])
    ax1.set(xlabel="env steps", ylabel="mean episode reward", title="Training episodes")
    labels = sorted({a.score_label for a in curves.values()})
    ax2.set(xlabel="env steps", ylabel=" / ".join(labels), title="Greedy agent, held out")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    return [out / "rl_training.csv", *save_figure(fig, out / "rl_training", dpi=120)]
