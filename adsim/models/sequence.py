"""Behaviour-sequence encoders: a padded id sequence ``(B, L)`` → one vector ``(B, D)``.

Data preparation (:mod:`adsim.models.data`) stores each behaviour sequence left-aligned and
padded with id ``0``; the mask of real items is ``ids != 0``. Every encoder here embeds the ids
(``nn.Embedding(vocab, D, padding_idx=0)``) and pools them, ignoring padding:

* ``mean`` — masked mean of the item embeddings, :math:`\\sum_l m_l e_l / \\max(1, \\sum_l m_l)`
  (the YouTube-DNN style baseline; Covington et al. 2016).
* ``gru`` / ``lstm`` — a recurrent encoder over the real items only
  (``pack_padded_sequence``); the output is the last hidden state (Cho et al. 2014 GRU;
  Hochreiter & Schmidhuber 1997 LSTM; used for sessions by Hidasi et al. 2016, GRU4Rec).
* ``bst`` — Behaviour Sequence Transformer (Chen et al. 2019, "Behavior Sequence Transformer for
  E-commerce Recommendation in Alibaba", DLP-KDD): item embeddings plus learned position
  embeddings, preceded by a *target* token (the candidate item's embedding when the model
  passes one, otherwise a learned [CLS] vector), mixed by a Transformer encoder
  (Vaswani et al. 2017) with a key-padding mask; the output is the target token's final state.
  The target token is never masked, so users with an empty history are well defined.

Empty sequences give the zero vector (mean), the initial state (gru/lstm) or the target token's
encoding without history (bst). Every encoder is a pure ``nn.Module``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "SEQUENCE_ENCODERS",
    "MeanPoolEncoder",
    "RNNEncoder",
    "BSTEncoder",
    "make_sequence_encoder",
]

#: names accepted by :func:`make_sequence_encoder` (and the ``seq_encoder`` model option)
SEQUENCE_ENCODERS = ("mean", "gru", "lstm", "bst")


class MeanPoolEncoder(nn.Module):
    """Masked mean of item embeddings: ``(B, L) -> (B, D)``."""

    def __init__(self, vocab_size: int, dim: int, max_len: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        nn.init.normal_(self.embed.weight, std=1e-2)
        with torch.no_grad():
            self.embed.weight[0].zero_()

    def forward(self, ids: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        mask = (ids != 0).unsqueeze(-1).to(self.embed.weight.dtype)  # (B, L, 1)
        e = self.embed(ids) * mask  # (B, L, D)
        return e.sum(1) / mask.sum(1).clamp_min(1.0)  # (B, D)


class RNNEncoder(nn.Module):
    """GRU or LSTM over the real (non-padding) items; returns the last hidden state ``(B, D)``."""

    def __init__(self, vocab_size: int, dim: int, max_len: int, cell: str = "gru") -> None:
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        nn.init.normal_(self.embed.weight, std=1e-2)
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(dim, dim, batch_first=True)
        self.cell = cell

    def forward(self, ids: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        from torch.nn.utils.rnn import pack_padded_sequence

        lengths = (ids != 0).sum(1)  # (B,) — sequences are left-aligned
        e = self.embed(ids)  # (B, L, D)
        packed = pack_padded_sequence(
            e, lengths.clamp_min(1).cpu(), batch_first=True, enforce_sorted=False
        )
        _, h = self.rnn(packed)
        h = h[0] if self.cell == "lstm" else h  # (1, B, D)
        out = h[-1]
        return out * (lengths > 0).unsqueeze(-1).to(out.dtype)  # empty history -> 0


class BSTEncoder(nn.Module):
    """Behaviour Sequence Transformer (Chen et al. 2019); see the module docstring.

    Args:
        vocab_size: item vocabulary (0 = padding).
        dim: embedding / model width D.
        max_len: L, the number of learned position embeddings.
        n_heads: attention heads (D must be divisible by it).
        n_layers: encoder layers.
        dropout: dropout inside the encoder.
    """

    def __init__(
        self, vocab_size: int, dim: int, max_len: int, n_heads: int = 2, n_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"embed_dim {dim} must be divisible by the number of heads {n_heads}")
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        nn.init.normal_(self.embed.weight, std=1e-2)
        self.pos = nn.Parameter(torch.zeros(max_len + 1, dim))
        nn.init.normal_(self.pos, std=1e-2)
        self.cls = nn.Parameter(torch.zeros(dim))
        layer = nn.TransformerEncoderLayer(
            dim, n_heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)

    def forward(self, ids: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        b, length = ids.shape
        e = self.embed(ids)  # (B, L, D)
        first = target if target is not None else self.cls.expand(b, -1)  # (B, D)
        x = torch.cat([first.unsqueeze(1), e], dim=1) + self.pos[: length + 1]  # (B, L+1, D)
        pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=ids.device), ids == 0], dim=1)
        return self.encoder(x, src_key_padding_mask=pad)[:, 0]  # (B, D)


def make_sequence_encoder(
    kind: str, vocab_size: int, dim: int, max_len: int, n_heads: int = 2, dropout: float = 0.0
) -> nn.Module:
    """An encoder by name (one of :data:`SEQUENCE_ENCODERS`)."""
    if kind == "mean":
        return MeanPoolEncoder(vocab_size, dim, max_len)
    if kind in ("gru", "lstm"):
        return RNNEncoder(vocab_size, dim, max_len, kind)
    if kind == "bst":
        return BSTEncoder(vocab_size, dim, max_len, n_heads=n_heads, dropout=dropout)
    raise ValueError(f"unknown sequence encoder {kind!r}; choose one of {', '.join(SEQUENCE_ENCODERS)}")
