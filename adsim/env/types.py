"""Policy protocols and bid types: what the simulator core asks of the policies it calls.

Defined here, in the core, so that :mod:`adsim.env` never imports :mod:`adsim.policies` (policies
implement these; :mod:`adsim.policies.base` re-exports them).

A **bandit policy** answers a batch of contexts with an action distribution
``action_dist(contexts) -> (n, n_actions)`` (rows sum to one: what off-policy evaluation needs),
samples actions from it with a passed generator, and may learn from batches of feedback.

A **bidding policy** answers a batch of auction requests with bids,
``bid(requests, state) -> (n,) bids``, given the campaign's state (time of day, budget left, last
step's outcome), and learns from each step's :class:`BidOutcome` via ``update``. Bids are in the
auction's units: per impression when the auction ranks by bid, per click when it ranks by eCPM
(``requests.values`` is in the same units, so a truthful bidder bids ``requests.values``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from adsim.env.features import Contexts

__all__ = [
    "BanditPolicy",
    "BidOutcome",
    "BidRequests",
    "BidderState",
    "BiddingPolicy",
    "Scorer",
    "sample_actions",
]


def sample_actions(action_dist: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row of ``action_dist`` ``(n, K)`` by inverse-CDF sampling (vectorised)."""
    cdf = np.cumsum(action_dist, axis=1)
    u = rng.random(action_dist.shape[0]) * cdf[:, -1]
    actions = (cdf <= u[:, None]).sum(axis=1)
    return np.minimum(actions, action_dist.shape[1] - 1)


@runtime_checkable
class Scorer(Protocol):
    """Anything that scores every ad for a batch: ``scores(contexts) -> (n, K)``.

    Higher is better; softmax policies use the scores as logits. adsim's scorers return the log of
    the estimated expected reward, log q̂(x, a), so ranking by score is ranking by q̂.
    """

    def scores(self, contexts: Contexts) -> np.ndarray: ...


class BanditPolicy(ABC):
    """Base class of contextual-bandit policies over ``n_actions`` ads."""

    name: str = "policy"

    def __init__(self, n_actions: int) -> None:
        if n_actions < 1:
            raise ValueError(f"n_actions must be >= 1, got {n_actions}")
        self.n_actions = int(n_actions)

    @abstractmethod
    def action_dist(self, contexts: Contexts) -> np.ndarray:
        """``(n, n_actions)`` probabilities of each action for each context."""

    def sample(self, contexts: Contexts, rng: np.random.Generator) -> np.ndarray:
        """Sample one action per context."""
        return self.sample_from(self.action_dist(contexts), rng)

    def sample_from(self, action_dist: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sample from an action distribution this policy already computed."""
        return sample_actions(action_dist, rng)

    def update(self, contexts: Contexts, actions: np.ndarray, rewards: np.ndarray) -> None:  # noqa: B027 (optional hook)
        """Learn from a batch of feedback (static policies ignore it)."""


# ------------------------------------------------------------------------------ bidding policies
@dataclass(frozen=True)
class BidRequests:
    """A batch of auction requests as one campaign sees them.

    Attributes:
        contexts: the users.
        values: ``(n,)`` the campaign's expected value of winning, in bid units (per impression of
            the top slot when ranking by bid; per click when ranking by eCPM).
        ctr: ``(n,)`` click probability of the campaign's ad in the top slot.
        eligible: ``(n,)`` request matches the campaign's targeting (bids elsewhere are ignored).
        time: ``(n,)`` arrival time in hours since the start of the day.
    """

    contexts: Contexts
    values: np.ndarray
    ctr: np.ndarray
    eligible: np.ndarray
    time: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class BidderState:
    """A campaign's state at the start of a decision step.

    Attributes:
        step: index of this step, ``0 .. n_steps-1``.
        n_steps: steps in the day.
        budget: daily budget (``inf`` if none).
        spent: spent so far today.
        traffic_share: expected share of the day's requests that arrive in this step.
        elapsed_share: expected share of the day's requests that arrived before this step.
        last: the previous step's outcome (None at the first step).
    """

    step: int
    n_steps: int
    budget: float
    spent: float
    traffic_share: float
    elapsed_share: float
    last: BidOutcome | None = None

    @property
    def remaining(self) -> float:
        return max(self.budget - self.spent, 0.0)

    @property
    def time_frac(self) -> float:
        return self.step / self.n_steps


@dataclass(frozen=True)
class BidOutcome:
    """What a campaign observed in one step (sums over the step's requests).

    ``won``/``price`` are per request of the batch it bid on (price in bid units, 0 if lost);
    ``clicked`` (optional, per request) lets policies that learn a CTR model use click labels.
    """

    step: int
    n_requests: int
    bids: int
    impressions: int
    clicks: int
    conversions: int
    cost: float
    value: float
    expected_value: float
    won: np.ndarray
    price: np.ndarray
    clicked: np.ndarray | None = None


class BiddingPolicy(ABC):
    """Base class of bidding policies (one campaign; batched)."""

    name: str = "bidder"

    @abstractmethod
    def bid(self, requests: BidRequests, state: BidderState) -> np.ndarray:
        """``(n,)`` non-negative bids for the batch (0 = do not bid)."""

    def spend_limit(self, state: BidderState) -> float:
        """Most this policy wants to spend in this step (the world enforces it); default: no cap."""
        return float("inf")

    def update(self, outcome: BidOutcome) -> None:  # noqa: B027 (optional hook)
        """Learn from a step's outcome (static policies ignore it)."""

    def reset(self) -> None:  # noqa: B027 (optional hook)
        """Forget per-day state at the start of a new day."""
