"""Shared machinery of the off-policy estimators: the result type, input checks and the base class.

Every estimator in adsim writes its value as a smooth function of sample means,

.. math::  \\hat V = \\bar u + \\bar c / \\bar d,

with per-round *components* :math:`u_i, c_i, d_i` (``c = 0, d = 1`` for the plain
estimators; ``c = w_i r_i, d = w_i`` for SNIPS …). From that one description the base class derives

- the **per-sample values** :math:`\\psi_i = u_i + R + (c_i - R d_i)/\\bar d` with
  :math:`R = \\bar c/\\bar d` — the linearised influence function, so :math:`\\bar\\psi = \\hat V`
  and :math:`\\operatorname{sd}(\\psi)/\\sqrt n` is the delta-method standard error, which accounts
  for the random normaliser of self-normalised estimators (obp keeps it fixed);
- a **vectorised bootstrap** that recomputes :math:`\\bar u + \\bar c/\\bar d` inside every
  resample (so self-normalisation is redone per resample);
- a **finite-sample** empirical-Bernstein interval on :math:`\\psi`.

See :mod:`adsim.estimators.intervals` for the intervals and
:mod:`adsim.estimators.diagnostics` for the overlap diagnostics attached to every estimate.

Positions: a target ``action_dist`` may be ``(n, K)`` or obp-style ``(n, K, n_positions)``; in the
latter case row i uses slot ``log.position[i]`` (slot 0 when the log has no ``position``), exactly
as obp does, and the same holds for 3-D reward-model predictions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from adsim.env.logs import VALUE_LIMIT, BanditLog
from adsim.errors import DataError
from adsim.estimators.diagnostics import OverlapDiagnostics, overlap_diagnostics
from adsim.estimators.intervals import estimate_with_interval

__all__ = [
    "Estimate",
    "Components",
    "BaseEstimator",
    "IntervalMethod",
    "check_action_dist",
    "check_reward_model",
    "importance_weights",
    "at_position",
]

IntervalMethod = Literal["clt", "bootstrap", "bernstein"]

#: bounds of ``n_bootstrap`` (replicates); the work ``n_bootstrap × n_rounds`` is bounded too
MIN_BOOTSTRAP, MAX_BOOTSTRAP = 10, 100_000
#: most random weights one bootstrap interval may draw (≈ a minute of work)
MAX_BOOTSTRAP_DRAWS = 20_000_000_000


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and a two-sided confidence interval.

    ``interval`` names how ``ci_low``/``ci_high`` were computed (``clt``, ``bootstrap`` or
    ``bernstein``); ``details`` holds estimator-specific facts (e.g. the λ SLOPE chose);
    ``diagnostics`` holds the overlap diagnostics of the target on this log (not
    part of :meth:`to_dict`; see :meth:`OverlapDiagnostics.to_dict`).
    """

    estimator: str
    value: float
    std_err: float
    ci_low: float
    ci_high: float
    n_rounds: int
    confidence: float
    interval: str = "clt"
    diagnostics: OverlapDiagnostics | None = field(default=None, compare=False, repr=False)
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, float | int | str]:
        """The scalar fields (diagnostics and details excluded)."""
        d = asdict(self)
        d.pop("diagnostics")
        d.pop("details")
        return d


@dataclass(frozen=True)
class Components:
    """Per-round pieces of an estimate: V̂ = mean(u) + mean(c) / mean(d) (``c``/``d`` optional)."""

    u: np.ndarray
    c: np.ndarray | None = None
    d: np.ndarray | None = None

    def value(self) -> float:
        v = float(self.u.mean())
        if self.c is not None:
            assert self.d is not None
            v += float(self.c.mean() / self.d.mean())
        return v

    def per_sample(self) -> np.ndarray:
        """ψ_i (influence function) with mean(ψ) = V̂."""
        if self.c is None:
            return self.u
        assert self.d is not None
        d_bar = self.d.mean()
        ratio = self.c.mean() / d_bar
        return self.u + ratio + (self.c - ratio * self.d) / d_bar

    def stacked(self) -> np.ndarray:
        """``(n, 3)`` columns u, c, d (c = 0, d = 1 when absent) for the bootstrap."""
        n = self.u.shape[0]
        c = self.c if self.c is not None else np.zeros(n)
        d = self.d if self.d is not None else np.ones(n)
        return np.column_stack([self.u, c, d])


