"""Policy protocols, re-exported from the simulator core.

The bandit/bidding policy base classes and the bid request/state/outcome types are defined by the
simulator (:mod:`adsim.env.types`), which calls them; policies implement them. This module keeps
the old import path ``adsim.policies.base`` working.
"""

from adsim.env.types import (
    BanditPolicy,
    BidderState,
    BiddingPolicy,
    BidOutcome,
    BidRequests,
    Scorer,
    sample_actions,
)

__all__ = [
    "BanditPolicy",
    "BidOutcome",
    "BidRequests",
    "BidderState",
    "BiddingPolicy",
    "Scorer",
    "sample_actions",
]
