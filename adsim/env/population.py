"""Synthetic users.

The population is a *finite* pool of ``n_users`` users drawn once at construction. Requests
sample users uniformly from the pool, so the expected value of any policy is a finite sum over
users — exactly computable (see :mod:`adsim.env.oracle`).

Dense features are i.i.d. standard normal. A sparse field with vocabulary ``V`` and skew ``z``
gives value ``v`` (rank ``v+1``) probability ∝ (v+1)^-z (Zipf; ``z = 0`` is uniform).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adsim.env.features import Contexts, FeatureSpec

__all__ = ["Population", "zipf_probs"]


def zipf_probs(vocab_size: int, skew: float) -> np.ndarray:
    """Probabilities ∝ rank^-skew over ``vocab_size`` values (rank 1 = value 0)."""
    p = np.arange(1, vocab_size + 1, dtype=np.float64) ** (-skew)
    return p / p.sum()


class Population:
    """A finite pool of users with dense and sparse features.

    Args:
        spec: feature spec.
        n_users: pool size.
        rng: generator for the users' features.
        skews: Zipf skew of each sparse field (default uniform).
    """

    def __init__(
        self,
        spec: FeatureSpec,
        n_users: int,
        rng: np.random.Generator,
        skews: Sequence[float] | None = None,
    ) -> None:
        skews = list(skews) if skews is not None else [0.0] * spec.n_sparse
        if len(skews) != spec.n_sparse:
            raise ValueError("one skew per sparse field is needed")
        self.spec = spec
        self.n_users = int(n_users)
        dense = rng.standard_normal((n_users, spec.n_dense))
        sparse = np.empty((n_users, spec.n_sparse), dtype=np.int64)
        for j, (v, z) in enumerate(zip(spec.vocab_sizes, skews)):
            sparse[:, j] = rng.choice(v, size=n_users, p=zipf_probs(v, z))
        self.users = Contexts(spec, np.arange(n_users, dtype=np.int64), dense, sparse)
        #: probability of each user per request (uniform)
        self.weights = np.full(n_users, 1.0 / n_users)

    def sample(self, n: int, rng: np.random.Generator) -> Contexts:
        """``n`` requests: users drawn uniformly (with replacement) from the pool."""
        return self.users.take(rng.integers(0, self.n_users, size=n))
