"""Off-policy estimators of a target policy's value from logged bandit feedback.

Each estimator is a small frozen dataclass (hyperparameters as validated fields) with one
per-round method ``_components`` returning :class:`~adsim.estimators.base.Components` ``u, c, d``
with :math:`\\hat V = \\bar u + \\bar c/\\bar d`; the per-sample values ψ (mean = estimate), the
standard error, the CLT / bootstrap / empirical-Bernstein interval and the overlap diagnostics are
inherited from :class:`~adsim.estimators.base.BaseEstimator`.

Notation: n logged rounds :math:`(x_i, a_i, r_i)` with logging propensity
:math:`p_i = \\pi_0(a_i|x_i)`; target policy π; importance weight :math:`w_i = \\pi(a_i|x_i)/p_i`;
reward model :math:`\\hat q(x, a)`; :math:`\\hat q(x, \\pi) = \\sum_a \\pi(a|x)\\hat q(x, a)`.

===============  ====================================================================  ==========
name             :math:`\\hat V`                                                       reference
===============  ====================================================================  ==========
``dm``           :math:`\\frac1n\\sum_i \\hat q(x_i,\\pi)`                               [1]
``ips``          :math:`\\frac1n\\sum_i \\min(w_i,\\lambda) r_i`                         [2]
``snips``        :math:`\\sum_i w_i r_i / \\sum_i w_i`                                  [3]
``dr``           :math:`\\frac1n\\sum_i \\hat q(x_i,\\pi)+\\min(w_i,\\lambda)(r_i-\\hat q(x_i,a_i))` [1]
``sndr``         :math:`\\frac1n\\sum_i \\hat q(x_i,\\pi)+\\frac{\\sum_i w_i(r_i-\\hat q_i)}{\\sum_i w_i}` [3,6]
``switch_dr``    DR with the correction kept only where :math:`w_i\\le\\lambda`             [4]
``dr_os``        DR with :math:`w_i` shrunk to :math:`\\lambda w_i/(w_i^2+\\lambda)`           [5]
===============  ====================================================================  ==========

The SLOPE-tuned variants (``switch_dr_slope``, ``dr_os_slope``) live in
:mod:`adsim.estimators.tuning`; the slate estimators in :mod:`adsim.estimators.slate`. All of
them, by name, are in :data:`adsim.estimators.registry.ESTIMATORS` (``make_estimator("dr")``).

Definitions agree with Open Bandit Pipeline 0.5.7 (Saito et al. 2021, "Open Bandit Dataset and
Pipeline", NeurIPS D&B) to 1e-12 on identical inputs — SNDR self-normalises only the correction
term, Switch-DR switches per logged sample (:math:`w_i>\\lambda` → DM only), DR-OS uses
:math:`\\lambda w/(w^2+\\lambda)` — checked against a committed reference fixture
(``tests/estimators/data/obp_reference.json``). One deliberate difference: DR-OS with λ = 0 gives
shrunk weight 0 where obp computes 0/0 = NaN for w = 0.

References:
    [1] Dudík, Langford & Li (2011), "Doubly Robust Policy Evaluation and Learning", ICML.
    [2] Horvitz & Thompson (1952); Strehl et al. (2010), "Learning from Logged Implicit
        Exploration Data", NeurIPS (clipping).
    [3] Swaminathan & Joachims (2015), "The Self-Normalized Estimator for Counterfactual
        Learning", NeurIPS.
    [4] Wang, Agarwal & Dudík (2017), "Optimal and Adaptive Off-policy Evaluation in Contextual
        Bandits", ICML.
    [5] Su, Dimakopoulou, Krishnamurthy & Dudík (2020), "Doubly Robust Off-Policy Evaluation with
        Shrinkage", ICML.
    [6] Kallus & Uehara (2019), "Intrinsically Efficient, Stable, and Bounded Off-Policy
        Evaluation for Reinforcement Learning", NeurIPS (self-normalised DR).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from adsim.env.logs import BanditLog
from adsim.errors import DataError
from adsim.estimators.base import (
    BaseEstimator,
    Components,
    Estimate,
    check_action_dist,
    check_reward_model,
)
from adsim.estimators.base import (
    importance_weights as _importance_weights,
)

__all__ = [
    "Estimate",
    "BaseEstimator",
    "Components",
    "DirectMethod",
    "InverseProbabilityWeighting",
    "SelfNormalizedIPS",
    "DoublyRobust",
    "SelfNormalizedDR",
    "SwitchDR",
    "DROptimisticShrinkage",
    "check_action_dist",
    "check_reward_model",
    "importance_weights",
    "shared_terms",
]


def _check_lambda(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


_SHARED: ContextVar[dict | None] = ContextVar("adsim_shared_terms", default=None)


@contextmanager
def shared_terms() -> Iterator[None]:
    """Inside the block, w, q̂(x, π) and r − q̂(x, a) are computed once per (log, π, q̂) object
    and shared by every estimator (returned read-only); outside it nothing is cached."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _memo(kind: str, fn: Callable[[], np.ndarray], *objs: object) -> np.ndarray:
    cache = _SHARED.get()
    if cache is None:
        return fn()
    key = (kind, *(id(o) for o in objs))
    hit = cache.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], objs)):
        return hit[1]
    val = fn()
    val.flags.writeable = False
    cache[key] = (objs, val)  # the objects are kept, so their ids stay theirs
    return val


