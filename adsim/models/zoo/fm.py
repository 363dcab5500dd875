"""Factorization machine — Rendle (2010), "Factorization Machines", ICDM.

.. math::

    \\hat y_t = \\sigma\\big(w_{0t} + \\textstyle\\sum_i w_{ti} x_i
        + \\sum_{i<j} \\langle v_{ti}, v_{tj} \\rangle x_i x_j\\big),\\qquad
    \\sum_{i<j} \\langle v_i, v_j\\rangle x_i x_j
        = \\tfrac12 \\sum_d \\big[(\\textstyle\\sum_i v_{id} x_i)^2 - \\sum_i v_{id}^2 x_i^2\\big]

computed in O(F·D) with the identity on the right. A one-hot sparse field contributes its value's
vector ``v_{f, x_f}``; a dense feature j contributes ``x_j v_j``. Each task has its own vectors
(the embedding is ``T·D`` wide, viewed as ``(T, D)``). Output logits ``(B,)`` or ``(B, T)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adsim.models.layers import EmbeddingConfig
from adsim.models.schema import ModelSchema
from adsim.models.zoo import register
from adsim.models.zoo._common import FieldInputs, LinearPart, task_output

__all__ = ["FM", "FMConfig", "fm_interaction"]


def fm_interaction(v: torch.Tensor) -> torch.Tensor:
    """``Σ_{i<j} <v_i, v_j>`` over fields (dim -2): ``(..., F, D) -> (...)``."""
    return 0.5 * (v.sum(dim=-2).pow(2) - v.pow(2).sum(dim=-2)).sum(dim=-1)


@dataclass
class FMConfig(EmbeddingConfig):
    """Factorization machine options (``embed_dim`` is the factor size k of the paper)."""


@register("fm", FMConfig)
class FM(nn.Module):
    """Factorization machine over a :class:`ModelSchema` (see the module docstring)."""

    def __init__(self, schema: ModelSchema, cfg: FMConfig) -> None:
        super().__init__()
        self.schema = schema
        self.cfg = cfg
        t = schema.n_tasks
        self.embed = FieldInputs(schema, EmbeddingConfig.of(cfg, embed_dim=cfg.embed_dim * t))
        self.linear = LinearPart(schema, cfg)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        v = self.embed(batch)  # (B, F, T·D)
        b, f, _ = v.shape
        v = v.view(b, f, self.schema.n_tasks, -1).transpose(1, 2)  # (B, T, F, D)
        logit = self.linear(batch) + fm_interaction(v)  # (B, T)
        return task_output(logit, self.schema)
