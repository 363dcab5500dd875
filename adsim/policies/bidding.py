"""Budget-paced bidding policies (one campaign, batched over a step's requests).

Notation: a step t of the day brings requests i with expected value v_i (in bid units, see
:class:`~adsim.policies.base.BidRequests`); the campaign has budget B and spends c_t in step t.
The *target* spend of step t is ρ_t = B · s_t with s_t the step's expected share of the day's
traffic (the ideal pacing line), or — ``adaptive`` — the budget still left spread over the
traffic still to come, ρ_t = (B − spent) · s_t / (1 − Σ_{τ<t} s_τ).

* :class:`TruthfulBidder` (re-exported) — b_i = v_i, the dominant strategy of an unbudgeted
  second-price auction (Vickrey 1961).
* :class:`DualPacingBidder` — Lagrangian dual pacing. The budget-constrained problem
  max Σ (v_i − p_i) x_i s.t. Σ p_i x_i ≤ B has Lagrangian Σ x_i (v_i − (1+λ) p_i) + λB, so in a
  second-price auction the best response to a multiplier λ is b_i = v_i / (1 + λ); λ is learned
  online by dual mirror descent on the normalised constraint gradient g_t = (ρ_t − c_t)/ρ_t:
  Euclidean mirror map λ ← max(0, λ − η g_t) (projected subgradient) or entropic
  λ ← λ·exp(−η g_t) (multiplicative weights). Balseiro, Lu & Mirrokni (2020), "Dual Mirror
  Descent for Online Allocation Problems", ICML — O(√T) regret on stationary (i.i.d.) input;
  the multiplicative-pacing equilibria of several such bidders are studied by Conitzer, Kroer,
  Sodomka & Stier-Moses (2022), "Multiplicative Pacing Equilibria in Auction Markets", OR.
* :class:`PIDPacingBidder` — a PID controller on the spend-rate error e_t = (ρ_t − c_t)/ρ_t
  driving a log bid multiplier, b_i = v_i · exp(u_t), u_t = u_0 + K_p e_t + K_i Σ e + K_d Δe
  (Zhang et al. 2016, "Feedback Control of Real-Time Display Advertising", WSDM).
* :class:`ShadedPacingBidder` — first price: b_i = argmax_b (v_i/(1+λ) − b) ŵ(b) over a grid of
  shading factors, with a logistic win-rate curve ŵ(b) = σ(α + β log b) fitted on the campaign's
  own (bid, won) history, and λ as in dual pacing (first-price Lagrangian best response).
* :class:`CPAPacingBidder` — budget and CPA constraints (Σ p ≤ B, Σ p ≤ T·Σ conversions), two
  multipliers: Lagrangian Σ x_i (v_i + μ T a_i − (1 + λ + μ) p_i) gives
  b_i = (v_i + μ T â_i)/(1 + λ + μ), â_i the expected conversions of winning request i; μ follows
  μ ← max(0, μ − η_μ (T·CONV − C)/max(T·CONV, C)), the relative CPA slack of the day so far
  (the constraint binds on the day's totals) (He et al. 2021, "A Unified Solution to Constrained
  Bidding in Online Display Advertising", KDD).
* :class:`TSLagrangianBidder` — does not know its CTR: a Bayesian logistic regression of
  P(click | impression, x) with a Laplace posterior (Chapelle & Li 2011) is updated online from
  its own won impressions; each request gets its own posterior draw (Thompson sampling), and the
  sampled value feeds the dual-pacing bid v̂_i/(1+λ): learning while it bids.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from adsim.env.bidders import ConstantPacingBidder, TruthfulBidder
from adsim.env.features import as_features
from adsim.errors import ConfigError
from adsim.policies.base import BidderState, BiddingPolicy, BidOutcome, BidRequests

__all__ = [
    "ConstantPacingBidder",
    "CPAPacingBidder",
    "DualPacingBidder",
    "PIDPacingBidder",
    "ShadedPacingBidder",
    "TSLagrangianBidder",
    "TruthfulBidder",
    "target_spend",
]

LAMBDA_MAX = 1e4


def target_spend(state: BidderState, target: str = "traffic", adaptive: bool = True) -> float:
    """ρ_t, the spend the pacing line asks of this step (see the module docstring)."""
    if not np.isfinite(state.budget):
        return float("inf")
    if target == "even":
        share, to_come = 1.0 / state.n_steps, (state.n_steps - state.step) / state.n_steps
    else:
        share, to_come = state.traffic_share, 1.0 - state.elapsed_share
    if adaptive:
        return state.remaining * share / max(to_come, share, 1e-12)
    return state.budget * share


class _Multiplier:
    """A Lagrange multiplier updated by mirror descent on a normalised gradient g ∈ [−g_max, 1]."""

    def __init__(self, step_size: float, lambda0: float, mirror: str = "euclidean") -> None:
        if mirror not in ("euclidean", "entropic"):
            raise ValueError(f"mirror must be 'euclidean' or 'entropic', got {mirror!r}")
        if step_size <= 0 or lambda0 < 0:
            raise ValueError(f"need step_size > 0 and lambda0 >= 0, got {step_size}, {lambda0}")
        self.step_size, self.mirror = float(step_size), mirror
        self.value = float(lambda0) if mirror == "euclidean" else max(float(lambda0), 1e-3)

    def step(self, g: float, g_max: float = 2.0) -> None:
        g = float(np.clip(g, -g_max, 1.0))
        if self.mirror == "euclidean":
            self.value = min(max(self.value - self.step_size * g, 0.0), LAMBDA_MAX)
        else:
            self.value = min(max(self.value * np.exp(-self.step_size * g), 1e-6), LAMBDA_MAX)


class _Paced(BiddingPolicy):
    """Shared book-keeping: the step's target spend and a per-step trace for plots."""

    def __init__(self, target: str = "traffic", adaptive: bool = True) -> None:
        self.target, self.adaptive = target, adaptive
        self._rho = float("inf")
        self.trace: dict[str, list[float]] = {"lambda": [], "target": [], "cost": []}

    def _start_step(self, state: BidderState) -> None:
        self._rho = target_spend(state, self.target, self.adaptive)

    def _gradient(self, outcome: BidOutcome) -> float | None:
        """(ρ_t − c_t)/ρ_t, or None without a finite positive target."""
        self.trace["target"].append(self._rho)
        self.trace["cost"].append(outcome.cost)
        if not np.isfinite(self._rho) or self._rho <= 0:
            return None
        return (self._rho - outcome.cost) / self._rho

    def reset(self) -> None:
        """New day: the learned multipliers carry over (warm start); the trace starts afresh."""
        self.trace = {k: [] for k in self.trace}


