"""Off-policy estimators of a target policy's value from logged bandit feedback.

Each estimator is a small dataclass with one per-sample function ``_per_sample`` returning values
ψ_i whose mean *is* the estimate; the standard error ``std(ψ)/√n`` and the normal (CLT) interval
are inherited from :class:`BaseEstimator`. For self-normalised estimators ψ_i is the linearised
influence function, so the interval accounts for the random normaliser (the delta method) rather
than treating it as fixed.

Notation: n logged rounds (x_i, a_i, r_i) with logging propensity p_i = π0(a_i | x_i); target
policy π; importance weight w_i = π(a_i | x_i) / p_i; reward model q̂(x, a);
q̂(x, π) = Σ_a π(a | x) q̂(x, a).

References:
    Horvitz & Thompson (1952) — IPS; Swaminathan & Joachims (2015), "The Self-Normalized
    Estimator for Counterfactual Learning", NeurIPS — SNIPS; Dudík, Langford & Li (2011),
    "Doubly Robust Policy Evaluation and Learning", ICML — DR; Saito et al. (2021), "Open Bandit
    Dataset and Pipeline", NeurIPS D&B — the definitions adsim is checked against.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
from scipy.stats import norm

from adsim.env.logs import BanditLog
from adsim.errors import DataError

__all__ = [
    "Estimate",
    "BaseEstimator",
    "DirectMethod",
    "InverseProbabilityWeighting",
    "SelfNormalizedIPS",
    "DoublyRobust",
    "check_action_dist",
    "check_reward_model",
    "importance_weights",
    "ESTIMATORS",
    "make_estimator",
]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and a two-sided confidence interval."""

    estimator: str
    value: float
    std_err: float
    ci_low: float
    ci_high: float
    n_rounds: int
    confidence: float

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def check_action_dist(action_dist: np.ndarray, log: BanditLog, name: str = "action_dist") -> np.ndarray:
    """Validate the target policy's ``(n_rounds, n_actions)`` probabilities against the log."""
    pi = np.asarray(action_dist, dtype=np.float64)
    expected = (log.n_rounds, log.n_actions)
    if pi.shape != expected:
        raise DataError(f"{name} has shape {pi.shape}; expected {expected} (n_rounds, n_actions)")
    bad = np.flatnonzero(~np.isfinite(pi).all(axis=1))
    if bad.size:
        raise DataError(f"{name}: non-finite probability at row {bad[0]}")
    bad = np.flatnonzero((pi < 0).any(axis=1))
    if bad.size:
        raise DataError(f"{name}: negative probability at row {bad[0]}")
    sums = pi.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if bad.size:
        raise DataError(
            f"{name}: probabilities must sum to 1 in every row, row {bad[0]} sums to {sums[bad[0]]:.6g}"
        )
    return pi


def check_reward_model(q_hat: np.ndarray | None, log: BanditLog, estimator: str) -> np.ndarray:
    """Validate reward-model predictions ``(n_rounds, n_actions)``; required by DM/DR."""
    if q_hat is None:
        raise DataError(
            f"estimator {estimator!r} needs reward-model predictions (reward_model=…,"
            " an (n_rounds, n_actions) array of q̂(x, a))"
        )
    q = np.asarray(q_hat, dtype=np.float64)
    if q.shape != (log.n_rounds, log.n_actions):
        raise DataError(
            f"reward_model has shape {q.shape}; expected {(log.n_rounds, log.n_actions)}"
        )
    bad = np.flatnonzero(~np.isfinite(q).all(axis=1))
    if bad.size:
        raise DataError(f"reward_model: non-finite prediction at row {bad[0]}")
    return q


def importance_weights(log: BanditLog, pi: np.ndarray) -> np.ndarray:
    """w_i = π(a_i | x_i) / π0(a_i | x_i)."""
    return pi[np.arange(log.n_rounds), log.action] / log.pscore


