"""Gymnasium environments of the auction world.

Importing this module registers two ids (or call :func:`adsim.env.register_envs`):

* ``adsim/AdSelection-v0`` — :class:`AdSelectionEnv`, a contextual bandit: choose the ad for a user.
* ``adsim/BudgetBidding-v0`` — :class:`BudgetBiddingEnv`, an advertiser bidding through a day
  under a budget.

``gymnasium.make("adsim.env.envs:adsim/BudgetBidding-v0")`` imports and registers in one go.
``import adsim`` does not import gymnasium; only this module does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from adsim.config import AuctionConfig, CampaignConfig, Scenario, TrafficConfig, WorldConfig
from adsim.env.auction_world import AuctionWorld
from adsim.env.bidders import ScaledBidder, baseline_bidder
from adsim.env.types import BiddingPolicy
from adsim.env.world import World

__all__ = [
    "ACTION_TYPES", "AdSelectionEnv", "BidActionMap", "BudgetBiddingEnv", "ENV_IDS",
    "PacingObservation", "register_envs",
]

ENV_IDS = ("adsim/AdSelection-v0", "adsim/BudgetBidding-v0")


def _world_config(world: WorldConfig | dict[str, Any] | None) -> WorldConfig:
    if world is None:
        return WorldConfig()
    if isinstance(world, WorldConfig):
        return world
    from adsim.config import parse_config

    return parse_config(dict(world), WorldConfig, source="world")


class AdSelectionEnv(gym.Env):
    """Contextual bandit: pick the ad (or a slate of ads) to show to each arriving user.

    Every step a user is drawn from the world's finite population; the agent picks one of the
    ``K`` ads — or, with ``n_slots = S > 1``, a slate of S ads — and is paid the clicks (or
    value × clicks) drawn from the world's exact click model. In a slate, slot k is examined with
    probability θ_k (position bias: P(click) = θ_k · CTR) and a repeated ad earns nothing.
    Steps are independent, so the episode has no natural end.

    ## Action space
    ``Discrete(K)`` — the ad to show; with ``n_slots = S > 1``: ``MultiDiscrete([K] * S)``, the
    ads in slots 1..S.

    ## Observation space
    ``Box(-10, 10, (n_dense + Σ vocab,), float32)``:

    ======================== ===================================================
    entries                  meaning
    ======================== ===================================================
    ``0 .. n_dense-1``       the user's dense features (standard normal, clipped to ±10)
    then one block per field one-hot of the user's value of each sparse field
    ======================== ===================================================

    ## Rewards
    1 for a click, 0 otherwise (``world.reward = value``: the ad's value per click × click).
    ``info["expected_reward"]`` holds the exact expected reward of every ad for the current user
    (shown before acting, for regret accounting — do not feed it to the agent).

    ## Starting state
    A user drawn uniformly from the population.

    ## Episode end
    Never terminates (a bandit has no terminal state); truncated after ``max_episode_steps``
    (1000 when made through ``gymnasium.make``) by the TimeLimit wrapper.

    ## Arguments
    * ``world`` — a :class:`~adsim.config.WorldConfig` (or its dict), or a built
      :class:`~adsim.env.world.World`; default the quickstart world.
    * ``world_seed`` — seed of the world's structure (users, ads, click model); the traffic is
      seeded by ``reset(seed=...)``.
    * ``n_slots`` (default 1), ``examination`` — slate size and examination probabilities
      (non-increasing, default 0.7^k).

    ## Example
    >>> import gymnasium as gym
    >>> import adsim.env.envs  # registers the ids
    >>> env = gym.make("adsim/AdSelection-v0", world={"n_users": 100, "n_ads": 4})
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, info["expected_reward"].shape
    ((16,), (4,))
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> terminated
    False
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        world: WorldConfig | dict[str, Any] | World | None = None,
        world_seed: int = 0,
        n_slots: int = 1,
        examination: list[float] | None = None,
    ) -> None:
        super().__init__()
        from adsim.env.truth import PositionModel

        if isinstance(world, World):  # a scenario's own world (adsim run trains agents on it)
            self.world = world
        else:
            self.world = World.from_config(_world_config(world), np.random.default_rng(world_seed))
        if not 1 <= n_slots <= self.world.n_actions:
            raise ValueError(f"n_slots must be in [1, n_ads={self.world.n_actions}], got {n_slots}")
        theta = examination if examination is not None else [0.7**k for k in range(n_slots)]
        if len(theta) != n_slots:
            raise ValueError(f"examination needs {n_slots} entries, got {len(theta)}")
        self.position = PositionModel(np.asarray(theta, dtype=np.float64))
        self.n_slots = n_slots
        dim = self.world.spec.design_dim
        # dense features are N(0, 1): the ±10 bounds (clipped) are never reached in practice
        self.observation_space = spaces.Box(-10.0, 10.0, shape=(dim,), dtype=np.float32)
        k = self.world.n_actions
        self.action_space: spaces.Space[Any] = (
            spaces.Discrete(k) if n_slots == 1 else spaces.MultiDiscrete([k] * n_slots)
        )
        self._ctx = None
        self._q: np.ndarray | None = None

    def _observe(self) -> tuple[np.ndarray, dict[str, Any]]:
        self._ctx = self.world.sample_contexts(1, self.np_random)
        self._q = self.world.expected_reward(self._ctx)[0]
        obs = np.clip(self._ctx.design_matrix()[0], -10.0, 10.0).astype(np.float32)
        return obs, {"expected_reward": self._q.copy(), "user_id": int(self._ctx.user_id[0])}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return self._observe()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._ctx is None:
            raise RuntimeError("call reset() before step()")
        k = self.world.n_actions
        if self.n_slots == 1:
            if not self.action_space.contains(action):
                raise ValueError(f"action must be an ad in [0, {k}), got {action!r}")
            a = np.array([int(action)])
            rewards, _ = self.world.simulate(self._ctx, a, self.np_random)
            reward = float(rewards[0])
            expected = float(self._q[int(action)])  # type: ignore[index]
        else:
            slate = np.asarray(action).reshape(-1)
            if slate.shape != (self.n_slots,) or not self.action_space.contains(
                slate.astype(np.int64)
            ):
                raise ValueError(
                    f"action must be {self.n_slots} ads in [0, {k}) (one per slot), got {action!r}"
                )
            slate = slate.astype(np.int64)
            first = np.array([a not in slate[:j] for j, a in enumerate(slate)])  # repeats: 0
            q = self._q[slate] * self.position.examination * first  # type: ignore[index]
            ctr = self.world.truth.ctr(self._ctx)[0, slate]
            clicks = self.np_random.random(self.n_slots) < ctr * self.position.examination
            per_click = (
                self.world.catalog.values[slate] if self.world.reward == "value"
                else np.ones(self.n_slots)
            )
            reward = float((clicks * first * per_click).sum())
            expected = float(q.sum())
        obs, info = self._observe()
        info["chosen_expected_reward"] = expected
        return obs, reward, False, False, info

