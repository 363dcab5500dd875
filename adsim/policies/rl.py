"""Reinforcement-learning baselines: stable-baselines3 agents in adsim's two Gymnasium envs.

* **Bidding** (``adsim/BudgetBidding-v0``): the agent paces one campaign's budget through the day.
  Each decision step it sees the :class:`~adsim.env.envs.PacingObservation` (time, budget and
  traffic left, the pace, the last step's spend against its target, recent win rate and price,
  its own last λ) and sets the step's dual variable λ, bid = value / (1 + λ)
  (:class:`~adsim.env.envs.BidActionMap`). The default ``dual_step`` action changes λ by a factor
  (1 + λ) ← (1 + λ)·(1 + λ_max)^(0.1·a), so the agent learns a pacing *controller* — the same
  shape as Lagrangian dual pacing's mirror-descent step λ ← λ·exp(−η g) (Balseiro, Lu &
  Mirrokni 2020) — from the reward alone: the expected value won each step.
* **Ad selection** (``adsim/AdSelection-v0``): the agent picks an ad for each arriving user and
  is paid the click. Its action distribution π(a|x) — PPO/A2C's categorical policy, DQN's greedy
  argmax of Q — is what the exact oracle and the off-policy estimators score
  (:class:`RLBanditPolicy`).

Any SB3 algorithm by name (Raffin et al. 2021, "Stable-Baselines3", JMLR): PPO (Schulman et al.
2017), A2C (Mnih et al. 2016), SAC (Haarnoja et al. 2018), TD3 (Fujimoto et al. 2018), DDPG
(Lillicrap et al. 2016) on the bidding env's continuous action, DQN (Mnih et al. 2015) on
``n_bins`` evenly spaced actions (:func:`discrete_bid_actions`) or on the ads.

:func:`train_agent` trains on ``n_envs`` copies of the env stepped together (SB3's
``DummyVecEnv``; bidding rewards normalised by ``VecNormalize``, observations are already in
[0, 1]) and records a training curve: mean episode reward vs env steps and, at the same points,
the greedy agent's score on held-out days (% of the hindsight optimum for bidding, % of the best
ad's value for ad selection). An agent is saved as two files: ``agent.pt``, the policy network's
``state_dict`` (loaded with ``weights_only=True``), and ``agent.json``, what is needed to rebuild
it (algorithm, spaces, action mapping, network kwargs) — never a pickle.

Training is reproducible: SB3's ``seed`` seeds torch, numpy and every env copy, torch runs
single-threaded; the same scenario, config and seed give identical weights.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adsim._io import atomic_path, write_json, write_with
from adsim.errors import ConfigError
from adsim.policies.base import BanditPolicy, BidderState, BiddingPolicy, BidOutcome, BidRequests

__all__ = [
    "FORMAT",
    "RLBanditPolicy",
    "RLBidder",
    "TrainResult",
    "algo_class",
    "default_hyperparameters",
    "discrete_bid_actions",
    "load_agent",
    "make_bandit_env",
    "make_bidding_env",
    "resolved_hyperparameters",
    "train_agent",
]

FORMAT = "adsim-rl-agent/2"
BIDDING_ENV, BANDIT_ENV = "adsim/BudgetBidding-v0", "adsim/AdSelection-v0"
NET_ARCH = [64, 64]


def algo_class(name: str) -> Any:
    """The stable-baselines3 class of ``name`` (case-insensitive: ppo, a2c, sac, td3, ddpg, dqn)."""
    import stable_baselines3

    from adsim.config import RL_ALGOS

    if name.lower() not in RL_ALGOS:
        raise ConfigError(f"unknown RL algorithm {name!r}; stable-baselines3 has {', '.join(RL_ALGOS)}")
    return getattr(stable_baselines3, name.upper())


def default_hyperparameters(algo: str, env: str, steps: int, n_envs: int) -> dict[str, Any]:
    """adsim's defaults for ``algo`` (small networks, CPU-friendly): episodes are a day of
    decision steps (undiscounted, γ = 1) in the bidding env, independent users (γ = 0) in the
    ad-selection env. SAC starts with a smaller entropy weight (0.05, auto-tuned) and two
    gradient steps per vector step at learning rate 10⁻³: with SB3's ``ent_coef="auto"`` (1.0 at
    the start) its policy stayed near-random for 30k steps on ``rl_bidding``. A scenario's
    ``hyperparameters`` override these key by key."""
    gamma = 1.0 if env == BIDDING_ENV else 0.0
    policy_kwargs: dict[str, Any] = {"net_arch": list(NET_ARCH)}
    if algo in ("ppo", "a2c"):
        if algo == "ppo" and env == BIDDING_ENV:
            policy_kwargs["log_std_init"] = -1.0  # σ ≈ 0.37 in action units: λ moves a few %
        n_steps = 256 if algo == "ppo" else 16
        n_steps = max(2, min(n_steps, steps // n_envs))
        hp: dict[str, Any] = {"n_steps": n_steps, "gamma": gamma, "policy_kwargs": policy_kwargs}
        if algo == "ppo":  # minibatches of at most 256 that split the rollout evenly
            buf = n_steps * n_envs
            batch = next((d for d in range(min(256, buf), 31, -1) if buf % d == 0), buf)
            hp.update(batch_size=batch, n_epochs=10, gae_lambda=0.95)
        return hp
    off: dict[str, Any] = {
        "learning_starts": min(2000, steps // 4), "buffer_size": max(min(steps, 1_000_000), 1000),
        "batch_size": 256, "gamma": min(gamma, 0.995) if env == BIDDING_ENV else gamma,
        "policy_kwargs": policy_kwargs,
    }
    if algo == "dqn":
        off.update(exploration_fraction=0.3, target_update_interval=250, train_freq=1)
    if algo == "sac" and env == BIDDING_ENV:  # measured on rl_bidding: 96.8 % of OPT at 30k
        off.update(ent_coef="auto_0.05", gradient_steps=2, learning_rate=1e-3)  # (54.7 % as SB3's)
    return off


def resolved_hyperparameters(cfg: Any, env: str) -> dict[str, Any]:
    """What the SB3 class of RL candidate ``cfg`` is built with: the defaults, then ``cfg``'s."""
    return {**default_hyperparameters(cfg.algo, env, cfg.steps, cfg.n_envs), **cfg.hyperparameters}


