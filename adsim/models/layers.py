"""Reusable layers: field embeddings, MLPs.

:class:`FieldEmbedding` looks up every sparse field at once from one fused table (offsets per
field), which is much faster than one ``nn.Embedding`` per field: one gather for the whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from adsim.models.schema import ModelSchema

__all__ = ["FieldEmbedding", "MLP"]


class FieldEmbedding(nn.Module):
    """All sparse fields embedded with one fused table: ``(B, F) -> (B, F, D)``.

    Field f's ids ``[0, vocab_f)`` map to rows ``offset_f + id`` of a single ``(Σ vocab_f, D)``
    table, initialised N(0, init_std²). ``dropout`` > 0 is *field* dropout during training: each
    row's whole field vector is zeroed with probability ``dropout`` (survivors scaled by
    1/(1-dropout)), a regulariser for high-cardinality ids.
    """

    def __init__(
        self, schema: ModelSchema, dim: int, init_std: float = 1e-2, dropout: float = 0.0
    ) -> None:
        super().__init__()
        vocab = [f.vocab_size for f in schema.sparse]
        offsets = torch.tensor([0, *vocab[:-1]], dtype=torch.long).cumsum(0) if vocab else torch.zeros(0, dtype=torch.long)
        self.register_buffer("offsets", offsets, persistent=False)
        self.n_fields = len(vocab)
        self.dim = dim
        self.table = nn.Embedding(max(sum(vocab), 1), dim)
        nn.init.normal_(self.table.weight, std=init_std)
        self.dropout = float(dropout)

    def forward(self, sparse: torch.Tensor) -> torch.Tensor:
        ids = (sparse + self.offsets).reshape(-1)
        # index_select's backward is a scatter-add (index_add_), several times faster on CPU than
        # nn.Embedding's sort-based dense backward; same values and gradients
        v = self.table.weight.index_select(0, ids).view(*sparse.shape, self.dim)  # (B, F, D)
        if self.dropout > 0 and self.training:
            keep = torch.rand(v.shape[:2] + (1,), device=v.device) >= self.dropout  # (B, F, 1)
            v = v * keep.to(v.dtype) / (1.0 - self.dropout)
        return v


class MLP(nn.Module):
    """Linear → activation → dropout stack; ``out_dim=None`` leaves the last hidden layer as output."""

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int | None = 1,
        dropout: float = 0.0,
        activation: type[nn.Module] = nn.ReLU,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers.append(nn.Linear(d, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = h
        if out_dim is not None:
            layers.append(nn.Linear(d, out_dim))
        self.out_dim = out_dim if out_dim is not None else d
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