class DualPacingBidder(_Paced):
    """b_i = v_i / (1 + λ), λ by dual mirror descent (Balseiro, Lu & Mirrokni 2020).

    Args:
        step_size: η (the gradient is normalised by the target, so η is unit-free).
        lambda0: initial λ.
        mirror: ``euclidean`` (projected subgradient) or ``entropic`` (multiplicative).
        target, adaptive: the pacing target (see :func:`target_spend`).
    """

    name = "dual_pacing"

    def __init__(
        self, step_size: float = 0.5, lambda0: float = 1.0, mirror: str = "euclidean",
        target: str = "traffic", adaptive: bool = True, max_step_spend: float | None = None,
        g_max: float = 2.0,
    ) -> None:
        super().__init__(target, adaptive)
        self.lam = _Multiplier(step_size, lambda0, mirror)
        self.max_step_spend, self.g_max = max_step_spend, float(g_max)

    def spend_limit(self, state: BidderState) -> float:
        """``max_step_spend × ρ_t`` (a throttle against a bad λ early in the day), else no cap."""
        if self.max_step_spend is None:
            return float("inf")
        return self.max_step_spend * target_spend(state, self.target, self.adaptive)

    @property
    def lambda_(self) -> float:
        return self.lam.value

    def bid(self, requests: BidRequests, state: BidderState) -> np.ndarray:
        self._start_step(state)
        return np.where(requests.eligible, requests.values / (1.0 + self.lam.value), 0.0)

    def update(self, outcome: BidOutcome) -> None:
        self.trace["lambda"].append(self.lam.value)
        g = self._gradient(outcome)
        if g is not None:
            self.lam.step(g, self.g_max)


class PIDPacingBidder(_Paced):
    """b_i = v_i · exp(u_t), u_t from a PID controller on the spend-rate error (Zhang et al. 2016).

    The trace's ``lambda`` is the equivalent multiplier exp(−u) − 1, so PID and dual pacing plot
    on the same axis.
    """

    name = "pid_pacing"

    def __init__(
        self, kp: float = 0.5, ki: float = 0.2, kd: float = 0.0, u0: float = -0.5,
        target: str = "traffic", adaptive: bool = True,
    ) -> None:
        super().__init__(target, adaptive)
        self.kp, self.ki, self.kd, self.u0 = float(kp), float(ki), float(kd), float(u0)
        self.u, self._integral, self._prev = self.u0, 0.0, 0.0

    def bid(self, requests: BidRequests, state: BidderState) -> np.ndarray:
        self._start_step(state)
        return np.where(requests.eligible, requests.values * np.exp(self.u), 0.0)

    def update(self, outcome: BidOutcome) -> None:
        self.trace["lambda"].append(float(np.exp(-self.u) - 1.0))
        e = self._gradient(outcome)
        if e is None:
            return
        e = float(np.clip(e, -2.0, 1.0))
        self._integral += e
        self.u = float(np.clip(
            self.u0 + self.kp * e + self.ki * self._integral + self.kd * (e - self._prev),
            -10.0, 3.0,
        ))
        self._prev = e