# ---------------------------------------------------------------------------------------- envs
def discrete_bid_actions(env: Any, n_bins: int) -> Any:
    """``Discrete(n_bins)`` actions mapped to evenly spaced points of the bidding env's [−1, 1]
    (a Gymnasium ``ActionWrapper``, for DQN)."""
    import gymnasium as gym
    from gymnasium import spaces

    class DiscreteBidActions(gym.ActionWrapper):
        def __init__(self, inner: gym.Env, bins: int) -> None:
            super().__init__(inner)
            self.levels = np.linspace(-1.0, 1.0, int(bins)).astype(np.float32)
            self.action_space = spaces.Discrete(int(bins))

        def action(self, action: Any) -> np.ndarray:
            return self.levels[int(action)][None]

    return DiscreteBidActions(env, n_bins)


def _agent_index(scenario: Any) -> int:
    names = [c.name for c in scenario.auction.campaigns]
    bid = scenario.bidding
    return 0 if bid is None or bid.agent is None else names.index(bid.agent)


def make_bidding_env(scenario: Any, cfg: Any, hindsight: bool = False) -> Any:
    """``adsim/BudgetBidding-v0`` for the scenario's agent campaign as the RL candidate ``cfg``
    configures it (the same world as the bidding leaderboard: ``world_seed`` = the scenario seed)."""
    from adsim.env.envs import BudgetBiddingEnv

    env = BudgetBiddingEnv(
        scenario=scenario, agent=_agent_index(scenario), action_type=cfg.action_type,
        max_scale=cfg.max_scale, max_dual=cfg.max_dual, max_step=cfg.max_step,
        lambda0=cfg.lambda0, reward=cfg.reward, hindsight=hindsight, world_seed=scenario.seed,
    )
    return discrete_bid_actions(env, cfg.n_bins) if cfg.algo == "dqn" else env


