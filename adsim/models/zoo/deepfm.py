"""DeepFM — Guo et al. (2017), "DeepFM: A Factorization-Machine based Neural Network for CTR
Prediction", IJCAI.

.. math::

    \\hat y = \\sigma\\big(w_0 + \\textstyle\\sum_i w_i x_i
        + \\tfrac12 \\sum_d [(\\sum_f v_{fd})^2 - \\sum_f v_{fd}^2]
        + \\mathrm{MLP}([v_1; …; v_F; x_{dense}])\\big)

First-order terms over sparse fields (a 1-d embedding) and dense features (a linear layer); the FM
second-order term over the field embeddings v_f; the deep part an MLP over the concatenated
embeddings and dense features. All tasks share the body; output logits ``(B,)`` or ``(B, T)``.

For speed the first-order weights w_i live in one extra column of the fused embedding table
(one gather for both orders), and the FM term is computed in one pass over ``(B, F, D)``.
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


@register("deepfm", DeepFMConfig)
class DeepFM(nn.Module):
    """DeepFM over a :class:`ModelSchema` (see the module docstring)."""

    def __init__(self, schema: ModelSchema, cfg: DeepFMConfig) -> None:
        super().__init__()
        self.schema = schema
        self.cfg = cfg
        f, nd, t = schema.n_sparse, schema.n_dense, schema.n_tasks
        # column D of the fused table is the first-order weight w_i
        self.embed = FieldEmbedding(schema, cfg.embed_dim + 1, cfg.init_std, cfg.embed_dropout)
        self.dense_linear = nn.Linear(nd, t) if nd else None
        self.bias = nn.Parameter(torch.zeros(t))
        self.deep = MLP(f * cfg.embed_dim + nd, cfg.hidden, out_dim=t, dropout=cfg.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        e = self.embed(batch["sparse"])  # (B, F, D+1)
        d = self.cfg.embed_dim
        v = e[..., :d]  # (B, F, D)
        first = e[..., d].sum(dim=1, keepdim=True)  # (B, 1)
        fm = 0.5 * (v.sum(dim=1).pow(2) - v.pow(2).sum(dim=1)).sum(dim=1, keepdim=True)  # (B, 1)
        parts = [v.reshape(v.shape[0], -1)]
        logit = self.bias + first + fm  # (B, T) by broadcast
        if self.dense_linear is not None:
            dense = batch["dense"]
            parts.append(dense)
            logit = logit + self.dense_linear(dense)
        logit = logit + self.deep(torch.cat(parts, dim=1))  # (B, T)
        return logit.squeeze(-1) if self.schema.n_tasks == 1 else logit
