"""Multi-task Transformer: every field is a token, a Transformer encoder mixes them, one tower
per task (pCTR, pCVR, …).

Tokens (:meth:`FeatureInput.tokens`): each dense feature i becomes :math:`x_i w_i + b_i`
(a learned direction scaled by the value, as in AutoInt — Song et al. 2019), each sparse field
its embedding, each behaviour-sequence item its embedding plus a learned position embedding
(padding items are masked out of attention), and a learned ``[CLS]`` token is prepended. A
pre-LayerNorm Transformer encoder (Vaswani et al. 2017, "Attention Is All You Need", NeurIPS;
pre-LN as in Xiong et al. 2020) mixes them:

.. math::

    H^{l+1} = H' + \\mathrm{FFN}(\\mathrm{LN}(H')), \\qquad
    H' = H^l + \\mathrm{MHA}(\\mathrm{LN}(H^l), \\text{key padding mask})

and each task tower reads the concatenation of the final ``[CLS]`` state and the masked mean of
all token states. With ``task_tokens: true`` there is one ``[CLS]`` token per task instead, so
each task attends to the fields in its own way (the towers then read their own token).

Logits ``(B, T)`` follow :mod:`adsim.models.multitask` (with tasks (click, conversion), column 1
is pCTCVR over all impressions; ``esmm: true`` builds it as pCTR × pCVR like ESMM and exposes
``cvr_logits``). :meth:`MultiTaskTransformer.attention` returns every layer's attention weights
``(B, heads, N, N)`` with :meth:`token_names` for inspection.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adsim.models.multitask import log_sigmoid_product_logit
from adsim.models.schema import ModelSchema
from adsim.models.zoo import register
from adsim.models.zoo._mtl_base import FeatureInput, Towers, check_common

__all__ = ["MultiTaskTransformer", "MultiTaskTransformerConfig"]


@dataclass
class MultiTaskTransformerConfig:
    """Multi-task Transformer hyper-parameters."""

    embed_dim: int = 32
    """Token width D (divisible by n_heads)."""
    n_heads: int = 4
    """Attention heads."""
    n_layers: int = 2
    """Encoder layers."""
    ffn_mult: int = 2
    """Feed-forward width = ffn_mult × D."""
    tower: tuple[int, ...] = (64,)
    """Hidden widths of each task tower."""
    dropout: float = 0.0
    """Dropout in attention, feed-forward and towers; field dropout on embeddings."""
    task_tokens: bool = False
    """One [CLS] token per task instead of one shared [CLS]."""
    esmm: bool = False
    """Two tasks (click, conversion): output pCTCVR = pCTR × pCVR (ESMM decomposition)."""


class _EncoderLayer(nn.Module):
    """Pre-LN Transformer encoder layer that can return its attention weights."""

    def __init__(self, dim: int, n_heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, n_heads, dropout=dropout, batch_first=True)
        self.ln2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, pad: torch.Tensor, need_weights: bool = False):
        h = self.ln1(x)
        a, w = self.attn(h, h, h, key_padding_mask=pad, need_weights=need_weights,
                         average_attn_weights=False)
        x = x + a
        return x + self.ffn(self.ln2(x)), w


@register("multitask_transformer", MultiTaskTransformerConfig)
class MultiTaskTransformer(nn.Module):
    """Field-token Transformer with task towers (see the module docstring)."""

    def __init__(self, schema: ModelSchema, cfg: MultiTaskTransformerConfig) -> None:
        super().__init__()
        check_common(schema, cfg.embed_dim, cfg.dropout, "mean")
        if cfg.n_heads < 1 or cfg.embed_dim % cfg.n_heads:
            raise ValueError(f"embed_dim ({cfg.embed_dim}) must be divisible by n_heads ({cfg.n_heads})")
        if cfg.n_layers < 1 or cfg.ffn_mult < 1:
            raise ValueError("n_layers and ffn_mult must be >= 1")
        if cfg.esmm and schema.n_tasks != 2:
            raise ValueError(f"esmm: true needs exactly two labels (click, conversion), got {schema.n_tasks}")
        self.schema, self.cfg = schema, cfg
        d, t = cfg.embed_dim, schema.n_tasks
        self.input = FeatureInput(schema, d, "mean", None, cfg.dropout)
        self.n_cls = t if cfg.task_tokens else 1
        self.cls = nn.Parameter(torch.randn(self.n_cls, d) * 0.02)
        self.layers = nn.ModuleList(
            _EncoderLayer(d, cfg.n_heads, cfg.ffn_mult * d, cfg.dropout) for _ in range(cfg.n_layers)
        )
        self.ln = nn.LayerNorm(d)
        self.towers = Towers(2 * d, t, cfg.tower, cfg.dropout)

    def token_names(self) -> list[str]:
        """Names of the N tokens the attention weights index."""
        cls = ["[CLS]"] if self.n_cls == 1 else [f"[CLS:{t}]" for t in self.schema.tasks]
        return cls + self.input.token_names()

    def _encode(self, batch: dict[str, torch.Tensor], need_weights: bool = False):
        tok, pad = self.input.tokens(batch)  # (B, N0, D), (B, N0)
        b = tok.shape[0]
        x = torch.cat([self.cls.expand(b, -1, -1).to(tok.dtype), tok], dim=1)  # (B, N, D)
        pad = torch.cat([torch.zeros(b, self.n_cls, dtype=torch.bool, device=pad.device), pad], dim=1)
        weights = []
        for layer in self.layers:
            x, w = layer(x, pad, need_weights)
            weights.append(w)
        return self.ln(x), pad, weights

    def _task_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h, pad, _ = self._encode(batch)
        keep = (~pad[:, self.n_cls:]).unsqueeze(-1).to(h.dtype)  # (B, N0, 1)
        mean = (h[:, self.n_cls:] * keep).sum(1) / keep.sum(1).clamp_min(1.0)  # (B, D)
        per_task = [
            torch.cat([h[:, t if self.n_cls > 1 else 0], mean], dim=1)
            for t in range(self.schema.n_tasks)
        ]
        return self.towers(per_task)  # (B, T)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        z = self._task_logits(batch)
        if self.cfg.esmm:
            return torch.stack([z[:, 0].float(), log_sigmoid_product_logit(z[:, 0], z[:, 1])], dim=1)
        return z.squeeze(-1) if self.schema.n_tasks == 1 else z

    def cvr_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B,)`` post-click CVR logits (only with ``esmm: true``)."""
        if not self.cfg.esmm:
            raise ValueError("cvr_logits needs esmm: true; otherwise use adsim.models.multitask.post_click_cvr")
        return self._task_logits(batch)[:, 1]

    @torch.no_grad()
    def attention(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Attention weights of every layer, each ``(B, heads, N, N)`` (rows: queries, columns:
        keys, in :meth:`token_names` order; padded keys get weight 0)."""
        was = self.training
        self.eval()
        _, _, weights = self._encode(batch, need_weights=True)
        self.train(was)
        return weights