ACTION_TYPES = ("scale", "dual", "log_dual", "dual_step")


class BidActionMap:
    """The BudgetBidding-v0 map from an action ``a`` in [−1, 1] to the step's dual variable λ
    (bid = value / (1 + λ)); ``λ_prev`` is the previous step's λ (``dual_step`` only).

    ============== ============================================================================
    ``scale``      1 + λ = max_scale^(−a)                  (bid = value · max_scale^a)
    ``dual``       λ = max_dual · (a + 1) / 2
    ``log_dual``   1 + λ = (1 + max_dual)^((a + 1) / 2)    (λ on a log scale, 0 … max_dual)
    ``dual_step``  1 + λ = clip((1 + λ_prev) · (1 + max_dual)^(max_step · a), 1, 1 + max_dual)
                   — a multiplicative change of λ, as a mirror-descent pacing step makes
    ============== ============================================================================
    """

    def __init__(self, action_type: str = "scale", max_scale: float = 4.0,
                 max_dual: float = 10.0, max_step: float = 0.1) -> None:
        if action_type not in ACTION_TYPES:
            raise ValueError(f"action_type must be one of {', '.join(ACTION_TYPES)}, got {action_type!r}")
        if max_scale <= 1 or max_dual <= 0 or not 0 < max_step <= 1:
            raise ValueError("max_scale must be > 1, max_dual > 0 and max_step in (0, 1]")
        self.action_type = action_type
        self.max_scale, self.max_dual, self.max_step = float(max_scale), float(max_dual), float(max_step)

    def __call__(self, a: float, lam_prev: float) -> float:
        a = float(np.clip(a, -1.0, 1.0))
        top = np.log1p(self.max_dual)
        if self.action_type == "scale":
            return float(self.max_scale ** (-a) - 1.0)
        if self.action_type == "dual":
            return self.max_dual * (a + 1.0) / 2.0
        if self.action_type == "log_dual":
            return float(np.expm1(top * (a + 1.0) / 2.0))
        log1p = np.log1p(max(lam_prev, 0.0)) + top * self.max_step * a
        return float(np.expm1(np.clip(log1p, 0.0, top)))


