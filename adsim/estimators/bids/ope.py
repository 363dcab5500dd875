"""Off-policy estimates of a target bid rule ``b(x)`` from an auction exploration log.

For each outcome ``Y`` ∈ {value, spend, wins, clicks, conversions} the estimand is the target's
expected outcome per logged request, ``V = E_x[μ_Y(x, b(x))]`` with ``μ_Y(x, b) = E[Y | x, B=b]``
(daily totals: × requests per day). With weights ``w_i`` from :mod:`adsim.estimators.bids.kernel`
(grid indicators, or kernels on the log-bid) and a direct model ``q̂_Y(x, b)``:

=========== ================================================================ =================
estimator   per-request term ψ_i (estimate = mean)                           reference
=========== ================================================================ =================
``dm``      ``q̂_Y(x_i, b(x_i))``                                             censored landscape
``ips``     ``w_i Y_i``                                                      Horvitz–Thompson;
                                                                             Kallus & Zhou 2018
``snips``   ``Σ w_i Y_i / Σ w_i``                                            Swaminathan &
                                                                             Joachims 2015
``dr``      ``q̂_Y(x_i, b(x_i)) + w_i (Y_i − q̂_Y(x_i, B_i))``                  Dudík et al. 2011;
                                                                             Kallus & Zhou 2018
=========== ================================================================ =================

On grid logs the names are ``ips``/``snips``/``dr``; on continuous (log-normal) logs
``kernel_ips``/``kernel_snips``/``kernel_dr``. The **direct model** factors each outcome through
the censored landscape (:mod:`adsim.estimators.bids.landscape`), because in a one-slot auction
the bid changes only *whether* the request is won and (second price: not even) what is paid:

* wins: ``Ŵ(b | x)``; spend: ``P̂(b | x) = Ê[D 1{D <= b}]`` (second price) or ``b Ŵ(b|x)``
  (first price);
* value / clicks / conversions: ``Ŵ(b | x) · ĝ_Y(x)`` with ``ĝ_Y(x) = α_Y · s(x)``, ``s`` the
  logged ``expected_value`` (value) or ``ctr`` (clicks, conversions; ``expected_value`` if the
  log has no ``ctr``) and ``α_Y = Σ_won Y / Σ_won s`` a calibration fitted on won requests.

Intervals: CLT on ψ (delta method for SNIPS) or the vectorised bootstrap of
:mod:`adsim.estimators.intervals`; both treat the bandwidth and the fitted landscape as fixed
(the landscape is fitted on the same log; DR stays consistent if either the weights or the model
are right, but the interval ignores the model's own estimation error, so DM intervals are too
narrow). For IPS/SNIPS/DR holding them fixed is first-order harmless: the sample variance of ψ is
the exact finite-``h`` variance of the kernel term (not Kallus & Zhou's leading-order
``R(K)E[σ²/g0]/(nh)``), DR's ψ is insensitive to first-order errors of ``q̂`` (Chernozhukov et
al. 2018, Neyman orthogonality), and the plug-in ``h`` barely varies between logs;
``benchmarks/bid_ope_interval_check.py`` measures the reported standard error against the
closed-form sampling s.d. (docs/bid_ope.md §5). What is identified from the log alone: IPS/SNIPS on grid logs (exactly), kernel
IPS/SNIPS up to an O(h²) smoothing bias; DM rests on the landscape and ĝ models; DR needs one
of the two.

Targets: any object with ``bid(requests, state)`` (:class:`~adsim.policies.base.BiddingPolicy`)
— it is asked once for the whole log with a static state (a stateful pacing policy is evaluated
at its current multiplier), see :func:`target_bids`.

References:
    N. Kallus, A. Zhou (2018). Policy evaluation and optimization with continuous treatments.
    AISTATS.
    M. Dudík, J. Langford, L. Li (2011). Doubly robust policy evaluation and learning. ICML.
    A. Swaminathan, T. Joachims (2015). The self-normalized estimator for counterfactual
    learning. NeurIPS.
    W. C.-H. Wu, M.-Y. Yeh, M.-S. Chen (2015). Predicting winning price in real time bidding
    with censored data. KDD.
    V. Chernozhukov et al. (2018). Double/debiased machine learning for treatment and structural
    parameters. The Econometrics Journal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from adsim.errors import DataError
from adsim.estimators.base import Components, Estimate
from adsim.estimators.bids.kernel import (
    KERNELS,
    BidOverlap,
    bid_overlap,
    grid_weights,
    kernel_weights,
    plug_in_bandwidth,
    silverman_bandwidth,
)
from adsim.estimators.bids.landscape import fit_landscape
from adsim.estimators.bids.log import BidLog
from adsim.estimators.intervals import estimate_with_interval

__all__ = ["OUTCOMES", "BID_ESTIMATORS", "BidOPE", "BidOPEResult", "target_bids"]

OUTCOMES: tuple[str, ...] = ("value", "spend", "wins", "clicks", "conversions")
BID_ESTIMATORS: tuple[str, ...] = ("dm", "ips", "snips", "dr")
_LOG_COL = {"value": "value", "spend": "price", "wins": "won", "clicks": "click",
            "conversions": "conversion"}


def target_bids(target: Any, log: BidLog, contexts: Any = None) -> np.ndarray:
    """The target's bids on every logged request: ``target.bid(requests, state)`` once, with
    ``requests`` built from the log (``expected_value``, ``ctr``, ``time``; ``contexts`` if
    given) and a static state (step 0 of 1, no budget)."""
    from adsim.env.types import BidderState, BidRequests

    n = log.n_rounds
    values = log.col("expected_value")
    ctr = log.col("ctr") if "ctr" in log.frame.columns else np.full(n, np.nan)
    time = log.col("time") if "time" in log.frame.columns else np.zeros(n)
    req = BidRequests(contexts, values, ctr, np.ones(n, bool), time)
    state = BidderState(step=0, n_steps=1, budget=float("inf"), spent=0.0, traffic_share=1.0,
                        elapsed_share=0.0)
    label = getattr(target, "name", type(target).__name__)
    try:
        b = np.asarray(target.bid(req, state), dtype=np.float64)
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        raise DataError(
            f"target {label!r} could not bid on the log's requests ({type(exc).__name__}: {exc});"
            " targets that read user features need the log's context columns and feature spec"
        ) from None
    if b.shape != (n,):
        raise DataError(f"target {getattr(target, 'name', target)!r} returned bids of shape {b.shape}; expected ({n},)")
    bad = np.flatnonzero(~np.isfinite(b) | (b < 0))
    if bad.size:
        raise DataError(f"target {getattr(target, 'name', target)!r}: bid {b[bad[0]]!r} at row {bad[0]} must be finite and >= 0")
    return b


@dataclass
class BidOPEResult:
    """Estimates of one target: ``table`` (one row per outcome × estimator) and diagnostics."""

    target: str
    estimates: list[Estimate]
    outcomes: list[str]
    overlap: BidOverlap
    requests_per_day: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        rows = []
        for e, y in zip(self.estimates, self.outcomes):
            r: dict[str, Any] = {"target": self.target, "outcome": y, **e.to_dict(),
                                 "bandwidth": e.details.get("bandwidth")}
            if self.requests_per_day:
                r["daily"] = e.value * self.requests_per_day
                r["daily_ci_low"] = e.ci_low * self.requests_per_day
                r["daily_ci_high"] = e.ci_high * self.requests_per_day
            rows.append(r)
        return pd.DataFrame(rows)

    def get(self, outcome: str, estimator: str) -> Estimate:
        for e, y in zip(self.estimates, self.outcomes):
            if y == outcome and e.estimator == estimator:
                return e
        raise KeyError(f"no estimate of {outcome!r} by {estimator!r}")


class BidOPE:
    """Fits the landscape and outcome models of a bid log once; evaluates any number of targets.

    Args:
        log: the exploration log.
        estimators: subset of ``dm, ips, snips, dr``.
        landscape: ``lognormal`` or ``km`` (see :mod:`~adsim.estimators.bids.landscape`).
        segment_by: log columns that split the landscape into segments.
        bandwidth: ``plug_in`` (Kallus & Zhou MSE rule), ``silverman`` or a number (log-bid
            units); continuous logs only.
        kernel: ``gaussian`` or ``epanechnikov``.
        confidence, interval, n_bootstrap, bootstrap_scheme, random_state: intervals.
        warn: issue a :class:`~adsim.estimators.bids.kernel.BidOverlapWarning` on poor overlap.
    """

    def __init__(
        self,
        log: BidLog,
        estimators: tuple[str, ...] | list[str] = BID_ESTIMATORS,
        landscape: str = "lognormal",
        segment_by: list[str] | None = None,
        bandwidth: Literal["plug_in", "silverman"] | float = "plug_in",
        kernel: str = "gaussian",
        confidence: float = 0.95,
        interval: Literal["clt", "bootstrap", "bernstein"] = "clt",
        n_bootstrap: int = 1000,
        bootstrap_scheme: Literal["multinomial", "half"] = "half",
        random_state: int | None = 0,
        warn: bool = True,
    ) -> None:
        bad = [e for e in estimators if e not in BID_ESTIMATORS]
        if bad:
            raise DataError(f"unknown bid estimator {bad[0]!r}; choose from {BID_ESTIMATORS}")
        if kernel not in KERNELS:
            raise DataError(f"unknown kernel {kernel!r}; choose from {sorted(KERNELS)}")
        if isinstance(bandwidth, str) and bandwidth not in ("plug_in", "silverman"):
            raise DataError(f"bandwidth must be 'plug_in', 'silverman' or a number > 0, got {bandwidth!r}")
        if not isinstance(bandwidth, str) and not bandwidth > 0:
            raise DataError(f"bandwidth must be > 0, got {bandwidth}")
        if interval not in ("clt", "bootstrap", "bernstein"):
            raise DataError(f"interval must be clt, bootstrap or bernstein, got {interval!r}")
        self.log, self.estimators = log, list(estimators)
        self.bandwidth, self.kernel = bandwidth, kernel
        self.confidence, self.interval = confidence, interval
        self.n_bootstrap, self.bootstrap_scheme = n_bootstrap, bootstrap_scheme
        self.random_state, self.warn = random_state, warn
        self.bid = log.col("bid")
        self._q_logged: dict[str, np.ndarray] = {}
        self.base = log.col("base_bid")
        self.won = log.col("won")
        self._landscape_args = (landscape, segment_by)
        self._landscape: Any = None
        ev = log.col("expected_value")
        ctr = log.col("ctr") if "ctr" in log.frame.columns else ev
        self.scale_ = {"value": ev, "clicks": ctr, "conversions": ctr}
        w = self.won == 1
        self.alpha_ = {}
        for y, s in self.scale_.items():
            den = float(s[w].sum())
            self.alpha_[y] = float(log.col(_LOG_COL[y])[w].sum()) / den if den > 0 else 0.0
        self.log_mult = log.log_multiplier
        self.h_silverman = silverman_bandwidth(self.log_mult) if log.kind == "lognormal" else None
        if log.kind == "lognormal":
            self.support = tuple(np.quantile(self.log_mult, [0.005, 0.995]))
            self.log_g0 = log.log_density

    # ----------------------------------------------------------------------- direct model
    def _fit(self) -> None:
        if self._landscape is None:
            model, segment_by = self._landscape_args
            self._landscape, self._seg = fit_landscape(
                self.bid, self.won, self.log.col("min_bid"), model, self.log.frame, segment_by
            )

    @property
    def landscape_(self) -> Any:
        """The censored landscape (fitted on first use: IPS/SNIPS on grid logs never need it)."""
        self._fit()
        return self._landscape

    @landscape_.setter
    def landscape_(self, value: Any) -> None:
        self._landscape = value
        if getattr(self, "_seg", None) is None:
            self._seg = np.zeros(self.log.n_rounds, np.int64)

    @property
    def seg_(self) -> np.ndarray:
        self._fit()
        return self._seg

    def q_hat(self, outcome: str, b: np.ndarray) -> np.ndarray:
        """q̂_Y(x_i, b_i) for every logged row (``b = 0``: no bid, 0)."""
        b = np.asarray(b, dtype=np.float64)
        pos = b > 0
        bb = np.where(pos, b, 1.0)
        win = np.where(pos, self.landscape_.win_prob(bb, self.seg_), 0.0)
        if outcome == "wins":
            return win
        if outcome == "spend":
            if self.log.mechanism == "second_price":
                return np.where(pos, self.landscape_.payment(bb, self.seg_), 0.0)
            return b * win
        if outcome in self.scale_:
            return win * self.alpha_[outcome] * self.scale_[outcome]
        raise DataError(f"unknown outcome {outcome!r}; choose from {OUTCOMES}")

    def _curvature(self, outcome: str, t_star: np.ndarray, delta: float = 0.05,
                   max_rows: int = 20_000) -> float:
        """Mean of ∂²q̂(x, e^t)/∂t² at t* by central differences, over an evenly spaced subset
        of at most ``max_rows`` rows (rows without a bid count as 0)."""
        n = t_star.shape[0]
        idx = np.arange(0, n, max(1, n // max_rows))
        ok = np.isfinite(t_star[idx])
        t = np.where(ok, t_star[idx], 0.0)
        q = [self._q_rows(outcome, np.exp(t + d), idx) for d in (-delta, 0.0, delta)]
        return float(np.mean(np.where(ok, (q[0] - 2 * q[1] + q[2]) / delta**2, 0.0)))

    def _q_rows(self, outcome: str, b: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """q̂_Y(x_i, b) for the rows ``idx`` only."""
        seg = self.seg_[idx]
        win = self.landscape_.win_prob(b, seg)
        if outcome == "wins":
            return win
        if outcome == "spend":
            if self.log.mechanism == "second_price":
                return self.landscape_.payment(b, seg)
            return b * win
        return win * self.alpha_[outcome] * self.scale_[outcome][idx]

    # ---------------------------------------------------------------------------- weights
    def _weights(self, b: np.ndarray, outcome: str) -> tuple[np.ndarray, np.ndarray, float | None]:
        with np.errstate(divide="ignore"):
            t_star = np.log(b)
        if self.log.kind == "grid":
            grid = np.asarray(self.log.exploration["multipliers"], dtype=np.float64)
            mult = b / self.base
            w, supported = grid_weights(mult, self.bid / self.base, self.log.col("propensity"), grid)
            return w, ~supported & (b > 0), None
        t_logged = np.log(self.bid)
        lm = t_star - np.log(self.base)
        unsupported = (b > 0) & ((lm < self.support[0]) | (lm > self.support[1]))
        if isinstance(self.bandwidth, str):
            assert self.h_silverman is not None
            h = self.h_silverman
            if self.bandwidth == "plug_in":
                y = self.log.col(_LOG_COL[outcome])
                h = plug_in_bandwidth(y, t_star, t_logged, self.log_g0,
                                      self._curvature(outcome, t_star), h, self.kernel)
        else:
            h = float(self.bandwidth)
        return kernel_weights(t_star, t_logged, self.log_g0, h, self.kernel), unsupported, h

    # ------------------------------------------------------------------------- estimation
    def _name(self, est: str) -> str:
        return f"kernel_{est}" if self.log.kind == "lognormal" and est != "dm" else est

    def components(self, est: str, outcome: str, b: np.ndarray, w: np.ndarray) -> Components:
        """Per-row components (u, c, d) of estimator ``est`` (see the module table)."""
        y = self.log.col(_LOG_COL[outcome])
        if est == "dm":
            return Components(self.q_hat(outcome, b))
        if est == "ips":
            return Components(w * y)
        if est == "snips":
            return Components(np.zeros_like(y), w * y, w)
        if est == "dr":
            if outcome not in self._q_logged:
                self._q_logged[outcome] = self.q_hat(outcome, self.bid)
            return Components(self.q_hat(outcome, b) + w * (y - self._q_logged[outcome]))
        raise DataError(f"unknown bid estimator {est!r}")

    def _estimate(self, name: str, comp: Components, details: dict[str, Any]) -> Estimate:
        if comp.d is not None and not comp.d.sum() > 0:
            n = comp.u.shape[0]
            return Estimate(name, float("nan"), float("nan"), float("nan"), float("nan"), n,
                            self.confidence, self.interval, None, details)
        value, se, lo, hi, n = estimate_with_interval(
            comp, self.confidence, self.interval, self.n_bootstrap, self.random_state,
            self.bootstrap_scheme,
        )
        return Estimate(name, value, se, lo, hi, n, self.confidence, self.interval, None, details)

    def estimate(self, bids: np.ndarray, outcome: str, estimator: str) -> Estimate:
        """One outcome by one estimator for given target bids (no diagnostics, no warning)."""
        b = np.asarray(bids, dtype=np.float64)
        w, _, h = self._weights(b, outcome)
        return self._estimate(self._name(estimator), self.components(estimator, outcome, b, w),
                              {"bandwidth": h})

    def evaluate(
        self, target: Any = None, bids: np.ndarray | None = None,
        outcomes: tuple[str, ...] | list[str] = OUTCOMES, name: str | None = None,
    ) -> BidOPEResult:
        """Estimate the target's outcomes; pass a bidder ``target`` or its ``bids`` directly."""
        if bids is None:
            if target is None:
                raise DataError("evaluate needs a target bidder or its bids")
            bids = target_bids(target, self.log)
        b = np.asarray(bids, dtype=np.float64)
        label = name or getattr(target, "name", None) or "target"
        bad = [y for y in outcomes if y not in OUTCOMES]
        if bad:
            raise DataError(f"unknown outcome {bad[0]!r}; choose from {OUTCOMES}")
        ests, outs = [], []
        overlap = None
        for y in outcomes:
            w, unsupported, h = self._weights(b, y)
            if overlap is None:
                overlap = bid_overlap(w, unsupported, h)
            for est in self.estimators:
                comp = self.components(est, y, b, w)
                ests.append(self._estimate(self._name(est), comp, {"bandwidth": h}))
                outs.append(y)
        assert overlap is not None
        if self.warn:
            overlap.warn(stacklevel=3)
        return BidOPEResult(label, ests, outs, overlap, self.log.meta.get("requests_per_day"))
