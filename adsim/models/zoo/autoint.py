"""AutoInt — Song et al. (2019), "AutoInt: Automatic Feature Interaction Learning via
Self-Attentive Neural Networks", CIKM.

Every field (sparse value, pooled sequence, or dense ``x_j v_j``) is a vector ``e_m ∈ R^D``. An
interacting layer is multi-head self-attention over fields: for head h,

.. math::

    \\alpha^{(h)}_{m,k} = \\mathrm{softmax}_k\\big(\\langle W_Q^{(h)} e_m, W_K^{(h)} e_k\\rangle / s\\big),\\quad
    \\tilde e^{(h)}_m = \\sum_k \\alpha^{(h)}_{m,k} W_V^{(h)} e_k,\\quad
    e^{res}_m = \\mathrm{ReLU}\\big([\\tilde e^{(1)}_m; …; \\tilde e^{(H)}_m] + W_{res} e_m\\big)

(``s = sqrt(d')`` with ``scale``, 1 in the paper). ``L`` layers are stacked; the output is
``σ(w^T vec(e^{res}) + b)``, plus an MLP on the embeddings for AutoInt+ (``hidden`` non-empty).

Attention weights of the last forward are kept (detached) in :attr:`AutoInt.attention`, a list
with one ``(B, H, F, F)`` tensor per layer: row m is how much field m attends to each field k.
Output logits ``(B,)`` or ``(B, T)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adsim.models.layers import MLP, EmbeddingConfig
from adsim.models.schema import ModelSchema
from adsim.models.zoo import register
from adsim.models.zoo._common import FieldInputs, task_output

__all__ = ["AutoInt", "AutoIntConfig", "InteractingLayer"]


@dataclass
class AutoIntConfig(EmbeddingConfig):
    """AutoInt hyper-parameters."""

    n_layers: int = 3
    """Number of interacting (self-attention) layers L."""
    n_heads: int = 2
    """Attention heads H per layer."""
    attention_dim: int = 16
    """Size d' of each head's query/key/value; a layer outputs H·d' per field."""
    scale: bool = True
    """Divide attention scores by sqrt(d') (the paper uses plain inner products)."""
    hidden: tuple[int, ...] = ()
    """MLP hidden widths for AutoInt+ (empty: plain AutoInt)."""
    dropout: float = 0.0
    """Dropout after each MLP hidden layer."""

    def __post_init__(self) -> None:
        super().__post_init__()
        from adsim.errors import ConfigError

        for name in ("n_layers", "n_heads", "attention_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


class InteractingLayer(nn.Module):
    """Multi-head self-attention over fields with a residual: ``(B, F, D_in) -> (B, F, H·d')``."""

    def __init__(self, in_dim: int, n_heads: int, head_dim: int, scale: bool = True) -> None:
        super().__init__()
        self.h, self.dh = n_heads, head_dim
        self.qkv = nn.Linear(in_dim, 3 * n_heads * head_dim, bias=False)
        self.res = nn.Linear(in_dim, n_heads * head_dim, bias=False)
        self.scale = head_dim**-0.5 if scale else 1.0

    def forward(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, f, _ = e.shape
        q, k, v = self.qkv(e).view(b, f, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)  # 3 × (B, H, F, d')
        att = torch.softmax(q @ k.transpose(-1, -2) * self.scale, dim=-1)  # (B, H, F, F)
        out = (att @ v).transpose(1, 2).reshape(b, f, self.h * self.dh)  # (B, F, H·d')
        return torch.relu(out + self.res(e)), att


@register("autoint", AutoIntConfig)
class AutoInt(nn.Module):
    """AutoInt(+) over a :class:`ModelSchema` (see the module docstring)."""

    def __init__(self, schema: ModelSchema, cfg: AutoIntConfig) -> None:
        super().__init__()
        self.schema = schema
        self.cfg = cfg
        t = schema.n_tasks
        self.embed = FieldInputs(schema, EmbeddingConfig.of(cfg))
        f, width = self.embed.n_fields, cfg.n_heads * cfg.attention_dim
        dims = [cfg.embed_dim] + [width] * cfg.n_layers
        self.layers = nn.ModuleList(
            InteractingLayer(dims[i], cfg.n_heads, cfg.attention_dim, cfg.scale) for i in range(cfg.n_layers)
        )
        self.out = nn.Linear(f * width, t)
        self.dnn = MLP(f * cfg.embed_dim, cfg.hidden, out_dim=t, dropout=cfg.dropout) if cfg.hidden else None
        #: attention weights of the last forward, one detached ``(B, H, F, F)`` tensor per layer
        self.attention: list[torch.Tensor] = []

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        e0 = self.embed(batch)  # (B, F, D)
        e, atts = e0, []
        for layer in self.layers:
            e, att = layer(e)  # (B, F, H·d'), (B, H, F, F)
            atts.append(att.detach())
        self.attention = atts
        logit = self.out(e.flatten(1))  # (B, T)
        if self.dnn is not None:
            logit = logit + self.dnn(e0.flatten(1))
        return task_output(logit, self.schema)
