"""The ad catalogue: K ads with feature vectors and values per click."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Catalog"]


@dataclass(frozen=True)
class Catalog:
    """Ads with features.

    Attributes:
        features: ``(K, d)`` ad embeddings (unit-variance entries scaled by 1/√d), in the same
            space as the users' dense features.
        values: ``(K,)`` advertiser value of one click on each ad.
    """

    features: np.ndarray
    values: np.ndarray

    @property
    def n_ads(self) -> int:
        return int(self.values.shape[0])

    @classmethod
    def random(
        cls, n_ads: int, dim: int, rng: np.random.Generator, value_sigma: float = 0.5
    ) -> Catalog:
        """Ads with N(0, 1/d) embeddings and log-normal(0, value_sigma) click values."""
        feats = rng.standard_normal((n_ads, dim)) / np.sqrt(max(dim, 1))
        values = np.exp(value_sigma * rng.standard_normal(n_ads))
        return cls(features=feats, values=values)
