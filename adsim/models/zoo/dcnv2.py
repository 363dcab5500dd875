"""DCN-V2 — Wang et al. (2021), "DCN V2: Improved Deep & Cross Network and Practical Lessons for
Web-scale Learning to Rank Systems", WWW.

The input ``x_0 = [e_1; …; e_F; x_{dense}] ∈ R^d`` (concatenated embeddings and dense features)
passes through L cross layers

.. math::

    x_{l+1} = x_0 \\circ (W_l x_l + b_l) + x_l \\qquad (W_l ∈ R^{d×d})

or, with ``low_rank = r``, the mixture of ``K`` low-rank experts ("DCN-Mix", §3.3)

.. math::

    x_{l+1} = \\sum_{i=1}^{K} G_i(x_l)\\, E_i(x_l) + x_l,\\quad
    E_i(x_l) = x_0 \\circ \\big(U_l^i\\, g(C_l^i\\, g(V_l^{i\\top} x_l)) + b_l\\big)

(``U, V ∈ R^{d×r}``, ``C ∈ R^{r×r}``, ``g = tanh``, gates ``G = softmax(W_g x_l)``). The cross
network and an MLP are combined **stacked** (``x_0 → cross → MLP → logit``) or **parallel**
(``[cross(x_0); MLP(x_0)] → logit``). Output logits ``(B,)`` or ``(B, T)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from adsim.models.layers import MLP, EmbeddingConfig
from adsim.models.schema import ModelSchema
from adsim.models.zoo import register
from adsim.models.zoo._common import FieldInputs, task_output

__all__ = ["CrossNetV2", "CrossNetMix", "DCNv2", "DCNv2Config"]


@dataclass
class DCNv2Config(EmbeddingConfig):
    """DCN-V2 hyper-parameters."""

    structure: Literal["stacked", "parallel"] = "parallel"
    """How the cross network and the MLP combine (paper §3.1, Fig. 2)."""
    n_cross: int = 3
    """Number of cross layers L."""
    low_rank: int | None = None
    """Rank r of the mixture of low-rank experts (None: full-rank ``W_l``)."""
    n_experts: int = 4
    """Number of experts K of the low-rank mixture."""
    hidden: tuple[int, ...] = (256, 128)
    """Widths of the MLP's hidden layers (empty: cross network only)."""
    dropout: float = 0.0
    """Dropout after each MLP hidden layer."""

    def __post_init__(self) -> None:
        super().__post_init__()
        from adsim.errors import ConfigError

        if self.structure not in ("stacked", "parallel"):
            raise ConfigError(f"structure must be 'stacked' or 'parallel', got {self.structure!r}")
        if self.n_cross < 1:
            raise ConfigError(f"n_cross must be >= 1, got {self.n_cross}")
        if self.low_rank is not None and self.low_rank < 1:
            raise ConfigError(f"low_rank must be >= 1 or null, got {self.low_rank}")
        if self.n_experts < 1:
            raise ConfigError(f"n_experts must be >= 1, got {self.n_experts}")


class CrossNetV2(nn.Module):
    """Full-rank cross layers ``x_{l+1} = x_0 ∘ (W_l x_l + b_l) + x_l``: ``(B, d) -> (B, d)``."""

    def __init__(self, dim: int, n_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(dim, dim) for _ in range(n_layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for lin in self.layers:
            x = x0 * lin(x) + x
        return x


class CrossNetMix(nn.Module):
    """Mixture of low-rank cross experts (DCN-Mix): ``(B, d) -> (B, d)``."""

    def __init__(self, dim: int, n_layers: int, rank: int, n_experts: int) -> None:
        super().__init__()
        std = dim**-0.5
        self.u = nn.Parameter(torch.randn(n_layers, n_experts, dim, rank) * std)
        self.v = nn.Parameter(torch.randn(n_layers, n_experts, dim, rank) * std)
        self.c = nn.Parameter(torch.randn(n_layers, n_experts, rank, rank) * rank**-0.5)
        self.bias = nn.Parameter(torch.zeros(n_layers, dim))
        self.gates = nn.ModuleList(nn.Linear(dim, n_experts, bias=False) for _ in range(n_layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for layer, gate in enumerate(self.gates):
            h = torch.tanh(torch.einsum("bd,kdr->bkr", x, self.v[layer]))  # (B, K, r)
            h = torch.tanh(torch.einsum("bkr,krs->bks", h, self.c[layer]))  # (B, K, r)
            e = x0.unsqueeze(1) * (torch.einsum("bks,kds->bkd", h, self.u[layer]) + self.bias[layer])  # (B, K, d)
            g = torch.softmax(gate(x), dim=-1).unsqueeze(-1)  # (B, K, 1)
            x = (g * e).sum(dim=1) + x  # (B, d)
        return x


@register("dcnv2", DCNv2Config)
class DCNv2(nn.Module):
    """DCN-V2 over a :class:`ModelSchema` (see the module docstring)."""

    def __init__(self, schema: ModelSchema, cfg: DCNv2Config) -> None:
        super().__init__()
        self.schema = schema
        self.cfg = cfg
        t = schema.n_tasks
        self.embed = FieldInputs(schema, EmbeddingConfig.of(cfg), dense_as_fields=False)
        d = self.embed.n_fields * cfg.embed_dim + schema.n_dense
        if cfg.low_rank is None:
            self.cross: nn.Module = CrossNetV2(d, cfg.n_cross)
        else:
            self.cross = CrossNetMix(d, cfg.n_cross, cfg.low_rank, cfg.n_experts)
        hidden = tuple(cfg.hidden)
        self.deep = MLP(d, hidden, out_dim=None, dropout=cfg.dropout) if hidden else None
        h = self.deep.out_dim if self.deep is not None else 0
        out_in = (h or d) if cfg.structure == "stacked" else d + h
        self.out = nn.Linear(out_in, t)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x0 = self.embed(batch).flatten(1)  # (B, F·D)
        if self.schema.n_dense:
            x0 = torch.cat([x0, batch["dense"]], dim=1)  # (B, d)
        if self.cfg.structure == "stacked":
            h = self.cross(x0)  # (B, d)
            if self.deep is not None:
                h = self.deep(h)  # (B, H)
        else:
            h = self.cross(x0)
            if self.deep is not None:
                h = torch.cat([h, self.deep(x0)], dim=1)  # (B, d + H)
        return task_output(self.out(h), self.schema)