def importance_weights(log: BanditLog, pi: np.ndarray) -> np.ndarray:
    """w_i = π(a_i | x_i) / π0(a_i | x_i) (shared inside :func:`shared_terms`)."""
    return _memo("w", lambda: _importance_weights(log, pi), log, pi)


def _dm_term(pi: np.ndarray, q_hat: np.ndarray) -> np.ndarray:
    """q̂(x_i, π) = Σ_a π(a|x_i) q̂(x_i, a), ``(n,)``."""
    return _memo("dm", lambda: np.einsum("ik,ik->i", pi, q_hat), pi, q_hat)


def _residual(log: BanditLog, q_hat: np.ndarray) -> np.ndarray:
    """r_i − q̂(x_i, a_i)."""
    return _memo("res", lambda: log.reward - q_hat[np.arange(log.n_rounds), log.action],
                 log, q_hat)


@dataclass(frozen=True)
class DirectMethod(BaseEstimator):
    """DM: :math:`\\hat V = \\frac1n\\sum_i \\sum_a \\pi(a|x_i)\\hat q(x_i,a)` (Dudík et al. 2011).

    Unbiased only if q̂ is; its interval reflects sampling of contexts, not model error.
    """

    name: ClassVar[str] = "dm"
    needs_reward_model: ClassVar[bool] = True

    def _components(self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None) -> Components:
        assert q_hat is not None
        return Components(_dm_term(pi, q_hat))


@dataclass(frozen=True)
class InverseProbabilityWeighting(BaseEstimator):
    """IPS: :math:`\\hat V = \\frac1n\\sum_i \\min(w_i, \\lambda)\\, r_i`.

    ``clip`` = λ (∞ by default: unbiased under full support; Horvitz & Thompson 1952). Clipping
    trades bias for variance (Strehl et al. 2010). obp: ``InverseProbabilityWeighting(lambda_)``.
    """

    clip: float = float("inf")
    name: ClassVar[str] = "ips"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.clip, bool) or not self.clip > 0:
            raise ValueError(f"clip must be > 0, got {self.clip}")

    def _components(self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None) -> Components:
        return Components(np.minimum(importance_weights(log, pi), self.clip) * log.reward)


@dataclass(frozen=True)
class SelfNormalizedIPS(BaseEstimator):
    """SNIPS: :math:`\\hat V = \\sum_i w_i r_i / \\sum_i w_i` (Swaminathan & Joachims 2015).

    A convex combination of observed rewards, so min(r) ≤ V̂ ≤ max(r). Its standard error is the
    delta-method one, ψ_i = V̂ + w_i (r_i − V̂)/w̄, which accounts for the random normaliser w̄.
    """

    name: ClassVar[str] = "snips"

    def _components(self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None) -> Components:
        w = importance_weights(log, pi)
        if not w.sum() > 0:
            raise DataError(
                "snips: the target policy gives probability 0 to every logged action, so the"
                " self-normalised estimate is undefined"
            )
        return Components(np.zeros_like(w), w * log.reward, w)


