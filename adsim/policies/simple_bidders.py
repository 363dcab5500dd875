"""Baseline bidders, re-exported from the simulator core (:mod:`adsim.env.bidders`).

``make_bidder`` is :func:`adsim.policies.factory.make_bidding_policy`, the one builder of the
one bidder vocabulary (:data:`adsim.config.BidderPolicyConfig`).
"""

from adsim.env.bidders import (
    BASELINE_BIDDERS,
    ConstantPacingBidder,
    FixedBidder,
    ScaledBidder,
    TruthfulBidder,
    baseline_bidder,
)
from adsim.policies.factory import make_bidding_policy as make_bidder

__all__ = [
    "BASELINE_BIDDERS",
    "ConstantPacingBidder",
    "FixedBidder",
    "ScaledBidder",
    "TruthfulBidder",
    "baseline_bidder",
    "make_bidder",
]
