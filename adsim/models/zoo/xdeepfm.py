"""xDeepFM — Lian et al. (2018), "xDeepFM: Combining Explicit and Implicit Feature Interactions
for Recommender Systems", KDD.

The Compressed Interaction Network (CIN) builds vector-wise interactions of bounded degree. With
``X^0 ∈ R^{m×D}`` the ``m`` field embeddings, layer k has ``H_k`` feature maps

.. math::

    X^k_{h,*} = \\sum_{i=1}^{H_{k-1}} \\sum_{j=1}^{m} W^{k,h}_{ij} \\, (X^{k-1}_{i,*} \\circ X^0_{j,*}),
    \\qquad p^k_h = \\sum_{d} X^k_{h,d}

(an outer product along the field axes compressed by a 1×1 convolution, then sum-pooled over D).
With ``split_half`` (the paper's released code) half of each layer's maps go to the output and half
feed the next layer. The output is

.. math::

    \\hat y = \\sigma\\big(w^\\top_{lin} a + w^\\top_{cin} [p^1; …; p^K] + \\mathrm{MLP}(\\mathrm{vec}\\, X^0)\\big).

Shapes: ``(B, m, D)`` → ``(B, H_k·m, D)`` → ``(B, H_k, D)``. Output logits ``(B,)`` or ``(B, T)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adsim.models.layers import MLP, EmbeddingConfig
from adsim.models.schema import ModelSchema
from adsim.models.zoo import register
from adsim.models.zoo._common import FieldInputs, LinearPart, task_output

__all__ = ["CIN", "XDeepFM", "XDeepFMConfig"]


@dataclass
class XDeepFMConfig(EmbeddingConfig):
    """xDeepFM hyper-parameters."""

    cin_layers: tuple[int, ...] = (128, 128)
    """Feature maps H_k of each CIN layer."""
    split_half: bool = True
    """Send half of each (non-final) CIN layer's maps to the output, half to the next layer."""
    hidden: tuple[int, ...] = (256, 128)
    """Widths of the DNN part's hidden layers (empty: no DNN, the "CIN + linear" variant)."""
    dropout: float = 0.0
    """Dropout after each DNN hidden layer."""

    def __post_init__(self) -> None:
        super().__post_init__()
        from adsim.errors import ConfigError

        if not self.cin_layers or min(self.cin_layers) < 1:
            raise ConfigError(f"cin_layers must be a non-empty list of sizes >= 1, got {list(self.cin_layers)}")
        if self.split_half and any(h % 2 for h in self.cin_layers[:-1]):
            raise ConfigError(f"with split_half, cin_layers before the last must be even, got {list(self.cin_layers)}")


class CIN(nn.Module):
    """Compressed Interaction Network: ``(B, m, D) -> (B, Σ_k out_k)`` sum-pooled feature maps."""

    def __init__(self, n_fields: int, layers: tuple[int, ...], split_half: bool = True) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        self.split_half = split_half
        prev, out = n_fields, 0
        for k, h in enumerate(layers):
            self.convs.append(nn.Conv1d(prev * n_fields, h, kernel_size=1))
            last = k == len(layers) - 1
            nxt = h // 2 if split_half and not last else h
            out += h - nxt if split_half and not last else h
            prev = nxt
        self.out_dim = out

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        b, m, d = x0.shape
        xk, pooled = x0, []
        for k, conv in enumerate(self.convs):
            z = torch.einsum("bhd,bmd->bhmd", xk, x0).reshape(b, -1, d)  # (B, H_{k-1}·m, D)
            z = torch.relu(conv(z))  # (B, H_k, D)
            if self.split_half and k < len(self.convs) - 1:
                xk, direct = z.split(z.shape[1] // 2, dim=1)
            else:
                xk, direct = z, z
            pooled.append(direct.sum(dim=2))  # (B, out_k)
        return torch.cat(pooled, dim=1)  # (B, Σ out_k)


@register("xdeepfm", XDeepFMConfig)
class XDeepFM(nn.Module):
    """xDeepFM over a :class:`ModelSchema` (see the module docstring)."""

    def __init__(self, schema: ModelSchema, cfg: XDeepFMConfig) -> None:
        super().__init__()
        self.schema = schema
        self.cfg = cfg
        t = schema.n_tasks
        self.embed = FieldInputs(schema, EmbeddingConfig.of(cfg))
        self.linear = LinearPart(schema, cfg)
        self.cin = CIN(self.embed.n_fields, tuple(cfg.cin_layers), cfg.split_half)
        self.cin_out = nn.Linear(self.cin.out_dim, t)
        m = self.embed.n_fields * cfg.embed_dim
        self.dnn = MLP(m, cfg.hidden, out_dim=t, dropout=cfg.dropout) if cfg.hidden else None

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x0 = self.embed(batch)  # (B, m, D)
        logit = self.linear(batch) + self.cin_out(self.cin(x0))  # (B, T)
        if self.dnn is not None:
            logit = logit + self.dnn(x0.flatten(1))
        return task_output(logit, self.schema)