def make_bandit_env(world: Any, cfg: Any) -> Any:
    """``adsim/AdSelection-v0`` on ``world`` (the scenario's own world object), cut into episodes
    of ``cfg.episode_length`` users."""
    from gymnasium.wrappers import TimeLimit

    from adsim.env.envs import AdSelectionEnv

    return TimeLimit(AdSelectionEnv(world=world), max_episode_steps=cfg.episode_length)


# ------------------------------------------------------------------------------------ training
@dataclass
class TrainResult:
    """A trained agent: its files, the training curve and how long training took."""

    path: Path
    seconds: float
    curve: Any  # pandas.DataFrame: steps, episodes, mean_episode_reward, eval_score
    meta: dict[str, Any] = field(default_factory=dict)


def _curve_callback(points: list[int], evaluate: Callable[[Any], float] | None) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class CurveCallback(BaseCallback):
        """Mean episode reward since the last point, and the greedy agent's held-out score."""

        def __init__(self) -> None:
            super().__init__()
            self.rows: list[dict[str, float]] = []
            self._returns: list[float] = []
            self._todo = list(points)

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", []):
                ep = info.get("episode")
                if ep is not None:
                    self._returns.append(float(ep["r"]))
            if self._todo and self.num_timesteps >= self._todo[0]:
                while self._todo and self.num_timesteps >= self._todo[0]:
                    self._todo.pop(0)
                self.record()
            return True

        def record(self) -> None:
            score = evaluate(self.model.policy) if evaluate is not None else float("nan")
            self.rows.append({
                "steps": float(self.num_timesteps), "episodes": float(len(self._returns)),
                "mean_episode_reward": float(np.mean(self._returns)) if self._returns else float("nan"),
                "eval_score": score,
            })
            self._returns = []

    return CurveCallback()


def _policy_kwargs_json(hp: dict[str, Any]) -> dict[str, Any]:
    """The network's constructor kwargs as saved in ``agent.json`` (the optimizer is not needed
    to act, and A2C's RMSprop settings would not fit the default optimizer when loading)."""
    kw = {k: v for k, v in (hp.get("policy_kwargs") or {}).items()
          if k not in ("optimizer_class", "optimizer_kwargs")}
    try:
        json.dumps(kw)
    except TypeError as exc:
        raise ConfigError(
            f"hyperparameters.policy_kwargs must be plain numbers, lists and strings ({exc})"
        ) from None
    return kw


def train_agent(
    cfg: Any,
    make_env: Callable[[], Any],
    *,
    env_id: str,
    seed: int,
    out_dir: str | os.PathLike[str],
    evaluate: Callable[[Any], float] | None = None,
    meta: dict[str, Any] | None = None,
    progress: bool = False,
    n_points: int = 10,
    stem: str = "agent",
) -> TrainResult:
    """Train the SB3 agent of RL candidate ``cfg`` on ``n_envs`` copies of ``make_env()``.

    Writes ``<stem>.pt``, ``<stem>.json`` and ``<stem>.training.csv`` into ``out_dir``.
    ``evaluate(policy)`` scores the greedy policy on held-out episodes at each of ``n_points``
    curve points.
    """
    import pandas as pd
    import torch
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    cls = algo_class(cfg.algo)
    hp = resolved_hyperparameters(cfg, env_id)
    venv = make_vec_env(make_env, n_envs=cfg.n_envs, seed=seed, vec_env_cls=DummyVecEnv)
    if env_id == BIDDING_ENV:
        venv = VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=float(hp.get("gamma", 0.99)))
    points = sorted({max(1, round(cfg.steps * (i + 1) / n_points)) for i in range(n_points)})
    callback = _curve_callback(points[:-1], evaluate)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks: threads only add overhead (and nondeterminism)
    try:
        start = time.perf_counter()
        try:
            model = cls("MlpPolicy", venv, seed=seed, verbose=0, device="cpu", **hp)
        except (TypeError, ValueError, AssertionError) as exc:
            raise ConfigError(
                f"RL candidate {cfg.name or cfg.type!r}: {cfg.algo} rejects its hyperparameters"
                f" {sorted(cfg.hyperparameters)}: {exc}"
            ) from None
        policy_kwargs = _policy_kwargs_json({"policy_kwargs": model.policy_kwargs})  # as used
        model.learn(total_timesteps=cfg.steps, progress_bar=progress, callback=callback)
        callback.record()  # the last point: the agent as saved
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / f"{stem}.pt") as tmp:
        torch.save(model.policy.state_dict(), tmp)
    obs_space, act_space = venv.observation_space, venv.action_space
    info: dict[str, Any] = {
        "format": FORMAT, "env": env_id, "algo": cfg.algo, "steps": cfg.steps, "seed": seed,
        "n_envs": cfg.n_envs, "policy_kwargs": policy_kwargs,
        "obs_dim": int(obs_space.shape[0]),
        "obs_low": float(np.min(obs_space.low)), "obs_high": float(np.max(obs_space.high)),
        "n_actions": int(act_space.n) if hasattr(act_space, "n") else None,
        "train_seconds": round(seconds, 1), **(meta or {}),
    }
    write_json(out / f"{stem}.json", info)
    curve = pd.DataFrame(callback.rows)
    write_with(out / f"{stem}.training.csv", lambda tmp: curve.to_csv(tmp, index=False))
    return TrainResult(out / f"{stem}.pt", seconds, curve, info)


