"""Reinforcement-learning bidders: stable-baselines3 agents trained on ``adsim/BudgetBidding-v0``.

The agent controls one campaign of an auction scenario through the day: every decision step it
sees the env's 6-number observation (time left, budget left, traffic to come, last step's spend,
win rate and cost per value) and sets the step's bid multiplier (``action_type: scale``,
bid = value · max_scale^a) or dual variable (``dual``, bid = value / (1 + λ),
λ = max_dual·(a + 1)/2), a ∈ [−1, 1]. Algorithms (Raffin et al. 2021, "Stable-Baselines3",
JMLR):

* PPO (Schulman et al. 2017) and SAC (Haarnoja et al. 2018) on the continuous action;
* DQN (Mnih et al. 2015) on ``n_bins`` evenly spaced actions (:class:`DiscreteBidActions`).

:func:`train_rl` trains and saves a model as two files: ``<out>.pt``, the policy network's
``state_dict`` (loaded with ``weights_only=True``), and ``<out>.json``, what is needed to rebuild
it (algorithm, spaces, action mapping, network sizes) — never a pickle. :class:`RLBidder` loads
them as a :class:`~adsim.policies.base.BiddingPolicy`, so the trained agent sits on the bidding
leaderboard next to the pacing policies, computing the same observation from its
:class:`~adsim.policies.base.BidderState` (:func:`bidder_observation`).

Training is reproducible: SB3's ``seed`` seeds torch, numpy and the env's resets; the same
scenario, algorithm, steps and seed give identical weights.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adsim._io import atomic_path, write_json
from adsim.errors import ConfigError
from adsim.policies.base import BidderState, BiddingPolicy, BidRequests

__all__ = [
    "DiscreteBidActions",
    "RLBidder",
    "TrainResult",
    "action_to_scale",
    "bidder_observation",
    "make_bidding_env",
    "train_rl",
]

NET_ARCH = [64, 64]


def bidder_observation(state: BidderState) -> np.ndarray:
    """The ``adsim/BudgetBidding-v0`` observation computed from a campaign's state (float32)."""
    budget = state.budget
    finite = bool(np.isfinite(budget))
    left = state.remaining / budget if finite else 1.0
    spend = win = cpv = 0.0
    last = state.last
    if last is not None:
        spend = last.cost / budget if finite else 0.0
        win = last.impressions / last.bids if last.bids else 0.0
        cpv = last.cost / last.expected_value / 10.0 if last.expected_value > 0 else 0.0
    obs = np.array([1.0 - state.time_frac, left, 1.0 - state.elapsed_share, spend, win, cpv])
    return np.clip(obs, 0.0, 1.0).astype(np.float32)


def action_to_scale(a: float, action_type: str, max_scale: float, max_dual: float) -> float:
    """The env's map from an action in [−1, 1] to the bid multiplier on value."""
    a = float(np.clip(a, -1.0, 1.0))
    if action_type == "scale":
        return float(max_scale**a)
    return 1.0 / (1.0 + max_dual * (a + 1.0) / 2.0)


def _discrete_wrapper() -> type:
    import gymnasium as gym
    from gymnasium import spaces

    class DiscreteBidActions(gym.ActionWrapper):
        """``Discrete(n_bins)`` actions mapped to evenly spaced points of the env's [−1, 1]."""

        def __init__(self, env: gym.Env, n_bins: int) -> None:
            super().__init__(env)
            self.levels = np.linspace(-1.0, 1.0, int(n_bins)).astype(np.float32)
            self.action_space = spaces.Discrete(int(n_bins))

        def action(self, action: Any) -> np.ndarray:
            return self.levels[int(action)][None]

    return DiscreteBidActions


def __getattr__(name: str) -> Any:  # DiscreteBidActions without importing gymnasium eagerly
    if name == "DiscreteBidActions":
        return _discrete_wrapper()
    raise AttributeError(name)


def _agent_index(scenario: Any) -> int:
    names = [c.name for c in scenario.auction.campaigns]
    bid = scenario.bidding
    return 0 if bid is None or bid.agent is None else names.index(bid.agent)


