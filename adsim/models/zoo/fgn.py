"""Feature Gating Network — Huang, Tao & Zhang (2020), "GateNet: Gating-Enhanced Deep Network for
Click-Through Rate Prediction", arXiv:2007.03519 (the "feature embedding gate", §3.1).

Each field's embedding ``e_i ∈ R^D`` is scaled by a learned gate computed from itself:

.. math::

    g_i = \\sigma(W_i e_i + b_i),\\qquad \\tilde e_i = g_i \\circ e_i

**bit-wise**: ``W_i ∈ R^{D×D}`` (one gate per embedding coordinate); **vector-wise**:
``W_i ∈ R^{1×D}`` (one scalar gate per field). ``field_private`` gives each field its own ``W_i``
(the paper's better variant); otherwise one ``W`` is shared by all fields.

:class:`FGN` is a wrapper usable with **any** model that looks up its field embeddings through a
sub-module named ``embed`` returning ``(B, F, D)`` (every zoo model, DeepFM included): it replaces
that module by a :class:`GatedEmbedding` around it, so the model's own forward sees gated
embeddings. Build one with ``build_model("fgn", schema, base="dcnv2", base_config={...})`` or wrap
an existing model with :func:`with_feature_gating`. Output logits as the base model's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from adsim.models.schema import ModelSchema
from adsim.models.zoo import build_model, register

__all__ = ["FGN", "FGNConfig", "GatedEmbedding", "with_feature_gating"]

GateType = Literal["bit", "vector"]


@dataclass
class FGNConfig:
    """Feature-gating wrapper options."""

    base: str = "deepfm"
    """Zoo name of the wrapped model."""
    base_config: dict[str, Any] = field(default_factory=dict)
    """Options of the wrapped model (its own config's fields)."""
    gate: GateType = "bit"
    """``bit``: a gate per embedding coordinate; ``vector``: one scalar gate per field."""
    field_private: bool = True
    """One gate matrix per field (True) or one shared by all fields (False)."""

    def __post_init__(self) -> None:
        from adsim.errors import ConfigError

        if self.gate not in ("bit", "vector"):
            raise ConfigError(f"gate must be 'bit' or 'vector', got {self.gate!r}")
        if self.base == "fgn":
            raise ConfigError("fgn cannot wrap itself; set base to another zoo model")


class GatedEmbedding(nn.Module):
    """``inner(...) -> (B, F, D)`` followed by the feature embedding gate ``σ(W_i e_i + b_i) ∘ e_i``."""

    def __init__(self, inner: nn.Module, gate: GateType = "bit", field_private: bool = True) -> None:
        super().__init__()
        self.inner = inner
        self.n_fields: int = inner.n_fields  # type: ignore[assignment]
        self.dim: int = inner.dim  # type: ignore[assignment]
        n_w = self.n_fields if field_private else 1
        out = self.dim if gate == "bit" else 1
        w = torch.empty(n_w, self.dim, out)
        for k in range(n_w):
            nn.init.xavier_uniform_(w[k])
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(torch.zeros(n_w, out))
        #: gates of the last forward, ``(B, F, D)`` or ``(B, F, 1)`` (detached)
        self.gates: torch.Tensor | None = None

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        e = self.inner(*args, **kwargs)  # (B, F, D)
        w = self.weight.expand(self.n_fields, -1, -1)  # (F, D, D|1)
        g = torch.sigmoid(torch.einsum("bfd,fdo->bfo", e, w) + self.bias.expand(self.n_fields, -1))
        self.gates = g.detach()
        return g * e  # (B, F, D)


def with_feature_gating(model: nn.Module, gate: GateType = "bit", field_private: bool = True) -> nn.Module:
    """Replace ``model.embed`` by a gated version (in place) and return the model."""
    inner = getattr(model, "embed", None)
    if not isinstance(inner, nn.Module) or not hasattr(inner, "n_fields") or not hasattr(inner, "dim"):
        from adsim.errors import ConfigError

        raise ConfigError(
            f"{type(model).__name__} has no field-embedding module 'embed' (with n_fields and dim) to gate"
        )
    model.embed = GatedEmbedding(inner, gate, field_private)
    return model


@register("fgn", FGNConfig)
class FGN(nn.Module):
    """A zoo model with a feature embedding gate (see the module docstring)."""

    def __init__(self, schema: ModelSchema, cfg: FGNConfig) -> None:
        super().__init__()
        self.schema = schema
        self.cfg = cfg
        self.model = with_feature_gating(
            build_model(cfg.base, schema, **dict(cfg.base_config)), cfg.gate, cfg.field_private
        )

    @property
    def gates(self) -> torch.Tensor | None:
        """Gates of the last forward (see :class:`GatedEmbedding`)."""
        return self.model.embed.gates  # type: ignore[union-attr]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch)