class PacingObservation:
    """The BudgetBidding-v0 observation of a campaign: its state plus a short memory of its own
    recent outcomes and λ. The env and a trained :class:`~adsim.policies.rl.RLBidder` both
    build it with this class, so the agent sees the same numbers in training and on the
    leaderboard. Every entry lies in [0, 1]; ratios ``x ≥ 0`` enter as ``x / (1 + x)`` (0.5 means
    "as planned"), λ-like quantities as ``log(1 + λ) / log(1 + max_dual)``.

    === =========================================================================================
    0   share of the day left, 1 − t/T
    1   share of the budget left, B_left / B
    2   expected share of the day's traffic still to come, S_left
    3   pace: r / (1 + r), r = (B_left / B) / S_left (0.5 = on the ideal line, > 0.5 underspent)
    4   last step's spend against its target ρ = B_left · s_t / S_left, as x / (1 + x)
    5   last step's win rate (impressions / bids)
    6   recent win rate (exponential average, weight ``memory`` on the newest step)
    7   recent price as an implied dual: value / cost − 1 of the won impressions (average)
    8   the λ the campaign bid with last step (λ₀ before the first)
    === =========================================================================================
    """

    dim = 9

    def __init__(self, max_dual: float = 10.0, lambda0: float = 1.0, memory: float = 0.3) -> None:
        self.log_top = float(np.log1p(max_dual))
        self.lambda0, self.memory = float(lambda0), float(memory)
        self.reset()

    def reset(self) -> None:
        self.lam = self.lambda0
        self._target = float("nan")
        self._spend_ratio = 1.0
        self._win = 0.0
        self._win_avg: float | None = None
        self._price_avg: float | None = None

    def _dual(self, lam: float) -> float:
        return float(np.log1p(max(lam, 0.0)) / self.log_top)

    def observe(self, st: Any) -> np.ndarray:
        """The observation at the start of a step (``st``: a :class:`BidderState`)."""
        finite = bool(np.isfinite(st.budget)) and st.budget > 0
        left = st.remaining / st.budget if finite else 1.0
        to_come = max(1.0 - st.elapsed_share, 0.0)
        pace = left / to_come if to_come > 1e-12 else (1.0 if left > 0 else 0.0)
        share = st.traffic_share if st.step < st.n_steps else 0.0
        self._target = st.remaining * share / to_come if finite and to_come > 1e-12 else float("nan")
        price = self._lam_or(self._price_avg)
        obs = np.array([
            1.0 - st.time_frac, left, to_come, pace / (1.0 + pace),
            self._spend_ratio / (1.0 + self._spend_ratio), self._win,
            self._win if self._win_avg is None else self._win_avg, price, self._dual(self.lam),
        ], dtype=np.float64)
        return np.clip(obs, 0.0, 1.0).astype(np.float32)

    def _lam_or(self, x: float | None) -> float:
        return self._dual(self.lam) if x is None else x

    def update(self, out: Any, lam: float) -> None:
        """Remember the step's outcome (a :class:`BidOutcome`) and the λ it was bid with."""
        self.lam = float(lam)
        t = self._target
        self._spend_ratio = out.cost / t if np.isfinite(t) and t > 0 else 1.0
        self._win = out.impressions / out.bids if out.bids else 0.0
        m = self.memory
        self._win_avg = self._win if self._win_avg is None else (1 - m) * self._win_avg + m * self._win
        if out.cost > 0:
            p = self._dual(out.expected_value / out.cost - 1.0)
            self._price_avg = p if self._price_avg is None else (1 - m) * self._price_avg + m * p



def _default_budget_auction() -> AuctionConfig:
    return AuctionConfig(
        mechanism="second_price",
        campaigns=[CampaignConfig(name="agent", budget=50.0, value_per_click=1.0)],
        traffic=TrafficConfig(n_requests=20_000, n_steps=48),
    )


