"""Building blocks shared by the zoo models: field inputs, the first-order (linear) part, outputs.

Every zoo model names its main embedding ``self.embed`` (a :class:`FieldInputs` or an embedding
module with ``n_fields`` and ``dim``): the feature-gating wrapper (:mod:`adsim.models.zoo.fgn`)
gates that module's output, whatever the model.
"""

from __future__ import annotations

import torch
from torch import nn

from adsim.models.layers import DenseFields, EmbeddingConfig, FeatureEmbedding
from adsim.models.schema import ModelSchema

__all__ = ["FieldInputs", "LinearPart", "task_output"]


def task_output(logit: torch.Tensor, schema: ModelSchema) -> torch.Tensor:
    """``(B, T)`` logits → ``(B,)`` for one task, unchanged for several."""
    return logit.squeeze(-1) if schema.n_tasks == 1 else logit


class FieldInputs(nn.Module):
    """All inputs as field vectors ``(B, F, D)``: sparse, pooled sequences and (optionally) dense.

    ``F = n_sparse + n_seq (+ n_dense if dense_as_fields)``; dense feature j becomes ``x_j · v_j``
    (:class:`~adsim.models.layers.DenseFields`). ``n_fields`` and ``dim`` describe the output.
    """

    def __init__(self, schema: ModelSchema, cfg: EmbeddingConfig, dense_as_fields: bool = True) -> None:
        super().__init__()
        self.sparse = FeatureEmbedding(schema, cfg)
        self.dense = DenseFields(schema.n_dense, cfg.embed_dim, cfg.init_std) if dense_as_fields and schema.n_dense else None
        self.dim = cfg.embed_dim
        self.n_fields = self.sparse.n_fields + (schema.n_dense if self.dense is not None else 0)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        if self.sparse.n_fields:
            parts.append(self.sparse(batch.get("sparse"), batch.get("seq")))  # (B, F_s, D)
        if self.dense is not None:
            parts.append(self.dense(batch["dense"]))  # (B, n_dense, D)
        if not parts:  # nothing to embed (e.g. only dense features kept apart by the model)
            return torch.zeros(_batch_size(batch), 0, self.dim, device=self.sparse.inv_order.device)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)  # (B, F, D)


class LinearPart(nn.Module):
    """First-order term ``w_0 + Σ_f w_{f, x_f} + w_dense·x_dense`` per task: ``(B, T)``.

    The sparse weights are a ``T``-dimensional embedding that honours hashing and shared tables
    (never an adaptive size, no field dropout).
    """

    def __init__(self, schema: ModelSchema, cfg: EmbeddingConfig) -> None:
        super().__init__()
        t = schema.n_tasks
        self.weights = FeatureEmbedding(
            schema, EmbeddingConfig.of(cfg, embed_dim=t, adaptive_dim=False, embed_dropout=0.0)
        )
        self.dense = nn.Linear(schema.n_dense, t, bias=False) if schema.n_dense else None
        self.bias = nn.Parameter(torch.zeros(t))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logit = self.bias.expand(_batch_size(batch), -1)  # (B, T)
        if self.weights.n_fields:
            logit = logit + self.weights(batch.get("sparse"), batch.get("seq")).sum(dim=1)  # (B, T)
        if self.dense is not None:
            logit = logit + self.dense(batch["dense"])
        return logit


def _batch_size(batch: dict[str, torch.Tensor]) -> int:
    for key in ("sparse", "dense", "seq"):
        if key in batch:
            return batch[key].shape[0]
    raise KeyError("batch has none of 'sparse', 'dense', 'seq'")
