"""Policy protocols.

A **bandit policy** answers a batch of contexts with an action distribution
``action_dist(contexts) -> (n, n_actions)`` (rows sum to one: what off-policy evaluation needs),
samples actions from it with a passed generator, and may learn from batches of feedback.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol, runtime_checkable

import numpy as np

from adsim.env.features import Contexts

__all__ = ["BanditPolicy", "Scorer", "sample_actions"]


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

    def update(self, contexts: Contexts, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Learn from a batch of feedback (static policies ignore it)."""