@dataclass(frozen=True)
class DoublyRobust(BaseEstimator):
    """DR: :math:`\\hat V = \\frac1n\\sum_i [\\hat q(x_i,\\pi) + \\min(w_i,\\lambda)(r_i - \\hat q(x_i,a_i))]`.

    Unbiased if either the propensities or q̂ are correct (Dudík, Langford & Li 2011). ``clip``
    = λ as in obp's ``DoublyRobust(lambda_)``.
    """

    clip: float = float("inf")
    name: ClassVar[str] = "dr"
    needs_reward_model: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.clip, bool) or not self.clip > 0:
            raise ValueError(f"clip must be > 0, got {self.clip}")

    def _components(self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None) -> Components:
        assert q_hat is not None
        w = np.minimum(importance_weights(log, pi), self.clip)
        return Components(_dm_term(pi, q_hat) + w * _residual(log, q_hat))


@dataclass(frozen=True)
class SelfNormalizedDR(BaseEstimator):
    """SNDR: :math:`\\hat V = \\frac1n\\sum_i \\hat q(x_i,\\pi) + \\sum_i w_i (r_i - \\hat q(x_i,a_i)) / \\sum_i w_i`.

    Only the correction term is self-normalised (as in obp's ``SelfNormalizedDoublyRobust``);
    Kallus & Uehara (2019); Swaminathan & Joachims (2015).
    """

    name: ClassVar[str] = "sndr"
    needs_reward_model: ClassVar[bool] = True

    def _components(self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None) -> Components:
        assert q_hat is not None
        w = importance_weights(log, pi)
        if not w.sum() > 0:
            raise DataError(
                "sndr: the target policy gives probability 0 to every logged action, so the"
                " self-normalised correction is undefined"
            )
        return Components(_dm_term(pi, q_hat), w * _residual(log, q_hat), w)


@dataclass(frozen=True)
class SwitchDR(BaseEstimator):
    """Switch-DR: :math:`\\hat V = \\frac1n\\sum_i [\\hat q(x_i,\\pi) + 1\\{w_i \\le \\lambda\\} w_i (r_i - \\hat q(x_i,a_i))]`.

    The switch is per logged sample, as in obp 0.5.7 (Wang, Agarwal & Dudík 2017 switch per
    (x, a) pair over all actions; obp's per-sample form is what adsim matches). λ = ∞ gives DR,
    λ = 0 gives DM.
    """

    lambda_: float = float("inf")
    name: ClassVar[str] = "switch_dr"
    needs_reward_model: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_lambda("lambda_", self.lambda_)

    def _components(self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None) -> Components:
        assert q_hat is not None
        w = importance_weights(log, pi)
        w = np.where(w <= self.lambda_, w, 0.0)
        return Components(_dm_term(pi, q_hat) + w * _residual(log, q_hat))


@dataclass(frozen=True)
class DROptimisticShrinkage(BaseEstimator):
    """DR-OS: DR with weights shrunk to :math:`\\hat w_i = \\lambda w_i / (w_i^2 + \\lambda)`.

    :math:`\\hat V = \\frac1n\\sum_i [\\hat q(x_i,\\pi) + \\hat w_i (r_i - \\hat q(x_i,a_i))]`
    (Su, Dimakopoulou, Krishnamurthy & Dudík 2020, "optimistic shrinkage"). λ = ∞ gives DR,
    λ = 0 gives DM. Default λ = 0 as in obp.
    """

    lambda_: float = 0.0
    name: ClassVar[str] = "dr_os"
    needs_reward_model: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_lambda("lambda_", self.lambda_)

    def shrunk_weights(self, w: np.ndarray) -> np.ndarray:
        if math.isinf(self.lambda_):
            return w
        denom = w * w + self.lambda_
        return np.divide(self.lambda_ * w, denom, out=np.zeros_like(w), where=denom > 0)

    def _components(self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None) -> Components:
        assert q_hat is not None
        w = self.shrunk_weights(importance_weights(log, pi))
        return Components(_dm_term(pi, q_hat) + w * _residual(log, q_hat))
