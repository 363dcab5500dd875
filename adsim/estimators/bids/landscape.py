"""The win-rate and price landscape from censored auction logs.

Let ``D`` be the *minimum bid to win* a request (the highest competing rank score, reserve
included, in bid units). A bid ``b`` wins iff ``b >= D``; a second-price winner pays ``D``, a
first-price winner pays ``b``. The log shows ``D`` only on one side:

================================ ============================ ==============================
mechanism                        win (``b >= D``)             loss (``b < D``)
================================ ============================ ==============================
second price                     ``D`` = price (exact)        ``D > b`` (right-censored)
first price, reveal on loss      ``D <= b`` (left-censored)   ``D`` revealed (exact)
first price, no reveal           ``D <= b``                   ``D > b`` (current status)
================================ ============================ ==============================

Treating only the observed prices as the distribution of ``D`` is biased towards cheap requests
(the ones we won); the fits here use the censored observations properly (Wu, Yeh, Chen 2015,
"Predicting Winning Price in Real Time Bidding with Censored Data", KDD):

* :class:`KaplanMeierLandscape` — the product-limit estimator per segment (Kaplan & Meier 1958),
  ``Ŝ(u) = Π_{u_j <= u} (1 − d_j / r_j)`` with ``d_j`` exact observations at ``u_j`` and ``r_j``
  rows still at risk; right censoring directly (second price), left censoring by reversing time
  (``T = −log D``) when the first-price exchange reveals ``D`` on losses. Computed with
  :func:`scipy.stats.ecdf` on :class:`scipy.stats.CensoredData`. Mass the estimator leaves beyond
  the last exact observation is put at ``D = ∞`` (never won).
* :class:`LogNormalLandscape` — ``log D ~ N(μ_s, σ_s²)`` per segment, fitted by maximum likelihood
  with every kind of censoring (exact: density; right: ``1 − Φ``; left: ``Φ``), via
  :meth:`scipy.stats.norm.fit` on censored data — the parametric censored regression of Wu et
  al. without covariates beyond the segment.

Both give, for a bid ``b`` of a row in segment ``s``, the win rate ``W(b) = P(D <= b)`` and the
expected second-price payment ``P(b) = E[D · 1{D <= b}]``; for the log-normal
``P(b) = e^{μ+σ²/2} Φ((log b − μ − σ²)/σ)``, for Kaplan–Meier ``Σ_{u_j <= b} u_j p_j``.

References:
    E. L. Kaplan, P. Meier (1958). Nonparametric estimation from incomplete observations. JASA.
    W. C.-H. Wu, M.-Y. Yeh, M.-S. Chen (2015). Predicting winning price in real time bidding
    with censored data. KDD.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import ndtr

from adsim.errors import DataError

__all__ = ["CensoredPrices", "KaplanMeierLandscape", "LogNormalLandscape", "fit_landscape",
           "censored_prices"]


@dataclass(frozen=True)
class CensoredPrices:
    """What the log says about ``D`` per row: exact value, or only a bound at the bid.

    Attributes:
        exact: ``(n,)`` bool, ``D`` observed (``value`` holds it).
        left: ``(n,)`` bool, only ``D <= value`` known (a first-price win).
        right: ``(n,)`` bool, only ``D > value`` known (a loss without reveal).
        value: ``(n,)`` the observation or the bound (the bid).
    """

    exact: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray


def censored_prices(bid: np.ndarray, won: np.ndarray, min_bid: np.ndarray) -> CensoredPrices:
    """Classify rows into exact / left- / right-censored observations of ``D`` (see the table)."""
    won = np.asarray(won, dtype=bool)
    mb = np.asarray(min_bid, dtype=np.float64)
    exact = np.isfinite(mb) & (mb > 0)
    left = ~exact & won
    right = ~exact & ~won
    return CensoredPrices(exact, left, right, np.where(exact, mb, bid))


def _segments(frame: pd.DataFrame | None, segment_by: list[str] | None, n: int) -> np.ndarray:
    if not segment_by:
        return np.zeros(n, np.int64)
    assert frame is not None
    missing = [c for c in segment_by if c not in frame.columns]
    if missing:
        raise DataError(f"landscape segment_by: column {missing[0]!r} is not in the log")
    return frame.groupby(list(segment_by), sort=True).ngroup().to_numpy(np.int64)


@dataclass
class _Discrete:
    """A distribution of D on points ``u`` with masses ``p`` (rest at +∞)."""

    u: np.ndarray
    cdf: np.ndarray
    cum_up: np.ndarray

    @classmethod
    def from_masses(cls, u: np.ndarray, p: np.ndarray) -> _Discrete:
        order = np.argsort(u)
        u, p = u[order], np.clip(p[order], 0.0, None)
        return cls(u, np.cumsum(p), np.cumsum(u * p))

    def win_prob(self, b: np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.u, b, side="right")
        return np.where(k > 0, self.cdf[np.maximum(k - 1, 0)], 0.0)

    def payment(self, b: np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.u, b, side="right")
        return np.where(k > 0, self.cum_up[np.maximum(k - 1, 0)], 0.0)


@dataclass
class KaplanMeierLandscape:
    """Kaplan–Meier landscape per segment (see the module docstring). Use :func:`fit_landscape`."""

    segment_by: list[str] | None = None
    dists_: list[_Discrete] = field(default_factory=list)

    def fit(self, cp: CensoredPrices, seg: np.ndarray) -> KaplanMeierLandscape:
        if cp.left.any() and cp.right.any():
            raise DataError(
                "landscape 'km' needs the minimum bid to win revealed on one side (second price,"
                " or first price with reveal_min_bid_on_loss); this log only says win/lose on"
                " both sides: use landscape 'lognormal'"
            )
        self.dists_ = []
        for s in range(int(seg.max()) + 1):
            m = seg == s
            ex, val = cp.exact[m], cp.value[m]
            if not ex.any():
                raise DataError(
                    f"landscape 'km': segment {s} has no revealed minimum bid to win; use fewer"
                    " segment_by columns or landscape 'lognormal'"
                )
            if cp.left[m].any():  # reverse time: D <= b  <=>  T = -log D >= -log b
                t_ex, t_cens = -np.log(val[ex]), -np.log(val[cp.left[m]])
                res = stats.ecdf(stats.CensoredData(uncensored=t_ex, right=t_cens))
                q, cdf_t = res.cdf.quantiles, res.cdf.probabilities
                p = np.diff(np.concatenate([[0.0], cdf_t]))
                u = np.exp(-q)
                # T mass beyond max(T) is D below the smallest exact D: always won
                rest = max(1.0 - float(cdf_t[-1]), 0.0) if cdf_t.size else 1.0
                u = np.concatenate([u, [0.0]])
                p = np.concatenate([p, [rest]])
            else:
                cens = val[cp.right[m]]
                res = stats.ecdf(stats.CensoredData(uncensored=val[ex], right=cens))
                u = res.cdf.quantiles
                p = np.diff(np.concatenate([[0.0], res.cdf.probabilities]))
            self.dists_.append(_Discrete.from_masses(np.asarray(u, float), np.asarray(p, float)))
        return self

    def _apply(self, fn: str, b: np.ndarray, seg: np.ndarray) -> np.ndarray:
        out = np.zeros(np.shape(b))
        for s, d in enumerate(self.dists_):
            m = seg == s
            out[m] = getattr(d, fn)(b[m])
        return out

    def win_prob(self, b: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """Ŵ(b) = P̂(D <= b) of each row's segment."""
        return self._apply("win_prob", np.asarray(b, float), seg)

    def payment(self, b: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """Expected second-price payment Ê[D 1{D <= b}]."""
        return self._apply("payment", np.asarray(b, float), seg)


@dataclass
class LogNormalLandscape:
    """``log D ~ N(μ_s, σ_s²)`` per segment by censored MLE. Use :func:`fit_landscape`."""

    segment_by: list[str] | None = None
    mu_: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sigma_: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fit(self, cp: CensoredPrices, seg: np.ndarray) -> LogNormalLandscape:
        k = int(seg.max()) + 1
        self.mu_, self.sigma_ = np.zeros(k), np.zeros(k)
        lv = np.log(np.maximum(cp.value, 1e-300))
        for s in range(k):
            m = seg == s
            ex, le, ri = cp.exact & m, cp.left & m, cp.right & m
            if not (le.any() and ri.any()) and not ex.any():
                raise DataError(
                    f"landscape 'lognormal': segment {s} has only wins or only losses and no"
                    " revealed price: its price distribution is not identified"
                )
            self.mu_[s], self.sigma_[s] = _censored_normal_mle(lv[ex], lv[le], lv[ri])
        self._single = k == 1
        return self

    def _params(self, seg: np.ndarray) -> tuple[np.ndarray | float, np.ndarray | float]:
        if getattr(self, "_single", False):
            return float(self.mu_[0]), float(self.sigma_[0])
        return self.mu_[seg], self.sigma_[seg]

    def win_prob(self, b: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """Φ((log b − μ_s)/σ_s)."""
        mu, sd = self._params(seg)
        with np.errstate(divide="ignore"):
            return ndtr((np.log(b) - mu) / sd)

    def payment(self, b: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """e^{μ+σ²/2} Φ((log b − μ − σ²)/σ)."""
        mu, sd = self._params(seg)
        with np.errstate(divide="ignore"):
            return np.exp(mu + 0.5 * sd**2) * ndtr((np.log(b) - mu - sd**2) / sd)


def _censored_normal_mle(
    exact: np.ndarray, left: np.ndarray, right: np.ndarray
) -> tuple[float, float]:
    """MLE of N(μ, σ²) from exact values, left-censored (X <= c) and right-censored (X > c)
    bounds; L-BFGS on (μ, log σ) with the analytic score (inverse Mills ratios)::

        −ℓ = Σ_exact [log σ + z²/2] − Σ_left log Φ(z) − Σ_right log Φ(−z),  z = (x − μ)/σ
    """
    from scipy.optimize import minimize
    from scipy.special import log_ndtr

    allx = np.concatenate([exact, left, right])
    theta0 = np.array([float(allx.mean()), float(np.log(max(allx.std(), 0.05)))])

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        mu, ls = theta
        sd = np.exp(ls)
        ze, zl, zr = (exact - mu) / sd, (left - mu) / sd, (right - mu) / sd
        lcl, lcr = log_ndtr(zl), log_ndtr(-zr)
        f = exact.size * ls + 0.5 * float(ze @ ze) - float(lcl.sum()) - float(lcr.sum())
        # d/dz log Φ(z) = φ(z)/Φ(z) = exp(log φ − log Φ)
        ml = np.exp(-0.5 * zl * zl - 0.5 * np.log(2 * np.pi) - lcl)
        mr = np.exp(-0.5 * zr * zr - 0.5 * np.log(2 * np.pi) - lcr)
        # ∂/∂μ: z depends on μ by −1/σ; ∂/∂log σ: by −z
        g_mu = (-float(ze.sum()) + float(ml.sum()) - float(mr.sum())) / sd
        g_ls = exact.size - float(ze @ ze) + float(ml @ zl) - float(mr @ zr)
        return f, np.array([g_mu, g_ls])

    res = minimize(nll, theta0, jac=True, method="L-BFGS-B")
    if not np.all(np.isfinite(res.x)):
        raise DataError("landscape 'lognormal': the censored fit did not converge")
    return float(res.x[0]), float(np.exp(res.x[1]))


Landscape = KaplanMeierLandscape | LogNormalLandscape


def fit_landscape(
    bid: np.ndarray,
    won: np.ndarray,
    min_bid: np.ndarray,
    model: str = "lognormal",
    frame: pd.DataFrame | None = None,
    segment_by: list[str] | None = None,
) -> tuple[Landscape, np.ndarray]:
    """Fit the landscape ``model`` (``km`` or ``lognormal``) per segment; returns it and the
    ``(n,)`` segment index of every row."""
    bid = np.asarray(bid, dtype=np.float64)
    seg = _segments(frame, segment_by, bid.shape[0])
    cp = censored_prices(bid, won, min_bid)
    if model == "km":
        return KaplanMeierLandscape(segment_by).fit(cp, seg), seg
    if model == "lognormal":
        return LogNormalLandscape(segment_by).fit(cp, seg), seg
    raise DataError(f"landscape model {model!r} is unknown; use 'km' or 'lognormal'")