# ------------------------------------------------------------------------------------- loading
def load_agent(path: str | os.PathLike[str], env_id: str) -> tuple[Any, dict[str, Any]]:
    """The policy network saved at ``path`` (``agent.pt`` + ``agent.json`` beside it), in eval mode."""
    p = Path(path)
    meta_path = p.with_suffix(".json")
    if not p.is_file() or not meta_path.is_file():
        raise ConfigError(
            f"RL model {str(p)!r} (and its .json) not found; fix the 'model' path, or leave"
            " 'model' out and let `adsim run` train the agent"
        )
    import torch
    from gymnasium import spaces

    from adsim.errors import AdsimError, DataError

    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{meta_path}: unreadable RL agent description ({type(exc).__name__}: {exc});"
                        " retrain it with `adsim train-rl`") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ConfigError(
            f"{meta_path}: not an adsim RL agent of format {FORMAT} (found"
            f" {found!r}); retrain it with `adsim train-rl`"
        )
    if meta.get("env") != env_id:
        raise ConfigError(f"{p}: trained on {meta.get('env')}, but this candidate needs {env_id}")
    try:  # every field is data from a file: a bad one is a clear error, never a traceback
        obs_dim = int(meta["obs_dim"])
        low, high = float(meta["obs_low"]), float(meta["obs_high"])
        if not 1 <= obs_dim <= 4096 or not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError("obs_dim, obs_low or obs_high out of range")
        kwargs = meta.get("policy_kwargs", {})
        if not isinstance(kwargs, dict):
            raise ValueError(f"policy_kwargs must be a mapping, got {type(kwargs).__name__}")
        arch = kwargs.get("net_arch", [64, 64])
        sizes = [int(h) for h in (arch if isinstance(arch, list) else
                                  [h for v in dict(arch).values() for h in v])]
        if not all(1 <= h <= 65536 for h in sizes) or 4 * obs_dim * sum(sizes) + 4 * sum(
                a * b for a, b in zip(sizes, sizes[1:])) > 200_000_000:
            raise ValueError(f"net_arch {arch} is out of range (far larger than any adsim agent)")
        obs_space = spaces.Box(low, high, shape=(obs_dim,), dtype=np.float32)
        if meta.get("n_actions") is not None:
            n_actions = int(meta["n_actions"])
            if not 2 <= n_actions <= 100_000:
                raise ValueError(f"n_actions {n_actions} out of range")
            act_space: Any = spaces.Discrete(n_actions)
        else:
            act_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        policy_cls = algo_class(meta["algo"]).policy_aliases["MlpPolicy"]
        policy = policy_cls(obs_space, act_space, lambda _: 0.0, **kwargs)
    except AdsimError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
        raise DataError(f"{meta_path}: damaged RL agent description ({type(exc).__name__}: {exc});"
                        " retrain it with `adsim train-rl`") from None
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, foreign, or a pickle that is not plain data (never run)
        raise DataError(f"{p}: not a readable RL model file ({type(exc).__name__}:"
                        f" {' '.join(str(exc).split())[:160]}); retrain it with `adsim train-rl`") from None
    try:
        policy.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError, AttributeError, ValueError) as exc:
        raise DataError(f"{p}: RL model weights do not fit {meta_path.name} ({type(exc).__name__}:"
                        f" {' '.join(str(exc).split())[:160]}); retrain it with `adsim train-rl`") from None
    policy.set_training_mode(False)
    return policy, meta