class BudgetBiddingEnv(gym.Env):
    """An advertiser paces a daily budget through a day of auctions.

    The day is split into ``n_steps`` decision steps. At each step the agent sets how hard its
    campaign bids for the step's whole batch of requests; the world runs every auction of the
    step (against the market and any other campaigns with their configured bidders), charges
    the agent (never past its budget) and reports the outcome.

    ## Action space
    ``Box(-1, 1, (1,), float32)``, one number ``a`` that sets the step's dual variable λ; every
    request of the step gets the bid ``v / (1 + λ)`` on its value ``v`` (:class:`BidActionMap`):

    ===================== =============================================== =======================
    ``action_type``       λ                                               ``a = 0`` means
    ===================== =============================================== =======================
    ``"scale"`` (default) ``1 + λ = max_scale^(−a)`` (bid v·max_scale^a)    truthful bidding
    ``"dual"``            ``λ = max_dual·(a+1)/2``                        ``λ = max_dual / 2``
    ``"log_dual"``        ``1 + λ = (1 + max_dual)^((a+1)/2)``            ``λ = √(1+max_dual)−1``
    ``"dual_step"``       ``1 + λ ← (1 + λ)·(1 + max_dual)^(max_step·a)`` keep λ (λ₀ at reset)
    ===================== =============================================== =======================

    ## Observation space
    ``Box(0, 1, (9,), float32)`` (:class:`PacingObservation`): share of the day left, of the
    budget left and of the traffic to come (1, 1, 1 at reset); the pace (budget left over
    traffic to come); the last step's spend against its target and its win rate; the recent win
    rate and price (as an implied dual, value / cost − 1); and the λ of the last step.

    ## Rewards
    The value the campaign realised in the step: clicks × value per click + conversions landed
    in the step × value per conversion (``reward="expected"``: the expected value of the
    impressions won, a lower-variance signal).

    ## Starting state
    Full budget at midnight; the day's traffic is drawn from the seeded generator.

    ## Episode end
    *Terminated* when the day is over or the budget is spent (both part of the task: time and
    budget are in the observation). The env never truncates; a TimeLimit wrapper may.
    With ``hindsight=True`` the final ``info`` carries ``hindsight_value`` (the budget's
    hindsight-optimal expected value, :func:`adsim.env.oracle.hindsight_optimal`) and
    ``pct_of_optimal``.

    ## Arguments
    * ``scenario`` — path or :class:`~adsim.config.Scenario` with an ``auction`` section; or
    * ``auction`` / ``world`` — configs (or dicts); default: one campaign, budget 50, 20k
      requests in 48 steps, second price against a log-normal market.
    * ``agent`` — index of the campaign the agent controls (others use their own bidders).
    * ``action_type``, ``max_scale`` (default 4), ``max_dual`` (default 10), ``max_step``
      (``dual_step``: largest change of log(1 + λ) per step as a share of log(1 + max_dual),
      default 0.1), ``lambda0`` (λ before the first step, default 1), ``reward``, ``hindsight``,
      ``world_seed``.
    * ``make_bidder`` — builds the other campaigns' bidders from their ``bidder`` configs
      (default: the core's reference bidders, :func:`adsim.env.bidders.baseline_bidder`; pass
      :func:`adsim.policies.factory.make_bidding_policy` for pacing or RL bidders).

    ## Example
    >>> import gymnasium as gym
    >>> import adsim.env.envs  # registers the ids
    >>> env = gym.make("adsim/BudgetBidding-v0")
    >>> obs, info = env.reset(seed=0)
    >>> [float(x) for x in obs[:3]]
    [1.0, 1.0, 1.0]
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> bool(terminated), info["step"]
    (False, 1)
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        scenario: str | os.PathLike[str] | Scenario | None = None,
        auction: AuctionConfig | dict[str, Any] | None = None,
        world: WorldConfig | dict[str, Any] | None = None,
        agent: int = 0,
        action_type: str = "scale",
        max_scale: float = 4.0,
        max_dual: float = 10.0,
        reward: str = "value",
        hindsight: bool = False,
        world_seed: int = 0,
        max_step: float = 0.1,
        lambda0: float = 1.0,
        make_bidder: Callable[[Any], BiddingPolicy] | None = None,
    ) -> None:
        super().__init__()
        from adsim.config import load_scenario, parse_config

        if scenario is not None:
            scn = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
            if scn.auction is None:
                raise ValueError("the scenario has no 'auction' section")
            wcfg, acfg = scn.world, scn.auction
        else:
            wcfg = _world_config(world)
            if auction is None:
                acfg = _default_budget_auction()
            elif isinstance(auction, AuctionConfig):
                acfg = auction
            else:
                acfg = parse_config(dict(auction), AuctionConfig, source="auction")
            scn = parse_config(
                {"name": "env", "world": wcfg.model_dump(), "auction": acfg.model_dump()},
                Scenario, source="env",
            )
        self.actions = BidActionMap(action_type, max_scale, max_dual, max_step)
        if reward not in ("value", "expected"):
            raise ValueError(f"reward must be 'value' or 'expected', got {reward!r}")
        if not 0 <= agent < len(acfg.campaigns):
            raise ValueError(
                f"agent must index a campaign in [0, {len(acfg.campaigns)}), got {agent}"
            )
        if lambda0 < 0:
            raise ValueError(f"lambda0 must be >= 0, got {lambda0}")
        self.agent, self.action_type, self.reward_type = agent, action_type, reward
        self.max_scale, self.max_dual, self.hindsight = float(max_scale), float(max_dual), hindsight
        ss = np.random.SeedSequence(world_seed).spawn(2)
        world_obj = World.from_config(wcfg, np.random.default_rng(ss[0]))
        self.auction = AuctionWorld(
            world_obj, acfg, np.random.default_rng(ss[1]), record_hindsight=hindsight
        )
        self._agent_bidder = ScaledBidder(1.0)
        self.bidders = [
            self._agent_bidder if c == agent else (make_bidder or baseline_bidder)(cc.bidder)
            for c, cc in enumerate(acfg.campaigns)
        ]
        budget = float(self.auction.campaigns.budgets[agent])
        self._budget = budget if np.isfinite(budget) else np.inf
        self.observer = PacingObservation(max_dual, lambda0)
        self.observation_space = spaces.Box(
            0.0, 1.0, shape=(PacingObservation.dim,), dtype=np.float32
        )
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._reports: list[Any] = []
        self._started = False

    def _obs(self) -> np.ndarray:
        return self.observer.observe(self.auction.state(self.agent))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.auction.reset(self.np_random, self.bidders)
        self.observer.reset()
        self._reports = []
        self._started = True
        return self._obs(), {"step": 0, "budget": self._budget}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (1,) or not np.isfinite(a[0]):
            raise ValueError(f"action must be one finite number in [-1, 1], got {action!r}")
        lam = self.actions(float(a[0]), self.observer.lam)
        self._agent_bidder.scale = 1.0 / (1.0 + lam)
        rep = self.auction.run_step(self.bidders)
        if self.hindsight:
            self._reports.append(rep)
        out = rep.outcomes[self.agent]
        self.observer.update(out, lam)
        reward = out.value if self.reward_type == "value" else out.expected_value
        st = self.auction.state(self.agent)
        spent_out = np.isfinite(self._budget) and st.remaining <= 1e-9 * self._budget
        terminated = bool(self.auction.done or spent_out)
        info: dict[str, Any] = {
            "step": self.auction.clock.step, "cost": out.cost, "impressions": out.impressions,
            "clicks": out.clicks, "conversions": out.conversions,
            "expected_value": out.expected_value, "spent": st.spent,
            "bid_scale": self._agent_bidder.scale, "lambda": lam,
        }
        if terminated and self.hindsight:
            from adsim.env.oracle import hindsight_optimal

            v = np.concatenate([r.hindsight_values[self.agent] for r in self._reports])
            c = np.concatenate([r.hindsight_costs[self.agent] for r in self._reports])
            h = hindsight_optimal(v, c, self._budget)
            got = sum(r.outcomes[self.agent].expected_value for r in self._reports)
            info["hindsight_value"] = h.value
            info["pct_of_optimal"] = 100.0 * got / h.value if h.value > 0 else float("nan")
        if terminated:
            self._started = False
        return self._obs(), float(reward), terminated, False, info


def register_envs() -> None:
    """Register ``adsim/AdSelection-v0`` and ``adsim/BudgetBidding-v0`` (idempotent)."""
    from gymnasium.envs.registration import register, registry

    if ENV_IDS[0] not in registry:
        register(id=ENV_IDS[0], entry_point="adsim.env.envs:AdSelectionEnv", max_episode_steps=1000)
    if ENV_IDS[1] not in registry:
        register(id=ENV_IDS[1], entry_point="adsim.env.envs:BudgetBiddingEnv")


register_envs()