class ShadedPacingBidder(_Paced):
    """First-price shading of the paced value (see the module docstring).

    The win-rate curve ŵ(b) = σ(α + β log b) is refit each step by Newton's method on the last
    ``history`` (log bid, won) pairs; until it has both wins and losses, bids are
    ``initial_shade × v/(1+λ)``.
    """

    name = "shaded_pacing"

    def __init__(
        self, step_size: float = 0.5, lambda0: float = 0.5, initial_shade: float = 0.7,
        pace: bool = True, n_grid: int = 48, history: int = 50_000, seed: int = 0,
        target: str = "traffic", adaptive: bool = True,
    ) -> None:
        super().__init__(target, adaptive)
        self.lam = _Multiplier(step_size, lambda0 if pace else 0.0)
        self.pace, self.initial_shade = pace, float(initial_shade)
        self.grid = np.linspace(0.02, 1.0, n_grid)  # shading factors b / v'
        self.history = int(history)
        self.coef: np.ndarray | None = None  # (α, β)
        self._logb = np.zeros(0)
        self._won = np.zeros(0)
        self._last_bids = np.zeros(0)
        self._rng = np.random.default_rng(seed)

    def win_rate(self, bids: np.ndarray) -> np.ndarray:
        """ŵ(b) under the fitted curve (``initial`` behaviour before it exists: None)."""
        assert self.coef is not None
        with np.errstate(divide="ignore"):
            return expit(self.coef[0] + self.coef[1] * np.log(np.maximum(bids, 1e-300)))

    def bid(self, requests: BidRequests, state: BidderState) -> np.ndarray:
        self._start_step(state)
        lam = self.lam.value if self.pace else 0.0
        v = requests.values / (1.0 + lam)
        if self.coef is None:
            b = self.initial_shade * v
        else:
            cand = v[:, None] * self.grid[None, :]  # (n, G)
            surplus = (v[:, None] - cand) * self.win_rate(cand)
            b = cand[np.arange(v.shape[0]), surplus.argmax(axis=1)]
        b = np.where(requests.eligible, b, 0.0)
        self._last_bids = b
        return b

    def _fit(self) -> None:
        y, lb = self._won, self._logb
        if y.size < 20 or y.min() == y.max():
            return
        x = np.stack([np.ones_like(lb), lb], axis=1)
        w = np.zeros(2) if self.coef is None else self.coef.copy()
        for _ in range(25):
            p = expit(x @ w)
            grad = x.T @ (p - y) + 1e-3 * w
            hess = (x * (p * (1 - p))[:, None]).T @ x + 1e-3 * np.eye(2)
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.max(np.abs(step)) < 1e-8:
                break
        self.coef = w

    def update(self, outcome: BidOutcome) -> None:
        self.trace["lambda"].append(self.lam.value if self.pace else 0.0)
        placed = self._last_bids > 0
        if placed.any():
            self._logb = np.concatenate([self._logb, np.log(self._last_bids[placed])])[-self.history:]
            self._won = np.concatenate([self._won, outcome.won[placed].astype(float)])[-self.history:]
            self._fit()
        g = self._gradient(outcome)
        if g is not None and self.pace:
            self.lam.step(g)


class CPAPacingBidder(_Paced):
    """Budget + CPA constraints with two multipliers (see the module docstring).

    â_i, the expected conversions of winning request i, is p̂_cvr × CTR_i with p̂_cvr the
    smoothed conversion rate per click observed so far (prior 1 conversion in 20 clicks); with
    ``per_click`` bids (eCPM ranking) a win is a click, so â_i = p̂_cvr.
    """

    name = "cpa_pacing"

    def __init__(
        self, target_cpa: float, step_size: float = 0.5, cpa_step_size: float = 2.0,
        lambda0: float = 1.0, per_click: bool = False, target: str = "traffic",
        adaptive: bool = True,
    ) -> None:
        super().__init__(target, adaptive)
        if target_cpa <= 0:
            raise ValueError(f"target_cpa must be > 0, got {target_cpa}")
        self.target_cpa, self.per_click = float(target_cpa), per_click
        self.lam = _Multiplier(step_size, lambda0)
        self.mu = _Multiplier(cpa_step_size, 0.0)
        self.cost, self.day_conversions = 0.0, 0
        self.clicks, self.conversions = 0, 0
        self.trace["mu"] = []

    def reset(self) -> None:
        """New day: the CPA constraint's running totals restart (p̂_cvr and λ, μ carry over)."""
        super().reset()
        self.cost, self.day_conversions = 0.0, 0

    @property
    def cvr_hat(self) -> float:
        return (self.conversions + 1.0) / (self.clicks + 20.0)

    def bid(self, requests: BidRequests, state: BidderState) -> np.ndarray:
        self._start_step(state)
        a_hat = self.cvr_hat * (1.0 if self.per_click else requests.ctr)
        lam, mu = self.lam.value, self.mu.value
        b = (requests.values + mu * self.target_cpa * a_hat) / (1.0 + lam + mu)
        return np.where(requests.eligible, b, 0.0)

    def update(self, outcome: BidOutcome) -> None:
        self.trace["lambda"].append(self.lam.value)
        self.trace["mu"].append(self.mu.value)
        self.clicks += outcome.clicks
        self.conversions += outcome.conversions
        self.cost += outcome.cost
        self.day_conversions += outcome.conversions
        allowed = self.target_cpa * self.day_conversions
        scale = max(allowed, self.cost)
        if scale > 0:  # relative CPA slack of the day so far, in [-1, 1]
            self.mu.step((allowed - self.cost) / scale)
        g = self._gradient(outcome)
        if g is not None:
            self.lam.step(g)


