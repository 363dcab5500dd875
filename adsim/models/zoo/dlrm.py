"""DLRM — Naumov et al. (2019), "Deep Learning Recommendation Model for Personalization and
Recommendation Systems", arXiv:1906.00091.

Dense features go through a bottom MLP to one vector ``z_0 ∈ R^D`` (the size of the embeddings);
sparse fields are embedded ``e_1 … e_F``. The dot interaction takes all pairwise inner products

.. math::

    Z = [z_0; e_1; …; e_F]\\,[z_0; e_1; …; e_F]^\\top,\\qquad
    \\hat y = \\sigma\\big(\\mathrm{MLP}_{top}([z_0; \\mathrm{tril}_{-1}(Z)])\\big)

(``tril_{-1}``: the strictly-lower triangle, ``(F+1)F/2`` values; ``self_interaction`` keeps the
diagonal too). Without dense features ``z_0`` is omitted. Output logits ``(B,)`` or ``(B, T)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adsim.models.layers import MLP, EmbeddingConfig
from adsim.models.schema import ModelSchema
from adsim.models.zoo import register
from adsim.models.zoo._common import FieldInputs, task_output

__all__ = ["DLRM", "DLRMConfig"]


@dataclass
class DLRMConfig(EmbeddingConfig):
    """DLRM hyper-parameters."""

    bottom: tuple[int, ...] = (64,)
    """Hidden widths of the bottom (dense) MLP; its output size is ``embed_dim``."""
    top: tuple[int, ...] = (256, 128)
    """Hidden widths of the top MLP."""
    self_interaction: bool = False
    """Also keep ``<e_i, e_i>`` (the diagonal of Z)."""
    dropout: float = 0.0
    """Dropout after each top-MLP hidden layer."""


@register("dlrm", DLRMConfig)
class DLRM(nn.Module):
    """DLRM over a :class:`ModelSchema` (see the module docstring)."""

    def __init__(self, schema: ModelSchema, cfg: DLRMConfig) -> None:
        super().__init__()
        self.schema = schema
        self.cfg = cfg
        d, t = cfg.embed_dim, schema.n_tasks
        self.embed = FieldInputs(schema, EmbeddingConfig.of(cfg), dense_as_fields=False) if (
            schema.n_sparse or schema.sequences
        ) else None
        nd = schema.n_dense
        self.bottom = nn.Sequential(MLP(nd, cfg.bottom, out_dim=d), nn.ReLU()) if nd else None
        n = (self.embed.n_fields if self.embed is not None else 0) + (1 if nd else 0)
        i, j = torch.tril_indices(n, n, offset=0 if cfg.self_interaction else -1)
        self.register_buffer("i", i, persistent=False)
        self.register_buffer("j", j, persistent=False)
        self.top = MLP(len(i) + (d if nd else 0), cfg.top, out_dim=t, dropout=cfg.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        vecs, head = [], []
        if self.bottom is not None:
            z0 = self.bottom(batch["dense"])  # (B, D)
            vecs.append(z0.unsqueeze(1))
            head.append(z0)
        if self.embed is not None:
            vecs.append(self.embed(batch))  # (B, F, D)
        x = torch.cat(vecs, dim=1) if len(vecs) > 1 else vecs[0]  # (B, n, D)
        z = x @ x.transpose(1, 2)  # (B, n, n)
        inter = z[:, self.i, self.j]  # (B, n(n-1)/2)
        return task_output(self.top(torch.cat([*head, inter], dim=1)), self.schema)
