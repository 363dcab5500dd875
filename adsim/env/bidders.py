"""The simulator's reference bidders: what a campaign does when nothing smarter bids for it.

They live in the core (beside :mod:`adsim.env.types`) because the world and its Gymnasium env
need them without importing :mod:`adsim.policies`; :mod:`adsim.policies.simple_bidders` re-exports
them. The pacing suite (Lagrangian dual pacing, PID, bid shading, RL) in :mod:`adsim.policies`
builds on the same :class:`~adsim.env.types.BiddingPolicy` protocol; these are the reference points:

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

from typing import Any

import numpy as np

from adsim.env.types import BidderState, BiddingPolicy, BidRequests

__all__ = [
    "ConstantPacingBidder",
    "FixedBidder",
    "ScaledBidder",
    "TruthfulBidder",
    "BASELINE_BIDDERS",
    "baseline_bidder",
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


#: the bidder types of the one bidder vocabulary (:data:`adsim.config.BidderPolicyConfig`) that
#: the core builds itself; :func:`adsim.policies.factory.make_bidding_policy` builds every type
BASELINE_BIDDERS = ("truthful", "constant_pacing", "fixed")


def baseline_bidder(cfg: Any) -> BiddingPolicy:
    """The reference bidder a campaign's ``bidder`` config asks for (a type in
    :data:`BASELINE_BIDDERS`); other types need :func:`adsim.policies.factory.make_bidding_policy`."""
    if cfg.type == "truthful":
        pol: BiddingPolicy = TruthfulBidder(cfg.scale)
    elif cfg.type == "constant_pacing":
        pol = ConstantPacingBidder(cfg.scale)
    elif cfg.type == "fixed":
        pol = FixedBidder(cfg.amount)
    else:
        raise ValueError(
            f"bidder type {cfg.type!r} is not one of the core's {', '.join(BASELINE_BIDDERS)};"
            " build it with adsim.policies.factory.make_bidding_policy"
        )
    if getattr(cfg, "name", None):
        pol.name = cfg.name
    return pol