def make_bidding_env(scenario: Any, rl: Any) -> Any:
    """``adsim/BudgetBidding-v0`` for the scenario's agent campaign, as ``rl`` configures it
    (the same world as the bidding leaderboard: ``world_seed`` = the scenario seed)."""
    from adsim.env.envs import BudgetBiddingEnv

    env = BudgetBiddingEnv(
        scenario=scenario, agent=_agent_index(scenario), action_type=rl.action_type,
        max_scale=rl.max_scale, max_dual=rl.max_dual, reward=rl.reward, world_seed=scenario.seed,
    )
    if rl.algo == "dqn":
        env = _discrete_wrapper()(env, rl.n_bins)
    return env


def _algo(name: str) -> Any:
    from stable_baselines3 import DQN, PPO, SAC

    return {"ppo": PPO, "sac": SAC, "dqn": DQN}[name]


def _hyperparameters(rl: Any, total: int) -> dict[str, Any]:
    """Small, CPU-friendly settings (episodes are ``n_steps`` decisions long)."""
    common: dict[str, Any] = {"learning_rate": rl.learning_rate, "policy_kwargs": {"net_arch": NET_ARCH}}
    if rl.algo == "ppo":
        n = 512 if total >= 512 else max(64, total // 64 * 64)  # a multiple of the minibatch
        return {**common, "n_steps": n, "batch_size": 64, "n_epochs": 10, "gamma": 0.999}
    if rl.algo == "sac":
        return {**common, "learning_starts": min(500, total // 4), "buffer_size": max(total, 1000),
                "batch_size": 64, "gamma": 0.999}
    return {**common, "learning_starts": min(500, total // 4), "buffer_size": max(total, 1000),
            "batch_size": 64, "gamma": 0.999, "exploration_fraction": 0.3,
            "target_update_interval": 250, "train_freq": 1}


@dataclass
class TrainResult:
    """A trained agent: where it was saved, how long training took, and the SB3 model."""

    path: Path
    seconds: float
    model: Any


def train_rl(
    scenario: Any,
    *,
    algo: str | None = None,
    total_timesteps: int | None = None,
    seed: int | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train an SB3 agent on the scenario's ``BudgetBidding-v0`` and save it (see module doc).

    Arguments override the scenario's ``bidding.rl`` section; ``seed`` defaults to the scenario's.
    """
    import torch

    from adsim.config import RLTrainConfig

    if scenario.auction is None:
        raise ConfigError("train-rl needs an auction scenario (an 'auction' section)")
    rl = scenario.bidding.rl if scenario.bidding is not None else RLTrainConfig()
    update: dict[str, Any] = {}
    if algo is not None:
        update["algo"] = algo
    if total_timesteps is not None:
        update["total_timesteps"] = total_timesteps
    if out is not None:
        update["out"] = str(out)
    rl = RLTrainConfig.model_validate({**rl.model_dump(), **update})
    seed = scenario.seed if seed is None else int(seed)
    env = make_bidding_env(scenario, rl)
    cls = _algo(rl.algo)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks: threads only add overhead (and nondeterminism)
    try:
        start = time.perf_counter()
        model = cls("MlpPolicy", env, seed=seed, verbose=0, device="cpu",
                    **_hyperparameters(rl, rl.total_timesteps))
        model.learn(total_timesteps=rl.total_timesteps, progress_bar=progress)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    path = Path(rl.out)
    if path.suffix != ".pt":
        path = path.with_suffix(".pt")
    with atomic_path(path) as tmp:
        torch.save(model.policy.state_dict(), tmp)
    write_json(path.with_suffix(".json"), {
        "format": "adsim-rl-bidder/1", "algo": rl.algo, "action_type": rl.action_type,
        "max_scale": rl.max_scale, "max_dual": rl.max_dual, "n_bins": rl.n_bins,
        "net_arch": NET_ARCH, "obs_dim": 6, "scenario": scenario.name, "seed": seed,
        "total_timesteps": rl.total_timesteps, "train_seconds": round(seconds, 3),
    })
    return TrainResult(path, seconds, model)


class RLBidder(BiddingPolicy):
    """A trained SB3 policy as a bidding policy: bid = value × scale(π(obs)), deterministic."""

    name = "rl"

    def __init__(self, policy: Any, meta: dict[str, Any]) -> None:
        self.policy, self.meta = policy, meta
        self.trace: dict[str, list[float]] = {"lambda": []}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RLBidder:
        """Load ``<path>`` (.pt state dict) and its ``.json`` description."""
        p = Path(path)
        meta_path = p.with_suffix(".json")
        if not p.is_file() or not meta_path.is_file():
            raise ConfigError(
                f"RL model {str(p)!r} (and its .json) not found; train it first with"
                " `adsim train-rl <scenario.yaml>` or fix the 'model' path"
            )
        import torch
        from gymnasium import spaces

        from adsim.errors import AdsimError, DataError

        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise DataError(f"{meta_path}: unreadable RL bidder description ({type(exc).__name__}: {exc});"
                            " retrain it with `adsim train-rl`") from None
        if not isinstance(meta, dict) or meta.get("format") != "adsim-rl-bidder/1":
            raise ConfigError(f"{meta_path}: not an adsim RL bidder description")
        try:  # every field is data from a file: a bad one is a clear error, never a traceback
            obs_dim, net_arch = int(meta["obs_dim"]), [int(h) for h in meta["net_arch"]]
            if not 1 <= obs_dim <= 4096 or not net_arch or not all(1 <= h <= 65536 for h in net_arch):
                raise ValueError("obs_dim or net_arch out of range")
            dims = [obs_dim, *net_arch]
            if 4 * sum(a * b for a, b in zip(dims, dims[1:])) > 50_000_000:  # actor + critic (+ targets)
                raise ValueError(f"net_arch {net_arch} is far larger than any adsim bidder (over 50M weights)")
            obs_space = spaces.Box(0.0, 1.0, shape=(obs_dim,), dtype=np.float32)
            if meta["algo"] == "dqn":
                n_bins = int(meta["n_bins"])
                if not 2 <= n_bins <= 100_000:
                    raise ValueError(f"n_bins {n_bins} out of range")
                act_space: Any = spaces.Discrete(n_bins)
            else:
                act_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
            policy_cls = _algo(meta["algo"]).policy_aliases["MlpPolicy"]
            policy = policy_cls(obs_space, act_space, lambda _: 0.0, net_arch=net_arch)
        except AdsimError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise DataError(f"{meta_path}: damaged RL bidder description ({type(exc).__name__}: {exc});"
                            " retrain it with `adsim train-rl`") from None
        try:
            state = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated, foreign, or a pickle that is not plain data (not run)
            raise DataError(f"{p}: not a readable RL model file ({type(exc).__name__}:"
                            f" {' '.join(str(exc).split())[:160]}); retrain it with `adsim train-rl`") from None
        try:
            policy.load_state_dict(state)
        except (RuntimeError, TypeError, KeyError, AttributeError) as exc:
            raise DataError(f"{p}: RL model weights do not fit {meta_path.name} ({type(exc).__name__}:"
                            f" {' '.join(str(exc).split())[:160]}); retrain it with `adsim train-rl`") from None
        policy.set_training_mode(False)
        return cls(policy, meta)

    def action(self, state: BidderState) -> float:
        """The agent's action in [−1, 1] for this state."""
        act, _ = self.policy.predict(bidder_observation(state), deterministic=True)
        if self.meta["algo"] == "dqn":
            return float(np.linspace(-1.0, 1.0, int(self.meta["n_bins"]))[int(np.asarray(act).item())])
        return float(np.asarray(act).reshape(-1)[0])

    def bid(self, requests: BidRequests, state: BidderState) -> np.ndarray:
        m = self.meta
        scale = action_to_scale(self.action(state), m["action_type"], m["max_scale"], m["max_dual"])
        self.trace["lambda"].append(1.0 / scale - 1.0)
        return np.where(requests.eligible, requests.values * scale, 0.0)

    def reset(self) -> None:
        self.trace = {"lambda": []}
