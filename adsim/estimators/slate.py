"""Off-policy estimators for ranked slates (GSP slots).

A slate log has one row per impression: ``position`` k (slot 0 = top) of slate s, the ad
:math:`a_{s,k}` shown there, its reward :math:`r_{s,k}`, and ``pscore`` — the logger's marginal
probability :math:`\\pi_0(a_{s,k}\\text{ at }k \\mid x_s)`. Rows of one slate are consecutive with
positions 0, 1, 2, …; a new slate starts at each position 0. The target gives
``action_dist[i, a, k]`` = π(a at slot k | x) for every row i (shape ``(n_rows, n_actions,
n_positions)``, each slot's column summing to 1). The slate value is the expected sum of rewards
over slots; the estimate averages over the :math:`S` slates.

- **Independent IPS** (IIPS; Li et al. 2018, "Offline Evaluation of Ranking Policies with Click
  Models", KDD): assumes a slot's reward depends only on its own ad,

  .. math:: \\hat V = \\frac1S\\sum_s\\sum_k w_{s,k}\\, r_{s,k}, \\qquad
            w_{s,k} = \\frac{\\pi(a_{s,k}\\text{ at }k|x_s)}{\\pi_0(a_{s,k}\\text{ at }k|x_s)}.

- **Reward-interaction IPS** (RIPS; McInerney et al. 2020, "Counterfactual Evaluation of Slate
  Recommendations with Sequential Reward Interactions", KDD; Kiyohara et al. 2022, "Doubly Robust
  Off-Policy Evaluation for Ranking Policies under the Cascade Behavior Model", WSDM): under the
  cascade model a slot's reward depends on the ads above it, so it is weighted by the product of
  the weights of slots 0..k,

  .. math:: \\hat V = \\frac1S\\sum_s\\sum_k \\Big(\\prod_{j\\le k} w_{s,j}\\Big) r_{s,k}.

  With per-slot marginal propensities this product is the cascade (prefix) weight for policies
  that choose slots independently (factorised); it equals obp's ``SlateRewardInteractionIPS``
  given ``pscore_cascade`` = cumulative product of ``pscore`` (and likewise for the target).

ψ_s is the per-slate sum, so standard errors and intervals are over slates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from adsim.env.logs import BanditLog
from adsim.errors import DataError
from adsim.estimators.base import BaseEstimator, Components, Estimate, check_action_dist
from adsim.estimators.diagnostics import overlap_diagnostics

__all__ = ["slate_index", "SlateIndependentIPS", "SlateRewardInteractionIPS", "SLATE_ESTIMATORS"]


def slate_index(log: BanditLog) -> tuple[np.ndarray, int, int]:
    """``(slate id per row, n_slates, max slate length)`` from the ``position`` column.

    Raises :class:`DataError` naming the first row whose position breaks the 0, 1, 2, … order.
    """
    pos = log.position
    if pos is None:
        raise DataError(
            "slate estimators need the log column 'position' (slot of each impression, 0 = top)"
        )
    bad = np.flatnonzero(pos < 0)
    if bad.size:
        raise DataError(f"column 'position': {pos[bad[0]]} at row {bad[0]} is negative")
    if pos[0] != 0:
        raise DataError(f"column 'position': a slate must start at position 0, row 0 has {pos[0]}")
    step_ok = (pos[1:] == 0) | (pos[1:] == pos[:-1] + 1)
    bad = np.flatnonzero(~step_ok)
    if bad.size:
        r = bad[0] + 1
        raise DataError(
            f"column 'position': row {r} has position {pos[r]} after {pos[r - 1]}; rows of a slate"
            " must be consecutive with positions 0, 1, 2, … (sort by slate, then position)"
        )
    slate = np.cumsum(pos == 0) - 1
    return slate, int(slate[-1]) + 1, int(pos.max()) + 1


@dataclass(frozen=True)
class _SlateIPS(BaseEstimator):
    cascade: ClassVar[bool] = False

    def estimate(
        self, log: BanditLog, action_dist: np.ndarray, reward_model: np.ndarray | None = None
    ) -> Estimate:
        """Estimate the slate value; ``action_dist`` is ``(n_rows, n_actions, n_positions)``."""
        if np.ndim(action_dist) != 3:
            raise DataError(
                f"{self.name}: action_dist must be (n_rows, n_actions, n_positions), got shape"
                f" {np.shape(action_dist)}"
            )
        slate_index(log)
        pi = check_action_dist(action_dist, log)
        diag = overlap_diagnostics(log, pi, weights=self.row_weights(log, pi))
        if self.warn:
            diag.warn()
        return self._estimate_checked(log, pi, None, diag)

    def row_weights(self, log: BanditLog, pi: np.ndarray) -> np.ndarray:
        """Per-impression weights (IIPS: own slot; RIPS: product over the slots above)."""
        w = pi[np.arange(log.n_rounds), log.action] / log.pscore
        if not self.cascade:
            return w
        slate, n_slates, length = slate_index(log)
        grid = np.ones((n_slates, length))
        grid[slate, log.position] = w
        return np.cumprod(grid, axis=1)[slate, log.position]

    def _components(self, log: BanditLog, pi: np.ndarray, q_hat: np.ndarray | None) -> Components:
        slate, n_slates, _ = slate_index(log)
        per_slate = np.bincount(slate, weights=self.row_weights(log, pi) * log.reward,
                                minlength=n_slates)
        return Components(per_slate)


@dataclass(frozen=True)
class SlateIndependentIPS(_SlateIPS):
    """IIPS: each slot weighted by its own marginal weight (see module docstring)."""

    name: ClassVar[str] = "slate_iips"
    cascade: ClassVar[bool] = False


@dataclass(frozen=True)
class SlateRewardInteractionIPS(_SlateIPS):
    """RIPS: each slot weighted by the product of the weights at and above it (cascade)."""

    name: ClassVar[str] = "slate_rips"
    cascade: ClassVar[bool] = True


SLATE_ESTIMATORS: dict[str, type[BaseEstimator]] = {
    c.name: c for c in (SlateIndependentIPS, SlateRewardInteractionIPS)
}
