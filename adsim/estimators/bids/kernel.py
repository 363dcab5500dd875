"""Importance weights for bid rules: grid indicators, kernels on the log-bid, bandwidths, overlap.

A target rule ``b(x)`` is a deterministic treatment; the logger's bid ``B`` has a known law
given ``x``. Write ``T = log B`` and ``t*(x) = log b(x)``.

* **Grid logs** (``B = b0(x)·M``, ``M ∈ {m_k}`` with probabilities ``p_k``): a target whose
  multiplier ``b(x)/b0(x)`` is a grid point gets the indicator weight
  ``w_i = 1{B_i = b(x_i)} / p(B_i | x_i)`` — exact, unbiased IPS (Horvitz & Thompson 1952).
  Rows whose target multiplier is not on the grid are *unsupported*: their weight is 0 (their
  value is invisible to IPS/SNIPS; DR falls back on the direct method there).
* **Continuous logs** (log-normal multipliers): the indicator has probability 0, so the kernel
  weight replaces it (Kallus & Zhou 2018, eq. 3):

  .. math::  w_i = \\frac{K_h(t^*(x_i) - T_i)}{g_0(T_i \\mid x_i)},\\qquad
             K_h(u) = K(u/h)/h ,

  with ``g0`` the density of the log-bid (``B · f0(B|x)``). ``E[w Y] = E_x ∫ K_h(t* − t) μ(x,t)
  dt = V + (h²κ₂/2) E[∂²_t μ(x, t*)] + O(h⁴)`` (smoothing bias) and
  ``Var(w Y) ≈ R(K) E[E[Y²|x,t*]/g0(t*|x)] / h`` with ``R(K) = ∫K²``, ``κ₂ = ∫u²K``. Minimising
  the asymptotic MSE ``(h²κ₂ B₂/2)² + R(K) V₂/(n h)`` gives Kallus & Zhou's optimal rate

  .. math::  h^* = \\left(\\frac{R(K)\\, V_2}{n\\, \\kappa_2^2\\, B_2^2}\\right)^{1/5}
             \\propto n^{-1/5},

  which :func:`plug_in_bandwidth` estimates with ``V̂₂`` from the log at a pilot bandwidth and
  ``B̂₂`` from the direct model's curvature in ``t`` (clipped to [0.2, 5] × Silverman's rule,
  :func:`silverman_bandwidth`: ``h = 0.9 min(sd, IQR/1.34) n^{-1/5}`` of the logged
  log-multipliers; Silverman 1986, §3.4.2).

Overlap diagnostics (:func:`bid_overlap`) mirror the bandit ones: Kish's effective sample size
``(Σw)²/Σw²``, the largest weight and its share of ``Σw``, the mean weight (≈ 1 when the
propensities are right: ``E[K_h(t* − T)/g0(T)] = 1``) and the share of requests where the target
bids outside the logged support (off the grid, or a log-multiplier outside the central 99% of the
logged ones), with a :class:`BidOverlapWarning` when it exceeds 1%.

References:
    N. Kallus, A. Zhou (2018). Policy evaluation and optimization with continuous treatments.
    AISTATS.
    B. W. Silverman (1986). Density Estimation for Statistics and Data Analysis. Chapman & Hall.
    D. G. Horvitz, D. J. Thompson (1952). A generalization of sampling without replacement from a
    finite universe. JASA.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from adsim.estimators.diagnostics import OverlapWarning

__all__ = [
    "KERNELS",
    "BidOverlap",
    "BidOverlapWarning",
    "bid_overlap",
    "grid_weights",
    "kernel",
    "kernel_weights",
    "plug_in_bandwidth",
    "silverman_bandwidth",
]

# name -> (R(K) = ∫K², κ₂ = ∫u²K)
KERNELS = {"gaussian": (1.0 / (2.0 * np.sqrt(np.pi)), 1.0), "epanechnikov": (0.6, 0.2)}


class BidOverlapWarning(OverlapWarning):
    """The bid log gives poor support for the target bid rule."""


def kernel(u: np.ndarray, name: str = "gaussian") -> np.ndarray:
    """K(u): Gaussian φ(u) or Epanechnikov ¾(1 − u²)₊."""
    if name == "gaussian":
        return np.exp(-0.5 * u * u) / np.sqrt(2.0 * np.pi)
    if name == "epanechnikov":
        return np.where(np.abs(u) <= 1.0, 0.75 * (1.0 - u * u), 0.0)
    raise ValueError(f"unknown kernel {name!r}; use one of {sorted(KERNELS)}")


def kernel_weights(
    t_target: np.ndarray, t_logged: np.ndarray, log_g0: np.ndarray, h: float,
    name: str = "gaussian",
) -> np.ndarray:
    """w_i = K_h(t*_i − T_i) / g0(T_i | x_i); ``t_target = −inf`` (no bid) gives 0."""
    with np.errstate(invalid="ignore"):
        u = (t_target - t_logged) / h
    k = np.where(np.isfinite(u), kernel(np.nan_to_num(u, nan=0.0, posinf=0.0, neginf=0.0), name), 0.0)
    return k / h * np.exp(-log_g0)


def grid_weights(
    target_mult: np.ndarray, logged_mult: np.ndarray, propensity: np.ndarray,
    grid: np.ndarray, rtol: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray]:
    """Indicator weights ``1{M_i = m*_i}/p_i`` and the ``(n,)`` mask of rows whose target
    multiplier ``m*_i`` is on the grid (supported)."""
    grid = np.asarray(grid, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        near = np.abs(target_mult[:, None] / grid[None, :] - 1.0).min(axis=1)
        supported = near <= rtol
        same = np.abs(target_mult / logged_mult - 1.0) <= rtol
    return np.where(supported & same, 1.0 / propensity, 0.0), supported


def silverman_bandwidth(log_mult: np.ndarray) -> float:
    """Silverman's rule of thumb ``0.9 min(sd, IQR/1.34) n^{-1/5}``."""
    x = np.asarray(log_mult, dtype=np.float64)
    sd = float(x.std(ddof=1)) if x.size > 1 else 1.0
    q75, q25 = np.percentile(x, [75, 25])
    spread = min(sd, float(q75 - q25) / 1.34) if q75 > q25 else sd
    return 0.9 * max(spread, 1e-12) * x.size ** (-0.2)


