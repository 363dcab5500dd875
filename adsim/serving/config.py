"""Serving configuration: which run folders to serve, traffic weights, the cold-start default.

A YAML file (``adsim serve --config serve.yaml``) or the command line builds a
:class:`ServeConfig`::

    models:
      - {path: runs/deepfm_large, version: large, weight: 0.9}
      - {path: runs/deepfm_small, version: small, weight: 0.1}
      - {path: runs/ad_prior,     version: cold,  weight: 0}    # only used as the fallback
    default: cold
    feature_groups:
      user: [x0, x1, x2, region, device, segment]
      ad: [ad_id]
    backend: onnx

Pure Python (pydantic); no torch import.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, model_validator

from adsim.config import StrictModel

__all__ = ["ModelEntry", "ServeConfig"]


class ModelEntry(StrictModel):
    """One served model version."""

    path: str = Field(min_length=1, description="Run folder written by `adsim train`.")
    version: str | None = Field(
        default=None, min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Version name returned in responses and used for pinning (default: the folder name).",
    )
    weight: float = Field(default=1.0, ge=0.0, description="Share of A/B traffic (relative; 0 = pin/fallback only).")


class ServeConfig(StrictModel):
    """Everything ``create_app`` needs."""

    models: list[ModelEntry] = Field(min_length=1, description="Model versions to load.")
    default: str | None = Field(
        default=None,
        description="Cold-start default version, served when a requested version or a feature group is"
        " missing (default: the first model).",
    )
    feature_groups: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Named groups of features (e.g. user, ad). A model that uses a group the request gives"
        " no feature of is replaced by the default model.",
    )
    backend: Literal["torch", "onnx"] = Field(default="torch", description="Inference engine.")
    threads: int = Field(default=1, ge=1, le=256, description="Intra-op threads of torch / ONNX Runtime.")
    salt: str = Field(default="adsim-ab", description="Salt of the A/B hash (change it to reshuffle users).")
    max_candidates: int = Field(default=10_000, ge=1, le=1_000_000,
                                description="Most candidates in one request (more → 422).")
    max_batch_requests: int = Field(default=1_000, ge=1, le=100_000,
                                    description="Most requests in one batch call (more → 422).")
    max_batch_candidates: int = Field(default=20_000, ge=1, le=10_000_000,
                                      description="Most candidates over all requests of one batch call (more → 422).")
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=1 << 31,
                                description="Largest request body in bytes (more → 413), read before parsing.")
    user_features: str | None = Field(
        default=None, description="Parquet table of user features looked up by user id (a feature store)."
    )
    user_id_column: str = Field(default="user_id", description="Id column of the user_features table.")

    @model_validator(mode="after")
    def _check(self) -> ServeConfig:
        total = sum(m.weight for m in self.models)
        if total <= 0:
            raise ValueError("at least one model needs a weight > 0 to receive A/B traffic")
        return self


def load_serve_config(path: str | os.PathLike[str]) -> ServeConfig:
    """Read and validate a serving config file (``adsim serve --config FILE``)."""
    from adsim.config import load_config

    return load_config(path, ServeConfig)
