"""Overlap diagnostics: can this log support an estimate of this target policy?

Computed on every estimate from the importance weights :math:`w_i = \\pi(a_i|x_i)/\\pi_0(a_i|x_i)`:

- **effective sample size** (Kish 1965): :math:`n_{\\mathrm{eff}} = (\\sum_i w_i)^2 / \\sum_i w_i^2`
  and its share of n — the number of rounds an unweighted sample with the same variance would have;
- **max and percentiles** (50, 90, 99, 99.9) of the weights;
- **mean weight** :math:`\\bar w` with its standard error: :math:`E_{\\pi_0}[w] = 1` under full
  support and correct propensities, so a mean far from 1 flags wrong ``pscore`` or missing support;
- **unsupported mass**: the share of the target's probability on actions the logger never took in
  this log, :math:`\\frac1n\\sum_i\\sum_{a\\notin A_{\\log}}\\pi(a|x_i)`; no estimator that only
  re-weights logged rewards can see that part of the value (DM extrapolates into it).

:meth:`OverlapDiagnostics.warn` issues an :class:`OverlapWarning` naming each problem. Thresholds
follow common practice (e.g. Owen 2013, *Monte Carlo theory, methods and examples*, §9.3 on ESS)
and are fields of :class:`OverlapThresholds`.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from adsim.env.logs import BanditLog

__all__ = ["OverlapWarning", "OverlapThresholds", "OverlapDiagnostics", "overlap_diagnostics"]


class OverlapWarning(UserWarning):
    """The log gives poor support for the target policy: its estimates may not be trusted."""


@dataclass(frozen=True)
class OverlapThresholds:
    """When :meth:`OverlapDiagnostics.problems` reports a problem."""

    min_ess_share: float = 0.01
    """Warn if n_eff / n is below this."""
    min_ess: float = 100.0
    """Warn if n_eff is below this many rounds."""
    max_unsupported_mass: float = 0.01
    """Warn if more than this share of the target's mass is on never-logged actions."""
    mean_weight_z: float = 4.0
    """Warn if |mean(w) − 1| exceeds this many standard errors (and 5 %)."""


@dataclass(frozen=True)
class OverlapDiagnostics:
    """Weight statistics of a target policy on a log (see the module docstring)."""

    n_rounds: int
    ess: float
    ess_share: float
    mean_weight: float
    mean_weight_se: float
    max_weight: float
    weight_p50: float
    weight_p90: float
    weight_p99: float
    weight_p999: float
    unsupported_mass: float
    n_never_logged_actions: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def problems(self, thresholds: OverlapThresholds | None = None) -> list[str]:
        """Human-readable reasons not to trust estimates on this log (empty when fine)."""
        t = thresholds or OverlapThresholds()
        out = []
        if self.ess_share < t.min_ess_share or self.ess < t.min_ess:
            out.append(
                f"effective sample size is {self.ess:.1f} of {self.n_rounds} rounds"
                f" ({100 * self.ess_share:.2g}%): a few rounds carry the estimate"
            )
        if self.unsupported_mass > t.max_unsupported_mass:
            out.append(
                f"{100 * self.unsupported_mass:.3g}% of the target's probability is on"
                f" {self.n_never_logged_actions} action(s) the logger never took: re-weighting"
                " estimators cannot see that part of the value"
            )
        dev = abs(self.mean_weight - 1.0)
        if dev > 0.05 and dev > t.mean_weight_z * self.mean_weight_se:
            out.append(
                f"mean importance weight is {self.mean_weight:.4g} (should be about 1): check the"
                " 'pscore' column or the target's support"
            )
        return out

    def warn(self, thresholds: OverlapThresholds | None = None, stacklevel: int = 3) -> None:
        """Issue one :class:`OverlapWarning` listing :meth:`problems`, if any."""
        probs = self.problems(thresholds)
        if probs:
            warnings.warn(
                "estimate may not be trusted: " + "; ".join(probs), OverlapWarning,
                stacklevel=stacklevel,
            )


def overlap_diagnostics(
    log: BanditLog, pi: np.ndarray, weights: np.ndarray | None = None
) -> OverlapDiagnostics:
    """Diagnostics of a validated ``(n, K)`` target ``pi`` on ``log`` (see the module docstring).

    ``weights`` may pass per-row importance weights already computed (e.g. slate weights).
    """
    n = log.n_rounds
    w = weights if weights is not None else pi[np.arange(n), log.action] / log.pscore
    s1 = float(w.sum())
    s2 = float(np.dot(w, w))
    ess = s1 * s1 / s2 if s2 > 0 else 0.0
    p50, p90, p99, p999 = np.percentile(w, [50, 90, 99, 99.9]) if n else (np.nan,) * 4
    logged = np.bincount(log.action, minlength=log.n_actions) > 0
    never = ~logged
    unsupported = float(pi[:, never].sum(axis=1).mean()) if never.any() else 0.0
    return OverlapDiagnostics(
        n_rounds=n,
        ess=ess,
        ess_share=ess / n,
        mean_weight=s1 / n,
        mean_weight_se=float(w.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
        max_weight=float(w.max()),
        weight_p50=float(p50),
        weight_p90=float(p90),
        weight_p99=float(p99),
        weight_p999=float(p999),
        unsupported_mass=unsupported,
        n_never_logged_actions=int(never.sum()),
    )
