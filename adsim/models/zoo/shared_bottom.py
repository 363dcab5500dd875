"""Shared-bottom multi-task network — the hard-parameter-sharing baseline (Caruana 1997,
"Multitask Learning", Machine Learning 28).

.. math::

    h = \\mathrm{MLP}_{bottom}([e_1; …; e_F; x_{dense}; s_1; …; s_S]), \\qquad
    \\hat z_t = \\mathrm{tower}_t(h)

with field embeddings :math:`e_f`, scaled dense features and pooled behaviour sequences
:math:`s_j` (:mod:`adsim.models.sequence`). Logits ``(B, T)`` follow the contract of
:mod:`adsim.models.multitask` (each column models its label over all impressions).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adsim.models.layers import MLP
from adsim.models.schema import ModelSchema
from adsim.models.zoo import register
from adsim.models.zoo._mtl_base import FeatureInput, Towers, check_common

__all__ = ["SharedBottom", "SharedBottomConfig"]


@dataclass
class SharedBottomConfig:
    """Shared-bottom hyper-parameters."""

    embed_dim: int = 16
    """Embedding size D of every sparse field and sequence."""
    bottom: tuple[int, ...] = (128, 64)
    """Widths of the shared bottom MLP."""
    tower: tuple[int, ...] = (32,)
    """Hidden widths of each task tower."""
    dropout: float = 0.0
    """Dropout in the MLPs and field dropout on embeddings."""
    seq_encoder: str = "mean"
    """Behaviour-sequence encoder: mean, gru, lstm or bst."""
    seq_target: str | None = None
    """Sparse field used as BST's target item."""


@register("shared_bottom", SharedBottomConfig)
class SharedBottom(nn.Module):
    """Shared bottom + one tower per task (see the module docstring)."""

    def __init__(self, schema: ModelSchema, cfg: SharedBottomConfig) -> None:
        super().__init__()
        check_common(schema, cfg.embed_dim, cfg.dropout, cfg.seq_encoder, cfg.seq_target)
        self.schema, self.cfg = schema, cfg
        self.input = FeatureInput(schema, cfg.embed_dim, cfg.seq_encoder, cfg.seq_target, cfg.dropout)
        self.bottom = MLP(self.input.flat_dim, cfg.bottom, out_dim=None, dropout=cfg.dropout)
        self.towers = Towers(self.bottom.out_dim, schema.n_tasks, cfg.tower, cfg.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.bottom(self.input.flat(batch))  # (B, H)
        z = self.towers([h] * self.schema.n_tasks)  # (B, T)
        return z.squeeze(-1) if self.schema.n_tasks == 1 else z
