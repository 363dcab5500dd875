"""Scenario section ``world``: users, ads and the ground-truth model (parametric or trained)."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from adsim.config.base import Label, StrictModel

__all__ = [
    "SparseFieldConfig",
    "ParametricTruthConfig",
    "TrainedTruthConfig",
    "TruthConfig",
    "WorldConfig",
]


# --------------------------------------------------------------------------------------- world
class SparseFieldConfig(StrictModel):
    """A categorical user feature."""

    name: Label = Field(min_length=1, description="Column name of the field.")
    vocab_size: int = Field(ge=2, le=1_000_000, description="Number of distinct values.")
    zipf: float = Field(
        default=1.0, ge=0.0, le=5.0,
        description="Popularity skew: value of rank r has probability ∝ r^-zipf (0 = uniform).",
    )


class ParametricTruthConfig(StrictModel):
    """Logistic click model: logit p(click | user u, ad k) = b_k + s·(x_u · e_k) + Σ_f t_f[c_uf, k]."""

    type: Literal["parametric"] = "parametric"
    base_ctr: float = Field(default=0.05, gt=0.0, lt=1.0, description="Typical click-through rate.")
    effect_scale: float = Field(
        default=1.0, ge=0.0, le=10.0, description="Strength s of user×ad feature effects on the logit."
    )
    ad_bias_sd: float = Field(
        default=0.5, ge=0.0, le=5.0, description="Standard deviation of the per-ad logit bias b_k."
    )
    sparse_effect_sd: float = Field(
        default=0.3, ge=0.0, le=5.0, description="Standard deviation of the field×value×ad effects t_f."
    )


# ================================================================ trained world (issue 8) ====
class TrainedTruthConfig(StrictModel):
    """A trained CTR/CVR run folder (``adsim train``) as the world's ground truth: synthetic users
    are drawn from the fitted feature distribution, the network's calibrated probabilities define
    clicks and conversions (see :mod:`adsim.worldmodel`). ``world.n_dense``/``sparse_fields`` are
    not used: the run's features are. Give ``run`` (a run folder) or ``train`` (its training
    config: ``adsim run`` trains it once into the build cache)."""

    type: Literal["trained"]
    run: str | None = Field(
        default=None, min_length=1,
        description="Run folder written by `adsim train` (checkpoint.pt, preprocessors.json,"
        " calibrator.json); relative to the working directory. Leave out to use `train`.",
    )
    train: str | None = Field(
        default=None, min_length=1,
        description="Training config (an `adsim train` YAML) of the world model, used when `run`"
        " is not given: `adsim run` trains it once (keyed by the config's content and train.seed)"
        " into the build cache ($ADSIM_CACHE_DIR, default ~/.cache/adsim); `--no-train` stops"
        " instead. Relative to the working directory.",
    )
    cvr_run: str | None = Field(
        default=None, min_length=1,
        description="Optional run folder of a separate CVR model (its first output is"
        " P(conversion | click)) for a click-only `run`; trained on the same feature columns.",
    )
    ad_fields: list[str] = Field(
        min_length=1,
        description="Feature columns that describe the ad; the others describe the user. The ads"
        " are the world.n_ads most frequent combinations of their values in the training rows.",
    )
    users: Literal["rows", "copula"] = Field(
        default="rows",
        description="How users are sampled: whole training rows (all correlations kept) or a"
        " Gaussian copula of the per-column marginals.",
    )
    click_task: str | None = Field(default=None, description="Output defining clicks (default: the first task).")
    conversion_task: str | None = Field(
        default=None,
        description="Output giving P(click and conversion) (default: the second task, if any).",
    )
    calibrated: bool = Field(default=True, description="Apply the run's calibrators.")
    data: str | None = Field(
        default=None,
        description="Prepared-data folder to fit the user distribution on (default: the run's"
        " world_features.json, else its config's data.processed_dir).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(default="cpu", description="Inference device.")
    batch_size: int = Field(default=65_536, ge=1, le=10_000_000, description="(user, ad) pairs per forward pass.")
    cache: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Precompute every user's probabilities at build time (auto: when n_users ×"
        " n_ads <= 20M).",
    )

    @model_validator(mode="after")
    def _run_or_train(self) -> TrainedTruthConfig:
        if self.run is None and self.train is None:
            raise ValueError(
                "give world.truth.run (a run folder from `adsim train`) or world.truth.train (its"
                " training config, trained once by `adsim run`)"
            )
        if self.run is not None and self.train is not None:
            raise ValueError(
                "world.truth.run and world.truth.train both given; keep run (use that folder) or"
                " train (build it in the cache), not both"
            )
        if self.cvr_run is not None and self.conversion_task is not None:
            raise ValueError(
                "world.truth.cvr_run and conversion_task both define conversions; keep one"
            )
        return self


TruthConfig = Annotated[
    Union[ParametricTruthConfig, TrainedTruthConfig], Field(discriminator="type")
]
# ============================================================ end of trained world (issue 8) ==


class WorldConfig(StrictModel):
    """The simulated world: a finite user population, a catalogue of ads and a click model."""

    n_users: int = Field(default=5000, ge=10, le=10_000_000, description="Users in the population.")
    n_ads: int = Field(default=10, ge=2, le=100_000, description="Ads (actions) to choose from.")
    n_dense: int = Field(default=5, ge=0, le=1024, description="Dense (Gaussian) user features.")
    sparse_fields: list[SparseFieldConfig] = Field(
        default_factory=lambda: [
            SparseFieldConfig(name="region", vocab_size=8),
            SparseFieldConfig(name="device", vocab_size=3, zipf=0.5),
        ],
        description="Categorical user features.",
    )
    reward: Literal["click", "value"] = Field(
        default="click", description="Reward of an impression: the click (0/1) or value_k × click."
    )
    value_sigma: float = Field(
        default=0.5, ge=0.0, le=5.0,
        description="Ad values per click are log-normal(0, value_sigma) (used when reward = value).",
    )
    truth: TruthConfig = Field(default_factory=ParametricTruthConfig)

    @field_validator("sparse_fields")
    @classmethod
    def _unique_field_names(cls, v: list[SparseFieldConfig]) -> list[SparseFieldConfig]:
        names = [f.name for f in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate field name {dup[0]!r}; each field needs its own name")
        return v