def at_position(arr: np.ndarray, log: BanditLog, name: str) -> np.ndarray:
    """Reduce an obp-style ``(n, K, n_positions)`` array to ``(n, K)`` at each row's position."""
    if arr.ndim != 3:
        return arr
    n_pos = arr.shape[2]
    pos = log.position if log.position is not None else np.zeros(log.n_rounds, dtype=np.int64)
    bad = np.flatnonzero((pos < 0) | (pos >= n_pos))
    if bad.size:
        raise DataError(
            f"column 'position': {pos[bad[0]]} at row {bad[0]} is outside [0, {n_pos}) — {name}"
            f" has {n_pos} positions"
        )
    return arr[np.arange(log.n_rounds), :, pos]


def check_action_dist(
    action_dist: np.ndarray, log: BanditLog, name: str = "action_dist", atol: float = 1e-6
) -> np.ndarray:
    """Validate the target policy's probabilities; returns them as ``(n_rounds, n_actions)``.

    Accepts ``(n, K)`` or ``(n, K, n_positions)`` (each position's column sums to 1).
    """
    pi = np.asarray(action_dist, dtype=np.float64)
    expected = (log.n_rounds, log.n_actions)
    if pi.ndim not in (2, 3) or pi.shape[:2] != expected:
        raise DataError(
            f"{name} has shape {pi.shape}; expected {expected} (n_rounds, n_actions)"
            " or (n_rounds, n_actions, n_positions)"
        )
    flat = pi.reshape(pi.shape[0], -1)
    bad = np.flatnonzero(~np.isfinite(flat).all(axis=1))
    if bad.size:
        raise DataError(f"{name}: non-finite probability (NaN or inf) at row {bad[0]}")
    bad = np.flatnonzero((flat < 0).any(axis=1))
    if bad.size:
        raise DataError(f"{name}: negative probability at row {bad[0]}")
    sums = pi.sum(axis=1)
    if sums.ndim == 2:  # (n, n_positions): report each row's worst position
        sums = sums[np.arange(sums.shape[0]), np.abs(sums - 1.0).argmax(axis=1)]
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        raise DataError(
            f"{name}: probabilities must sum to 1 over actions in every row, row {bad[0]} sums"
            f" to {sums[bad[0]]:.6g}"
        )
    return at_position(pi, log, name)


def check_reward_model(q_hat: np.ndarray | None, log: BanditLog, estimator: str) -> np.ndarray:
    """Validate reward-model predictions ``(n_rounds, n_actions[, n_positions])``."""
    if q_hat is None:
        raise DataError(
            f"estimator {estimator!r} needs reward-model predictions (reward_model=…,"
            " an (n_rounds, n_actions) array of q̂(x, a))"
        )
    q = np.asarray(q_hat, dtype=np.float64)
    if q.ndim not in (2, 3) or q.shape[:2] != (log.n_rounds, log.n_actions):
        raise DataError(
            f"reward_model has shape {q.shape}; expected {(log.n_rounds, log.n_actions)}"
        )
    flat = q.reshape(q.shape[0], -1)
    bad = np.flatnonzero(~np.isfinite(flat).all(axis=1))
    if bad.size:
        raise DataError(f"reward_model: non-finite prediction (NaN or inf) at row {bad[0]}")
    bad = np.flatnonzero((np.abs(flat) > VALUE_LIMIT).any(axis=1))
    if bad.size:
        raise DataError(f"reward_model: a prediction beyond ±{VALUE_LIMIT:g} at row {bad[0]}; rewards and"
                        " their predictions must be on the same (bounded) scale")
    return at_position(q, log, "reward_model")