def plug_in_bandwidth(
    y: np.ndarray, t_target: np.ndarray, t_logged: np.ndarray, log_g0: np.ndarray,
    curvature: float, h_pilot: float, name: str = "gaussian",
) -> float:
    """Kallus & Zhou's MSE-optimal bandwidth with plug-in estimates (module docstring).

    Args:
        y: outcomes; t_target, t_logged, log_g0: as in :func:`kernel_weights`.
        curvature: B̂₂, the mean of ∂²μ̂(x_i, t)/∂t² at ``t*(x_i)`` from the direct model.
        h_pilot: pilot bandwidth for V̂₂ (Silverman's).
    """
    r_k, kappa2 = KERNELS[name]
    n = y.shape[0]
    w = kernel_weights(t_target, t_logged, log_g0, h_pilot, name)
    v2 = float(np.mean(w * y * y * np.exp(-log_g0)))  # K_h Y² / g0²
    b2 = float(curvature)
    lo, hi = 0.2 * h_pilot, 5.0 * h_pilot
    if not np.isfinite(v2) or v2 <= 0 or not np.isfinite(b2) or b2 == 0:
        return hi if v2 > 0 else h_pilot
    h = (r_k * v2 / (n * kappa2**2 * b2**2)) ** 0.2
    return float(np.clip(h, lo, hi))


@dataclass(frozen=True)
class BidOverlap:
    """Weight statistics of a target rule on a bid log (see the module docstring)."""

    n_rounds: int
    ess: float
    ess_share: float
    mean_weight: float
    max_weight: float
    max_weight_share: float
    unsupported_share: float
    bandwidth: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)

    def problems(self, max_unsupported: float = 0.01, min_ess: float = 100.0) -> list[str]:
        out = []
        if self.unsupported_share > max_unsupported:
            out.append(
                f"the target bids outside the logged support on {100 * self.unsupported_share:.3g}%"
                " of requests (off the exploration grid, or beyond the central 99% of logged"
                " bid multipliers): weighted estimators cannot see that part; DM/DR extrapolate"
                " with the landscape model there"
            )
        if self.ess < min_ess or self.ess_share < 0.001:
            out.append(
                f"effective sample size is {self.ess:.1f} of {self.n_rounds} requests: a few"
                " requests carry the estimate"
            )
        return out

    def warn(self, stacklevel: int = 3) -> None:
        probs = self.problems()
        if probs:
            warnings.warn("bid estimate may not be trusted: " + "; ".join(probs),
                          BidOverlapWarning, stacklevel=stacklevel)


def bid_overlap(
    w: np.ndarray, unsupported: np.ndarray, bandwidth: float | None
) -> BidOverlap:
    """Diagnostics from the weights and the per-row unsupported mask."""
    n = w.shape[0]
    s1, s2 = float(w.sum()), float(np.dot(w, w))
    ess = s1 * s1 / s2 if s2 > 0 else 0.0
    wmax = float(w.max()) if n else 0.0
    return BidOverlap(
        n_rounds=n, ess=ess, ess_share=ess / n if n else 0.0, mean_weight=s1 / n if n else 0.0,
        max_weight=wmax, max_weight_share=wmax / s1 if s1 > 0 else float("nan"),
        unsupported_share=float(np.mean(unsupported)) if n else 0.0, bandwidth=bandwidth,
    )
