"""Logistic regression — the baseline every CTR model must beat (e.g. McMahan et al. 2013, "Ad
Click Prediction: a View from the Trenches", KDD).

.. math::

    \\hat y_t = \\sigma\\big(w_{0t} + \\textstyle\\sum_f w_{t, f, x_f} + \\sum_j u_{tj} x_j\\big)

One weight per (task, field value) — a ``T``-dimensional embedding — plus a linear layer over the
dense features. No interactions. Output logits ``(B,)`` or ``(B, T)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adsim.models.layers import EmbeddingConfig
from adsim.models.schema import ModelSchema
from adsim.models.zoo import register
from adsim.models.zoo._common import LinearPart, task_output

__all__ = ["LR", "LRConfig"]


@dataclass
class LRConfig(EmbeddingConfig):
    """Logistic regression options (``embed_dim``/``adaptive_dim`` are unused: weights are 1-d)."""


@register("lr", LRConfig)
class LR(nn.Module):
    """Logistic regression over a :class:`ModelSchema` (see the module docstring)."""

    def __init__(self, schema: ModelSchema, cfg: LRConfig) -> None:
        super().__init__()
        self.schema = schema
        self.cfg = cfg
        self.linear = LinearPart(schema, cfg)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return task_output(self.linear(batch), self.schema)  # (B,) or (B, T)