class TSLagrangianBidder(_Paced):
    """Thompson-sampled CTR feeding a dual-pacing bid (see the module docstring).

    The model is logit P(click | impression, x) = [1, x]·θ with prior θ ~ N(m0, λ_p⁻¹ I),
    m0 = (logit(prior_ctr), 0, …, 0), and an online Laplace posterior N(m, H⁻¹) updated from the
    won impressions of each step (needs ``BidOutcome.clicked``). For request i the sampled logit
    is x_i·m + z_i sqrt(x_iᵀH⁻¹x_i), z_i ~ N(0, 1) — the marginal of a fresh posterior draw θ̃
    per request. The value per click is read off the request (values / ctr); the bid is
    v̂_i/(1+λ) with v̂_i = value per click × σ(sampled logit).
    """

    name = "ts_lagrangian"

    def __init__(
        self, dim: int, step_size: float = 0.5, lambda0: float = 1.0,
        prior_precision: float = 1.0, prior_ctr: float = 0.05, seed: int = 0,
        target: str = "traffic", adaptive: bool = True, mirror: str = "entropic",
        max_step_spend: float | None = 3.0,
    ) -> None:
        super().__init__(target, adaptive)
        from adsim.policies.bandits import _LaplaceArms

        self.lam = _Multiplier(step_size, lambda0, mirror)
        self.max_step_spend = max_step_spend
        m0 = np.zeros(int(dim) + 1)
        m0[0] = logit(prior_ctr)
        self.model = _LaplaceArms(1, int(dim) + 1, prior_precision, 25, "online", prior_mean=m0)
        self._rng = np.random.default_rng(seed)
        self._x = np.zeros((0, int(dim) + 1))
        self._cov: np.ndarray | None = None

    def spend_limit(self, state: BidderState) -> float:
        """``max_step_spend × ρ_t``: early, wide posteriors make costly bids; cap their spend."""
        if self.max_step_spend is None:
            return float("inf")
        return self.max_step_spend * target_spend(state, self.target, self.adaptive)

    def sampled_ctr(self, x: np.ndarray) -> np.ndarray:
        """One Thompson draw of P(click | impression) per row of ``x`` (with intercept)."""
        if self._cov is None:
            self._cov = np.linalg.inv(self.model.precision[0])
        mean = x @ self.model.mean[0]
        sd = np.sqrt(np.maximum(np.einsum("nd,de,ne->n", x, self._cov, x), 0.0))
        return expit(mean + sd * self._rng.standard_normal(x.shape[0]))

    def bid(self, requests: BidRequests, state: BidderState) -> np.ndarray:
        self._start_step(state)
        x = as_features(requests.contexts)
        self._x = np.hstack([np.ones((x.shape[0], 1)), x])
        vpc = np.divide(
            requests.values, requests.ctr, out=np.zeros_like(requests.values),
            where=requests.ctr > 0,
        )
        b = vpc * self.sampled_ctr(self._x) / (1.0 + self.lam.value)
        return np.where(requests.eligible, b, 0.0)

    def update(self, outcome: BidOutcome) -> None:
        self.trace["lambda"].append(self.lam.value)
        if outcome.clicked is None:
            raise ConfigError(
                "ts_lagrangian learns from per-impression clicks, but the world's BidOutcome has"
                " no 'clicked' array; use an auction world that reports it"
            )
        won = np.asarray(outcome.won, bool)
        if won.any():
            y = np.asarray(outcome.clicked, dtype=np.float64)[won]
            self.model.update(self._x[won], np.zeros(int(won.sum()), np.int64), y)
            self._cov = None
        g = self._gradient(outcome)
        if g is not None:
            self.lam.step(g)
