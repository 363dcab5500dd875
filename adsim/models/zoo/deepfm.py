"""DeepFM — Guo et al. (2017), "DeepFM: A Factorization-Machine based Neural Network for CTR
Prediction", IJCAI.

.. math::

    \\hat y = \\sigma\\big(w_0 + \\textstyle\\sum_i w_i x_i
        + \\tfrac12 \\sum_d [(\\sum_f v_{fd})^2 - \\sum_f v_{fd}^2]
        + \\mathrm{MLP}([v_1; …; v_F; x_{dense}])\\big)

First-order terms over sparse fields (a 1-d embedding) and dense features (a linear layer); the FM
second-order term over the field embeddings v_f; the deep part an MLP over the concatenated
embeddings and dense features. All tasks share the body; output logits ``(B,)`` or ``(B, T)``.

With ``dense_fields=True`` every dense feature i is also an FM field with embedding
x_i·u_i (as in the DeepFM paper's treatment of continuous fields), so dense×sparse interactions
enter the FM term too.

For speed all fields share one fused table per order (one gather each, see
:class:`~adsim.models.layers.FieldEmbedding`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adsim.models.layers import MLP, FieldEmbedding
from adsim.models.schema import ModelSchema
from adsim.models.zoo import register

__all__ = ["DeepFM", "DeepFMConfig"]


@dataclass
class DeepFMConfig:
    """DeepFM hyper-parameters."""

    embed_dim: int = 16
    """Embedding size D of every sparse field."""
    hidden: tuple[int, ...] = (256, 128)
    """Widths of the deep part's hidden layers."""
    dropout: float = 0.0
    """Dropout after each hidden layer."""
    embed_dropout: float = 0.0
    """Field dropout on the embeddings (see :class:`~adsim.models.layers.FieldEmbedding`)."""
    init_std: float = 1e-2
    """Standard deviation of the embedding initialisation."""
    dense_fields: bool = False
    """Also treat each dense feature as an FM field with a value-scaled embedding."""


@register("deepfm", DeepFMConfig)
class DeepFM(nn.Module):
    """DeepFM over a :class:`ModelSchema` (see the module docstring)."""

    def __init__(self, schema: ModelSchema, cfg: DeepFMConfig) -> None:
        super().__init__()
        self.schema = schema
        self.cfg = cfg
        f, nd, t = schema.n_sparse, schema.n_dense, schema.n_tasks
        self.embed = FieldEmbedding(schema, cfg.embed_dim, cfg.init_std, cfg.embed_dropout)
        self.first_order = FieldEmbedding(schema, 1, cfg.init_std)
        self.dense_linear = nn.Linear(nd, t) if nd else None
        if self.dense_linear is not None:  # a linear model starts at 0, not at a random slope
            nn.init.zeros_(self.dense_linear.weight)
            nn.init.zeros_(self.dense_linear.bias)
        self.dense_embed = (
            nn.Parameter(torch.randn(nd, cfg.embed_dim) * cfg.init_std) if cfg.dense_fields and nd else None
        )
        self.bias = nn.Parameter(torch.zeros(t))
        n_fields = f + (nd if self.dense_embed is not None else 0)
        self.deep = MLP(n_fields * cfg.embed_dim + nd, cfg.hidden, out_dim=t, dropout=cfg.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        sparse = batch["sparse"]
        v = self.embed(sparse)  # (B, F, D)
        first = self.first_order(sparse).sum(dim=1)  # (B, 1)
        if self.dense_embed is not None:
            v = torch.cat([v, batch["dense"].unsqueeze(-1) * self.dense_embed], dim=1)  # (B, F+nd, D)
        fm = 0.5 * (v.sum(dim=1).pow(2) - v.pow(2).sum(dim=1)).sum(dim=1, keepdim=True)  # (B, 1)
        parts = [v.flatten(1)]
        logit = self.bias + first + fm  # (B, T) by broadcast
        if self.dense_linear is not None:
            dense = batch["dense"]
            parts.append(dense)
            logit = logit + self.dense_linear(dense)
        logit = logit + self.deep(torch.cat(parts, dim=1))  # (B, T)
        return logit.squeeze(-1) if self.schema.n_tasks == 1 else logit
