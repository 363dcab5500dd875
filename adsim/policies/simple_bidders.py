"""Baseline bidding policies used by the auction world and its runner.

The real pacing suite (Lagrangian dual pacing, PID, bid shading, RL) builds on the same
:class:`~adsim.policies.base.BiddingPolicy` protocol; these are the reference points:

* :class:`TruthfulBidder` — bid ``scale ×`` the value of the impression. With ``scale = 1`` this is
  the dominant strategy of a second-price auction without a budget (Vickrey 1961).
* :class:`ConstantPacingBidder` — truthful, but spend at most ``budget / n_steps`` in each step:
  even pacing that ignores the daily traffic curve (the naive baseline that a traffic-aware
  pacer should beat).
* :class:`FixedBidder` — the same amount on every eligible request.
* :class:`ScaledBidder` — bid ``scale × value`` with a scale set from outside (the Gymnasium
  env's action).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from adsim.policies.base import BidderState, BiddingPolicy, BidRequests

if TYPE_CHECKING:
    from adsim.config import BidderConfig

__all__ = [
    "ConstantPacingBidder",
    "FixedBidder",
    "ScaledBidder",
    "TruthfulBidder",
    "make_bidder",
]


class TruthfulBidder(BiddingPolicy):
    """Bid ``scale × value`` on eligible requests."""

    name = "truthful"

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = float(scale)

    def bid(self, requests: BidRequests, state: BidderState) -> np.ndarray:
        return np.where(requests.eligible, self.scale * requests.values, 0.0)


class ScaledBidder(TruthfulBidder):
    """Truthful bidder whose ``scale`` is set by a controller (e.g. an RL agent) every step."""

    name = "scaled"


class ConstantPacingBidder(TruthfulBidder):
    """Truthful bids, spending capped at ``budget / n_steps`` per step (even pacing)."""

    name = "constant_pacing"

    def spend_limit(self, state: BidderState) -> float:
        if not np.isfinite(state.budget):
            return float("inf")
        return state.budget / state.n_steps


class FixedBidder(BiddingPolicy):
    """The same ``amount`` on every eligible request."""

    name = "fixed"

    def __init__(self, amount: float) -> None:
        self.amount = float(amount)

    def bid(self, requests: BidRequests, state: BidderState) -> np.ndarray:
        return np.where(requests.eligible, self.amount, 0.0)


def make_bidder(cfg: BidderConfig) -> BiddingPolicy:
    """The baseline bidder a campaign's ``bidder`` config asks for."""
    if cfg.type == "truthful":
        return TruthfulBidder(cfg.scale)
    if cfg.type == "constant_pacing":
        return ConstantPacingBidder(cfg.scale)
    if cfg.type == "fixed":
        return FixedBidder(cfg.amount)
    raise ValueError(f"unknown bidder type {cfg.type!r}")