@dataclass(frozen=True)
class BaseEstimator(ABC):
    """Mean, standard error and CLT interval over the per-sample values ψ_i."""

    confidence: float = 0.95

    name: ClassVar[str] = "base"
    needs_reward_model: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")

    @abstractmethod
    def _per_sample(self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None) -> np.ndarray:
        """ψ_i, ``(n_rounds,)``, with mean(ψ) = the estimate."""

    def estimate(
        self,
        log: BanditLog,
        action_dist: np.ndarray,
        reward_model: np.ndarray | None = None,
    ) -> Estimate:
        """Estimate V(π) from ``log``; ``reward_model`` is q̂ as an ``(n, K)`` array."""
        pi = check_action_dist(action_dist, log)
        q = check_reward_model(reward_model, log, self.name) if self.needs_reward_model else None
        psi = self._per_sample(log, pi, q)
        n = psi.shape[0]
        value = float(psi.mean())
        se = float(psi.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        z = float(norm.ppf(0.5 + self.confidence / 2))
        return Estimate(self.name, value, se, value - z * se, value + z * se, n, self.confidence)


@dataclass(frozen=True)
class DirectMethod(BaseEstimator):
    """DM: V̂ = (1/n) Σ_i q̂(x_i, π)."""

    name: ClassVar[str] = "dm"
    needs_reward_model: ClassVar[bool] = True

    def _per_sample(self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None) -> np.ndarray:
        assert q_hat is not None
        return np.einsum("ik,ik->i", pi, q_hat)


@dataclass(frozen=True)
class InverseProbabilityWeighting(BaseEstimator):
    """IPS: V̂ = (1/n) Σ_i min(w_i, λ) r_i  (λ = ``clip``, ∞ by default: unbiased)."""

    clip: float = float("inf")
    name: ClassVar[str] = "ips"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.clip > 0:
            raise ValueError(f"clip must be > 0, got {self.clip}")

    def _per_sample(self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None) -> np.ndarray:
        return np.minimum(importance_weights(log, pi), self.clip) * log.reward


@dataclass(frozen=True)
class SelfNormalizedIPS(BaseEstimator):
    """SNIPS: V̂ = Σ_i w_i r_i / Σ_i w_i.

    ψ_i = V̂ + w_i (r_i − V̂) / w̄ (influence function; mean(ψ) = V̂, and its spread gives the
    delta-method standard error, which accounts for the random normaliser w̄).
    """

    name: ClassVar[str] = "snips"

    def _per_sample(self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None) -> np.ndarray:
        w = importance_weights(log, pi)
        w_bar = w.mean()
        if w_bar <= 0:
            raise DataError("snips: the target policy gives probability 0 to every logged action")
        value = float((w * log.reward).sum() / w.sum())
        return value + w * (log.reward - value) / w_bar


@dataclass(frozen=True)
class DoublyRobust(BaseEstimator):
    """DR: V̂ = (1/n) Σ_i [ q̂(x_i, π) + w_i (r_i − q̂(x_i, a_i)) ]."""

    name: ClassVar[str] = "dr"
    needs_reward_model: ClassVar[bool] = True

    def _per_sample(self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None) -> np.ndarray:
        assert q_hat is not None
        rows = np.arange(log.n_rounds)
        w = importance_weights(log, pi)
        return np.einsum("ik,ik->i", pi, q_hat) + w * (log.reward - q_hat[rows, log.action])


ESTIMATORS: dict[str, type[BaseEstimator]] = {
    cls.name: cls
    for cls in (DirectMethod, InverseProbabilityWeighting, SelfNormalizedIPS, DoublyRobust)
}


def make_estimator(name: str, **kwargs: float) -> BaseEstimator:
    """Estimator by its short name (``dm``, ``ips``, ``snips``, ``dr``)."""
    try:
        cls = ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator {name!r}; choose from {sorted(ESTIMATORS)}") from None
    return cls(**kwargs)
