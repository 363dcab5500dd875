"""ESMM — Ma et al. (2018), "Entire Space Multi-Task Model: An Effective Approach for Estimating
Post-Click Conversion Rate", SIGIR.

Two towers over a shared embedding layer: a CTR tower and a CVR tower. The CVR tower is never
trained on clicked rows alone; instead the model is trained over **all impressions** on

.. math::

    \\text{pCTR} = σ(z_{ctr}), \\qquad
    \\text{pCTCVR} = P(\\text{click} ∧ \\text{conv} \\mid x) = \\text{pCTR} \\cdot \\text{pCVR},
    \\quad \\text{pCVR} = σ(z_{cvr}) = P(\\text{conv} \\mid \\text{click}, x)

with the losses ℓ(click, pCTR) + ℓ(click·conv, pCTCVR). This removes the sample selection bias
of a CVR model fitted on clicked rows and shares the plentiful CTR signal with the sparse CVR
task through the embeddings.

Output contract (:mod:`adsim.models.multitask`): ``schema.tasks`` must be exactly
``(click_label, conversion_label)``; ``forward`` returns logits ``(B, 2)`` =
``(z_ctr, logit(pCTCVR))`` so the trainer's per-column binary cross-entropy *is* the ESMM loss
and the per-task calibrators calibrate pCTR and pCTCVR. :meth:`ESMM.cvr_logits` gives the
post-click CVR tower's logits and :meth:`ESMM.task_probabilities` all three probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adsim.models.layers import MLP
from adsim.models.multitask import log_sigmoid_product_logit
from adsim.models.schema import ModelSchema
from adsim.models.zoo import register
from adsim.models.zoo._mtl_base import FeatureInput, check_common

__all__ = ["ESMM", "ESMMConfig"]


@dataclass
class ESMMConfig:
    """ESMM hyper-parameters."""

    embed_dim: int = 16
    """Embedding size D (the embedding layer is shared by both towers)."""
    tower: tuple[int, ...] = (128, 64)
    """Hidden widths of the CTR and of the CVR tower."""
    dropout: float = 0.0
    """Dropout in the towers and field dropout on embeddings."""
    seq_encoder: str = "mean"
    """Behaviour-sequence encoder: mean, gru, lstm or bst."""
    seq_target: str | None = None
    """Sparse field used as BST's target item."""


@register("esmm", ESMMConfig)
class ESMM(nn.Module):
    """Entire-space multi-task model (see the module docstring)."""

    def __init__(self, schema: ModelSchema, cfg: ESMMConfig) -> None:
        super().__init__()
        if schema.n_tasks != 2:
            raise ValueError(
                f"ESMM needs exactly two labels (click, conversion) in that order; the data has"
                f" {schema.n_tasks}: {', '.join(schema.tasks)}"
            )
        check_common(schema, cfg.embed_dim, cfg.dropout, cfg.seq_encoder, cfg.seq_target)
        self.schema, self.cfg = schema, cfg
        self.input = FeatureInput(schema, cfg.embed_dim, cfg.seq_encoder, cfg.seq_target, cfg.dropout)
        d = self.input.flat_dim
        self.ctr_tower = MLP(d, cfg.tower, 1, cfg.dropout)
        self.cvr_tower = MLP(d, cfg.tower, 1, cfg.dropout)

    def _towers(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.input.flat(batch)  # (B, d)
        return self.ctr_tower(h).squeeze(-1), self.cvr_tower(h).squeeze(-1)  # (B,), (B,)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        z_ctr, z_cvr = self._towers(batch)
        z_ctcvr = log_sigmoid_product_logit(z_ctr, z_cvr)
        return torch.stack([z_ctr.float(), z_ctcvr], dim=1)  # (B, 2)

    def cvr_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B,)`` logits of the post-click conversion rate P(conversion | click, x)."""
        return self._towers(batch)[1]

    def task_probabilities(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"ctr", "cvr", "ctcvr"}`` probabilities ``(B,)``; ctcvr = ctr × cvr."""
        z_ctr, z_cvr = self._towers(batch)
        ctr, cvr = torch.sigmoid(z_ctr), torch.sigmoid(z_cvr)
        return {"ctr": ctr, "cvr": cvr, "ctcvr": ctr * cvr}