class RLBidder(BiddingPolicy):
    """A trained SB3 policy as a bidding policy: each step λ = map(π(obs), λ_prev) (greedy),
    bid = value / (1 + λ), with the env's own observation and action map."""

    name = "rl"

    def __init__(self, policy: Any, meta: dict[str, Any]) -> None:
        from adsim.env.envs import BidActionMap, PacingObservation

        self.policy, self.meta = policy, meta
        self.actions = BidActionMap(meta["action_type"], meta["max_scale"], meta["max_dual"],
                                    meta["max_step"])
        self.observer = PacingObservation(meta["max_dual"], meta["lambda0"])
        self._levels = (
            np.linspace(-1.0, 1.0, int(meta["n_actions"])) if meta.get("n_actions") else None
        )
        self._lam = self.observer.lam
        self.trace: dict[str, list[float]] = {"lambda": []}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RLBidder:
        """Load ``<path>`` (.pt state dict) and its ``.json`` description."""
        return cls(*load_agent(path, BIDDING_ENV))

    def action(self, obs: np.ndarray) -> float:
        """The agent's greedy action in [−1, 1] for an observation."""
        act, _ = self.policy.predict(obs, deterministic=True)
        if self._levels is not None:
            return float(self._levels[int(np.asarray(act).item())])
        return float(np.asarray(act).reshape(-1)[0])

    def bid(self, requests: BidRequests, state: BidderState) -> np.ndarray:
        obs = self.observer.observe(state)
        self._lam = self.actions(self.action(obs), self.observer.lam)
        self.trace["lambda"].append(self._lam)
        return np.where(requests.eligible, requests.values / (1.0 + self._lam), 0.0)

    def update(self, outcome: BidOutcome) -> None:
        self.observer.update(outcome, self._lam)

    def reset(self) -> None:
        self.observer.reset()
        self._lam = self.observer.lam
        self.trace = {"lambda": []}


class RLBanditPolicy(BanditPolicy):
    """A trained SB3 policy over ads: ``action_dist`` is π(a|x) — the categorical policy of
    PPO/A2C, or the greedy one-hot argmax_a Q(x, a) of DQN — on the env's observation (the
    context's design row, clipped to ±10)."""

    def __init__(self, policy: Any, meta: dict[str, Any]) -> None:
        super().__init__(int(meta["n_actions"]))
        self.policy, self.meta = policy, meta

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RLBanditPolicy:
        return cls(*load_agent(path, BANDIT_ENV))

    def action_dist(self, contexts: Any, chunk: int = 65_536) -> np.ndarray:
        import torch

        x = np.clip(contexts.design_matrix(), -10.0, 10.0).astype(np.float32)
        out = np.empty((x.shape[0], self.n_actions))
        with torch.no_grad():
            for s in range(0, x.shape[0], chunk):
                obs = torch.as_tensor(x[s:s + chunk])
                if self.meta["algo"] == "dqn":
                    q = self.policy.q_net(obs).numpy()
                    out[s:s + chunk] = np.eye(self.n_actions)[q.argmax(axis=1)]
                else:
                    out[s:s + chunk] = self.policy.get_distribution(obs).distribution.probs.numpy()
        return out / out.sum(axis=1, keepdims=True)
