"""FiBiNET — Huang, Zhang & Zhang (2019), "FiBiNET: Combining Feature Importance and Bilinear
feature Interaction for Click-Through Rate Prediction", RecSys.

**SENET** re-weights fields: squeeze ``z_f = mean_d e_{f,d}``, excitation
``a = ReLU(W_2 ReLU(W_1 z))`` (``W_1 ∈ R^{F/r × F}``), re-weight ``v_f = a_f e_f``.
**Bilinear interaction** of a pair of fields ``p_{ij} = (e_i W) ∘ e_j`` with ``W`` shared by all
fields (``field_all``), one per field ``W_i`` (``field_each``) or one per pair ``W_{ij}``
(``field_interaction``). It is applied to the embeddings ``E`` (→ p) and to the SENET output
``V`` (→ q), and

.. math::

    \\hat y = \\sigma\\big(w_0 + \\textstyle\\sum_i w_i x_i + \\mathrm{MLP}([\\mathrm{vec}\\, p; \\mathrm{vec}\\, q])\\big).

Shapes: ``(B, F, D)`` → pairs ``(B, F(F-1)/2, D)``. Output logits ``(B,)`` or ``(B, T)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from adsim.models.layers import MLP, EmbeddingConfig
from adsim.models.schema import ModelSchema
from adsim.models.zoo import register
from adsim.models.zoo._common import FieldInputs, LinearPart, task_output

__all__ = ["SENET", "Bilinear", "FiBiNET", "FiBiNETConfig"]

BilinearType = Literal["field_all", "field_each", "field_interaction"]


@dataclass
class FiBiNETConfig(EmbeddingConfig):
    """FiBiNET hyper-parameters."""

    reduction_ratio: int = 3
    """SENET reduction ratio r (hidden size max(1, F // r))."""
    bilinear_type: BilinearType = "field_interaction"
    """Which bilinear weights: one shared, one per field, or one per field pair."""
    hidden: tuple[int, ...] = (256, 128)
    """Widths of the MLP's hidden layers."""
    dropout: float = 0.0
    """Dropout after each MLP hidden layer."""

    def __post_init__(self) -> None:
        super().__post_init__()
        from adsim.errors import ConfigError

        if self.reduction_ratio < 1:
            raise ConfigError(f"reduction_ratio must be >= 1, got {self.reduction_ratio}")
        if self.bilinear_type not in ("field_all", "field_each", "field_interaction"):
            raise ConfigError(
                "bilinear_type must be 'field_all', 'field_each' or 'field_interaction', "
                f"got {self.bilinear_type!r}"
            )


class SENET(nn.Module):
    """Squeeze-excitation over fields: ``(B, F, D) -> (B, F, D)`` re-weighted (Hu et al. 2018)."""

    def __init__(self, n_fields: int, reduction_ratio: int) -> None:
        super().__init__()
        r = max(1, n_fields // reduction_ratio)
        self.excite = nn.Sequential(
            nn.Linear(n_fields, r, bias=False), nn.ReLU(), nn.Linear(r, n_fields, bias=False), nn.ReLU()
        )
        #: field weights ``a`` of the last forward, ``(B, F)`` (detached)
        self.weights: torch.Tensor | None = None

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        a = self.excite(e.mean(dim=2))  # (B, F)
        self.weights = a.detach()
        return e * a.unsqueeze(-1)


class Bilinear(nn.Module):
    """Bilinear pair interactions ``p_ij = (e_i W_·) ∘ e_j`` for i < j: ``(B, F, D) -> (B, P, D)``."""

    def __init__(self, n_fields: int, dim: int, kind: BilinearType) -> None:
        super().__init__()
        i, j = torch.triu_indices(n_fields, n_fields, offset=1)
        self.register_buffer("i", i, persistent=False)
        self.register_buffer("j", j, persistent=False)
        self.kind = kind
        n_w = {"field_all": 1, "field_each": n_fields, "field_interaction": len(i)}[kind]
        w = torch.empty(n_w, dim, dim)
        for k in range(n_w):
            nn.init.xavier_uniform_(w[k])
        self.weight = nn.Parameter(w)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        if self.kind == "field_all":
            ew = (e @ self.weight[0])[:, self.i]  # (B, P, D)
        elif self.kind == "field_each":
            ew = torch.einsum("bfd,fde->bfe", e, self.weight)[:, self.i]  # (B, P, D)
        else:
            ew = torch.einsum("bpd,pde->bpe", e[:, self.i], self.weight)  # (B, P, D)
        return ew * e[:, self.j]  # (B, P, D)


@register("fibinet", FiBiNETConfig)
class FiBiNET(nn.Module):
    """FiBiNET over a :class:`ModelSchema` (see the module docstring)."""

    def __init__(self, schema: ModelSchema, cfg: FiBiNETConfig) -> None:
        super().__init__()
        self.schema = schema
        self.cfg = cfg
        t = schema.n_tasks
        self.embed = FieldInputs(schema, EmbeddingConfig.of(cfg))
        f = self.embed.n_fields
        if f < 2:
            from adsim.errors import ConfigError

            raise ConfigError(f"fibinet needs at least 2 fields to interact, the schema has {f}")
        self.senet = SENET(f, cfg.reduction_ratio)
        self.bilinear_e = Bilinear(f, cfg.embed_dim, cfg.bilinear_type)
        self.bilinear_v = Bilinear(f, cfg.embed_dim, cfg.bilinear_type)
        self.linear = LinearPart(schema, cfg)
        n_pairs = f * (f - 1) // 2
        self.dnn = MLP(2 * n_pairs * cfg.embed_dim, cfg.hidden, out_dim=t, dropout=cfg.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        e = self.embed(batch)  # (B, F, D)
        v = self.senet(e)  # (B, F, D)
        p, q = self.bilinear_e(e), self.bilinear_v(v)  # (B, P, D) each
        logit = self.linear(batch) + self.dnn(torch.cat([p.flatten(1), q.flatten(1)], dim=1))
        return task_output(logit, self.schema)
