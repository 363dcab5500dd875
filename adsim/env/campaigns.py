"""Advertisers' campaigns: which ad they show, what a click/conversion is worth, budgets, targeting.

A :class:`CampaignSet` holds ``C`` campaigns as arrays (ads, budgets, values) so the auction world
can bid for all of them on a whole batch of requests at once. Targeting is a per-field allow-list
over the users' sparse features; :meth:`CampaignSet.eligible` turns it into an ``(n, C)`` mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from adsim.env.features import Contexts, FeatureSpec
from adsim.errors import ConfigError

if TYPE_CHECKING:
    from adsim.config import CampaignConfig

__all__ = ["CampaignSet"]


def _field_sizes(spec: FeatureSpec) -> list[tuple[str, int]]:
    """``(name, vocab size)`` of each sparse user field."""
    return list(zip(spec.sparse_names, spec.vocab_sizes))


@dataclass(frozen=True)
class CampaignSet:
    """``C`` campaigns as arrays.

    Attributes:
        names: campaign labels.
        ads: ``(C,)`` world ad index each campaign shows.
        budgets: ``(C,)`` daily budgets (``inf`` = unlimited).
        value_per_click: ``(C,)``.
        value_per_conversion: ``(C,)``.
        targeting: per campaign, a tuple of ``(field index, allowed-value mask)`` pairs.
    """

    names: tuple[str, ...]
    ads: np.ndarray
    budgets: np.ndarray
    value_per_click: np.ndarray
    value_per_conversion: np.ndarray
    targeting: tuple[tuple[tuple[int, np.ndarray], ...], ...]

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_config(cls, cfgs: Sequence[CampaignConfig], spec: FeatureSpec) -> CampaignSet:
        index = {n: j for j, n in enumerate(spec.sparse_names)}
        targeting = []
        for c in cfgs:
            rules = []
            for field, values in c.targeting.items():
                j = index.get(field, -1)
                ids = np.asarray(values, dtype=np.int64)
                if j < 0 or ids.size == 0 or ids.min() < 0 or ids.max() >= spec.vocab_sizes[j]:
                    raise ConfigError(
                        f"campaign {c.name!r}: targeting.{field}: the world's user fields are"
                        f" {', '.join(f'{n} (ids 0..{v - 1})' for n, v in _field_sizes(spec))};"
                        f" got {field!r}: {list(values)}"
                    )
                mask = np.zeros(spec.vocab_sizes[j], dtype=bool)
                mask[ids] = True
                rules.append((j, mask))
            targeting.append(tuple(rules))
        return cls(
            names=tuple(c.name for c in cfgs),
            ads=np.array([c.ad if c.ad is not None else i for i, c in enumerate(cfgs)], np.int64),
            budgets=np.array([c.budget if c.budget is not None else np.inf for c in cfgs]),
            value_per_click=np.array([c.value_per_click for c in cfgs], dtype=np.float64),
            value_per_conversion=np.array([c.value_per_conversion for c in cfgs], np.float64),
            targeting=tuple(targeting),
        )

    def eligible(self, contexts: Contexts) -> np.ndarray:
        """``(n, C)`` bool: request matches the campaign's targeting."""
        out = np.ones((len(contexts), len(self)), dtype=bool)
        for c, rules in enumerate(self.targeting):
            for j, mask in rules:
                out[:, c] &= mask[contexts.sparse[:, j]]
        return out
