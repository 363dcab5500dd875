"""MMoE — Ma et al. (2018), "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts", KDD.

E expert networks share the input; each task t has its own softmax gate:

.. math::

    f_t(x) = \\sum_{e=1}^{E} g_t(x)_e \\, \\mathrm{expert}_e(x), \\qquad
    g_t(x) = \\operatorname{softmax}(W_t x), \\qquad \\hat z_t = \\mathrm{tower}_t(f_t(x))

so tasks can use different mixtures of the experts (less negative transfer than a shared
bottom when tasks are loosely related). The input x is :class:`FeatureInput`'s flat vector.
Logits ``(B, T)`` follow :mod:`adsim.models.multitask`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adsim.models.layers import MLP
from adsim.models.schema import ModelSchema
from adsim.models.zoo import register
from adsim.models.zoo._mtl_base import FeatureInput, Towers, check_common

__all__ = ["MMoE", "MMoEConfig"]


@dataclass
class MMoEConfig:
    """MMoE hyper-parameters."""

    embed_dim: int = 16
    """Embedding size D."""
    n_experts: int = 4
    """Number of shared experts E."""
    expert: tuple[int, ...] = (64,)
    """Hidden widths of each expert (its output is the last width)."""
    tower: tuple[int, ...] = (32,)
    """Hidden widths of each task tower."""
    dropout: float = 0.0
    """Dropout in the MLPs and field dropout on embeddings."""
    seq_encoder: str = "mean"
    """Behaviour-sequence encoder: mean, gru, lstm or bst."""
    seq_target: str | None = None
    """Sparse field used as BST's target item."""


@register("mmoe", MMoEConfig)
class MMoE(nn.Module):
    """Multi-gate mixture of experts (see the module docstring)."""

    def __init__(self, schema: ModelSchema, cfg: MMoEConfig) -> None:
        super().__init__()
        check_common(schema, cfg.embed_dim, cfg.dropout, cfg.seq_encoder, cfg.seq_target)
        if cfg.n_experts < 1 or not cfg.expert:
            raise ValueError("n_experts must be >= 1 and expert must list at least one width")
        self.schema, self.cfg = schema, cfg
        self.input = FeatureInput(schema, cfg.embed_dim, cfg.seq_encoder, cfg.seq_target, cfg.dropout)
        d = self.input.flat_dim
        self.experts = nn.ModuleList(
            MLP(d, cfg.expert, out_dim=None, dropout=cfg.dropout) for _ in range(cfg.n_experts)
        )
        self.gates = nn.ModuleList(nn.Linear(d, cfg.n_experts) for _ in range(schema.n_tasks))
        self.towers = Towers(cfg.expert[-1], schema.n_tasks, cfg.tower, cfg.dropout)

    def gate_weights(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, T, E)`` each task's mixture weights over the experts."""
        x = self.input.flat(batch)
        return torch.stack([torch.softmax(g(x), dim=-1) for g in self.gates], dim=1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.input.flat(batch)  # (B, d)
        experts = torch.stack([e(x) for e in self.experts], dim=1)  # (B, E, H)
        gates = torch.stack([torch.softmax(g(x), dim=-1) for g in self.gates], dim=1)  # (B, T, E)
        mixed = torch.bmm(gates, experts)  # (B, T, H)
        z = self.towers(mixed.unbind(1))  # (B, T)
        return z.squeeze(-1) if self.schema.n_tasks == 1 else z
