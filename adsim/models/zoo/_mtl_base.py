"""Shared pieces of the multi-task models: the feature input and the task towers.

:class:`FeatureInput` turns a batch (``dense``, ``sparse``, optional ``seq``; see
:mod:`adsim.models.schema`) into either

* a flat vector ``(B, F·D + n_dense + S·D)`` — sparse embeddings, the scaled dense features as
  they are, one pooled vector per behaviour sequence (:mod:`adsim.models.sequence`) — the input
  of shared-bottom, ESMM, MMoE and PLE; or
* field tokens ``(B, N, D)`` with a padding mask — one token per dense feature
  (:math:`x_i w_i + b_i`), per sparse field (its embedding) and per behaviour-sequence item
  (item embedding + position embedding, padding masked) — the input of the multi-task
  Transformer.

Every multi-task model returns logits ``(B, T)`` in ``schema.tasks`` order; see
:mod:`adsim.models.multitask` for what each output means and how it is trained.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from adsim.models.layers import MLP, FieldEmbedding
from adsim.models.schema import ModelSchema
from adsim.models.sequence import SEQUENCE_ENCODERS, make_sequence_encoder

__all__ = ["FeatureInput", "Towers", "check_common"]


def check_common(schema: ModelSchema, embed_dim: int, dropout: float, seq_encoder: str,
                 seq_target: str | None = None) -> None:
    """Validate options shared by every multi-task model (ValueError naming the option)."""
    if embed_dim < 1:
        raise ValueError(f"embed_dim must be >= 1, got {embed_dim}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if seq_encoder not in SEQUENCE_ENCODERS:
        raise ValueError(
            f"seq_encoder must be one of {', '.join(SEQUENCE_ENCODERS)}, got {seq_encoder!r}"
        )
    if seq_target is not None and seq_target not in [f.name for f in schema.sparse]:
        raise ValueError(f"seq_target {seq_target!r} is not a sparse field of the data")
    if schema.n_dense + schema.n_sparse + len(schema.sequences) == 0:
        raise ValueError("the schema has no features")


class FeatureInput(nn.Module):
    """Embeds a batch; see the module docstring.

    Args:
        schema: the data's fields.
        dim: embedding size D.
        seq_encoder: how a sequence becomes one vector in :meth:`flat` (``mean|gru|lstm|bst``).
        seq_target: sparse field whose embedding is BST's target token (the candidate item).
        dropout: field dropout on the sparse embeddings during training.
        n_heads: heads of a BST sequence encoder.
    """

    def __init__(
        self, schema: ModelSchema, dim: int, seq_encoder: str = "mean",
        seq_target: str | None = None, dropout: float = 0.0, n_heads: int = 2,
    ) -> None:
        super().__init__()
        self.schema = schema
        self.dim = dim
        self.sparse = FieldEmbedding(schema, dim, dropout=dropout) if schema.n_sparse else None
        nd = schema.n_dense
        self.dense_w = nn.Parameter(torch.randn(nd, dim) * 0.1) if nd else None
        self.dense_b = nn.Parameter(torch.zeros(nd, dim)) if nd else None
        self.seq = nn.ModuleList(
            make_sequence_encoder(seq_encoder, s.vocab_size, dim, s.max_len, n_heads=n_heads)
            for s in schema.sequences
        )
        self.seq_pos = nn.ParameterList(
            nn.Parameter(torch.randn(s.max_len, dim) * 1e-2) for s in schema.sequences
        )
        names = [f.name for f in schema.sparse]
        self.target_idx = names.index(seq_target) if seq_target is not None else None
        self.flat_dim = schema.n_sparse * dim + nd + len(schema.sequences) * dim

    # ---------------------------------------------------------------------------- flat input
    def flat(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, flat_dim)``: sparse embeddings, dense features, pooled sequences."""
        parts = []
        emb = None
        if self.sparse is not None:
            emb = self.sparse(batch["sparse"])  # (B, F, D)
            parts.append(emb.flatten(1))
        if self.schema.n_dense:
            parts.append(batch["dense"])
        if self.seq:
            target = emb[:, self.target_idx] if emb is not None and self.target_idx is not None else None
            seq = batch["seq"]  # (B, S, L)
            for j, enc in enumerate(self.seq):
                parts.append(enc(seq[:, j], target))  # (B, D)
        return torch.cat(parts, dim=1)

    # -------------------------------------------------------------------------------- tokens
    def tokens(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tokens (B, N, D), padding mask (B, N) — True = padding)``."""
        toks, masks = [], []
        ref = batch["sparse"] if "sparse" in batch else batch["dense"]
        b = ref.shape[0]
        if self.schema.n_dense:
            toks.append(batch["dense"].unsqueeze(-1) * self.dense_w + self.dense_b)  # (B, nd, D)
        if self.sparse is not None:
            toks.append(self.sparse(batch["sparse"]))  # (B, F, D)
        n_fixed = sum(t.shape[1] for t in toks)
        masks.append(torch.zeros(b, n_fixed, dtype=torch.bool, device=ref.device))
        if self.seq:
            seq = batch["seq"]
            for j, enc in enumerate(self.seq):
                ids = seq[:, j]  # (B, L)
                toks.append(enc.embed(ids) + self.seq_pos[j][: ids.shape[1]])  # (B, L, D)
                masks.append(ids == 0)
        return torch.cat(toks, dim=1), torch.cat(masks, dim=1)

    def token_names(self) -> list[str]:
        """Name of each token of :meth:`tokens`, in order."""
        s = self.schema
        names = [f"dense:{c}" for c in s.dense] + [f"sparse:{f.name}" for f in s.sparse]
        for q in s.sequences:
            names += [f"seq:{q.name}:{i}" for i in range(q.max_len)]
        return names


class Towers(nn.Module):
    """One MLP tower per task: ``(B, T, H)`` or a list of ``(B, H)`` → logits ``(B, T)``."""

    def __init__(self, in_dim: int, n_tasks: int, hidden: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        self.towers = nn.ModuleList(MLP(in_dim, hidden, 1, dropout) for _ in range(n_tasks))

    def forward(self, per_task: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([t(x) for t, x in zip(self.towers, per_task)], dim=1)  # (B, T)