def importance_weights(log: BanditLog, pi: np.ndarray) -> np.ndarray:
    """w_i = π(a_i | x_i) / π0(a_i | x_i) for a validated ``(n, K)`` ``pi``."""
    return pi[np.arange(log.n_rounds), log.action] / log.pscore


@dataclass(frozen=True)
class BaseEstimator(ABC):
    """Mean, standard error and interval over an estimator's per-round components.

    Attributes:
        confidence: two-sided coverage of the interval.
        interval: ``"clt"`` (normal, delta method), ``"bootstrap"`` (vectorised, re-normalising
            inside each resample) or ``"bernstein"`` (empirical Bernstein, finite-sample).
        n_bootstrap: resamples for ``interval="bootstrap"``.
        bootstrap_scheme: ``"half"`` (default: double-or-nothing weights 0/2, Owen & Eckles
            2012; same measured coverage; faster on dense per-round values, slower than Efron's
            on sparse ones such as IPS on click logs — ``benchmarks/ope_speed.py``) or
            ``"multinomial"`` (Efron: n draws with replacement); see
            :mod:`adsim.estimators.intervals`.
        random_state: seed of the bootstrap's generator.
        warn: emit an :class:`~adsim.estimators.diagnostics.OverlapWarning` when overlap is poor.
    """

    confidence: float = 0.95
    interval: IntervalMethod = "clt"
    n_bootstrap: int = 1000
    bootstrap_scheme: Literal["multinomial", "half"] = "half"
    random_state: int | None = 0
    warn: bool = True

    name: ClassVar[str] = "base"
    needs_reward_model: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.interval not in ("clt", "bootstrap", "bernstein"):
            raise ValueError(
                f"interval must be 'clt', 'bootstrap' or 'bernstein', got {self.interval!r}"
            )
        if self.bootstrap_scheme not in ("multinomial", "half"):
            raise ValueError(
                f"bootstrap_scheme must be 'multinomial' or 'half', got {self.bootstrap_scheme!r}"
            )
        if not MIN_BOOTSTRAP <= self.n_bootstrap <= MAX_BOOTSTRAP:
            raise ValueError(f"n_bootstrap must be in [{MIN_BOOTSTRAP}, {MAX_BOOTSTRAP:,}], got {self.n_bootstrap}")

    @abstractmethod
    def _components(
        self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None
    ) -> Components:
        """Per-round components of the estimate for validated ``(n, K)`` ``pi`` and ``q_hat``."""

    def _per_sample(self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None) -> np.ndarray:
        """ψ_i, ``(n_rounds,)``, with mean(ψ) = the estimate (influence function)."""
        return self._components(log, pi, q_hat).per_sample()

    def estimate(
        self,
        log: BanditLog,
        action_dist: np.ndarray,
        reward_model: np.ndarray | None = None,
    ) -> Estimate:
        """Estimate V(π) from ``log``; ``reward_model`` is q̂ as an ``(n, K)`` array."""
        pi = check_action_dist(action_dist, log)
        q = check_reward_model(reward_model, log, self.name) if self.needs_reward_model else None
        diag = overlap_diagnostics(log, pi)
        if self.warn:
            diag.warn()
        return self._estimate_checked(log, pi, q, diag)

    def _estimate_checked(
        self,
        log: BanditLog,
        pi: np.ndarray,
        q: np.ndarray | None,
        diag: OverlapDiagnostics | None = None,
    ) -> Estimate:
        """:meth:`estimate` on inputs that are already validated and reduced to ``(n, K)``."""
        comp = self._components(log, pi, q)
        value, se, lo, hi, n = estimate_with_interval(
            comp, self.confidence, self.interval, self.n_bootstrap, self.random_state,
            self.bootstrap_scheme,
        )
        return Estimate(
            self.name, value, se, lo, hi, n, self.confidence, self.interval, diag,
            self._details(log, pi, q),
        )

    def _details(self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None) -> dict[str, Any]:
        """Estimator-specific facts reported with the estimate (none by default)."""
        return {}
