"""PLE — Tang et al. (2020), "Progressive Layered Extraction (PLE): A Novel Multi-Task Learning
(MTL) Model for Personalized Recommendations", RecSys.

Each extraction level (a Customized Gate Control, CGC, layer) has ``n_specific`` experts per task
and ``n_shared`` shared experts. Task t's output mixes its own and the shared experts; the shared
branch (in all but the last level) mixes every expert and feeds the next level:

.. math::

    h^{k}_t = \\sum_{e \\in E_t ∪ E_s} g^{k}_t(h^{k-1}_t)_e \\, \\mathrm{expert}^k_e(\\cdot),
    \\qquad
    h^{k}_s = \\sum_{e \\in E_1 ∪ … ∪ E_T ∪ E_s} g^{k}_s(h^{k-1}_s)_e \\, \\mathrm{expert}^k_e(\\cdot)

(task-specific experts read their task's previous output, shared experts the shared one; level 0
inputs are all :class:`FeatureInput`'s flat vector). Towers on the last level's task outputs give
logits ``(B, T)`` (contract: :mod:`adsim.models.multitask`). Explicitly separating shared and
task-specific experts reduces the "seesaw" of MMoE between tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adsim.models.layers import MLP
from adsim.models.schema import ModelSchema
from adsim.models.zoo import register
from adsim.models.zoo._mtl_base import FeatureInput, Towers, check_common

__all__ = ["PLE", "PLEConfig"]


@dataclass
class PLEConfig:
    """PLE hyper-parameters."""

    embed_dim: int = 16
    """Embedding size D."""
    n_levels: int = 2
    """Number of extraction (CGC) levels."""
    n_specific: int = 2
    """Task-specific experts per task and level."""
    n_shared: int = 2
    """Shared experts per level."""
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


class _CGCLevel(nn.Module):
    """One extraction level: specific + shared experts, task gates and (optionally) a shared gate."""

    def __init__(self, in_dim: int, n_tasks: int, cfg: PLEConfig, shared_out: bool) -> None:
        super().__init__()

        def experts(n: int) -> nn.ModuleList:
            return nn.ModuleList(MLP(in_dim, cfg.expert, None, cfg.dropout) for _ in range(n))

        self.specific = nn.ModuleList(experts(cfg.n_specific) for _ in range(n_tasks))
        self.shared = experts(cfg.n_shared)
        self.task_gates = nn.ModuleList(
            nn.Linear(in_dim, cfg.n_specific + cfg.n_shared) for _ in range(n_tasks)
        )
        n_all = n_tasks * cfg.n_specific + cfg.n_shared
        self.shared_gate = nn.Linear(in_dim, n_all) if shared_out else None

    def forward(self, task_in: list[torch.Tensor], shared_in: torch.Tensor):
        shared = [e(shared_in) for e in self.shared]  # n_shared × (B, H)
        outs, all_specific = [], []
        for t, x in enumerate(task_in):
            spec = [e(x) for e in self.specific[t]]
            all_specific += spec
            ex = torch.stack(spec + shared, dim=1)  # (B, n_spec + n_shared, H)
            g = torch.softmax(self.task_gates[t](x), dim=-1).unsqueeze(1)  # (B, 1, n)
            outs.append(torch.bmm(g, ex).squeeze(1))  # (B, H)
        shared_out = None
        if self.shared_gate is not None:
            ex = torch.stack(all_specific + shared, dim=1)  # (B, n_all, H)
            g = torch.softmax(self.shared_gate(shared_in), dim=-1).unsqueeze(1)
            shared_out = torch.bmm(g, ex).squeeze(1)
        return outs, shared_out


@register("ple", PLEConfig)
class PLE(nn.Module):
    """Progressive layered extraction (see the module docstring)."""

    def __init__(self, schema: ModelSchema, cfg: PLEConfig) -> None:
        super().__init__()
        check_common(schema, cfg.embed_dim, cfg.dropout, cfg.seq_encoder, cfg.seq_target)
        if cfg.n_levels < 1 or cfg.n_specific < 0 or cfg.n_shared < 0 or not cfg.expert:
            raise ValueError("PLE needs n_levels >= 1, n_specific/n_shared >= 0 and expert widths")
        if cfg.n_specific + cfg.n_shared < 1:
            raise ValueError("PLE needs at least one expert (n_specific + n_shared >= 1)")
        self.schema, self.cfg = schema, cfg
        self.input = FeatureInput(schema, cfg.embed_dim, cfg.seq_encoder, cfg.seq_target, cfg.dropout)
        dims = [self.input.flat_dim] + [cfg.expert[-1]] * (cfg.n_levels - 1)
        self.levels = nn.ModuleList(
            _CGCLevel(d, schema.n_tasks, cfg, shared_out=k < cfg.n_levels - 1)
            for k, d in enumerate(dims)
        )
        self.towers = Towers(cfg.expert[-1], schema.n_tasks, cfg.tower, cfg.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.input.flat(batch)  # (B, d)
        task_in, shared_in = [x] * self.schema.n_tasks, x
        for level in self.levels:
            task_in, shared_in = level(task_in, shared_in)
        z = self.towers(task_in)  # (B, T)
        return z.squeeze(-1) if self.schema.n_tasks == 1 else z
