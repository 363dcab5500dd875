"""Training-run configuration: the YAML behind ``adsim prepare-data`` / ``adsim train``.

One file describes a whole run::

    name: ctr_synthetic
    data:            # DatasetConfig: where rows come from, which columns mean what, the split
      source: {type: synthetic, n_rows: 1000000}
      processed_dir: data/processed/ctr_synthetic
    model:           # ModelSection: a zoo model by name + its options
      name: deepfm
      options: {embed_dim: 16}
    train:           # TrainConfig: optimiser, schedule, precision, checkpointing
      epochs: 3
    calibration:     # CalibrationSection
      method: isotonic

Every section is a pydantic model (:class:`adsim.config.StrictModel`), so an unknown key or a bad
value is one :class:`~adsim.errors.ConfigError` naming the path inside the file, e.g.
``run.yaml:9: train.lr: must be > 0.0, got -1``. Relative paths are resolved against the current
working directory. Pure Python: importing this module does not import torch.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from adsim.config import SparseFieldConfig, StrictModel, load_config

__all__ = [
    "CriteoSource",
    "AvazuSource",
    "TableSource",
    "SyntheticSource",
    "SyntheticCtcvrSource",
    "SplitConfig",
    "DatasetConfig",
    "ModelSection",
    "LOSS_NAMES",
    "LossSection",
    "TrainConfig",
    "CalibrationSection",
    "RunConfig",
    "load_run_config",
]


# ------------------------------------------------------------------------------------ sources
class _FileSource(StrictModel):
    path: str | None = Field(
        default=None, min_length=1,
        description="One file holding all rows (split by `split`).",
    )
    train_path: str | None = Field(default=None, min_length=1, description="Predefined train file.")
    val_path: str | None = Field(default=None, min_length=1, description="Predefined validation file.")
    test_path: str | None = Field(default=None, min_length=1, description="Predefined test file.")
    nrows: int | None = Field(default=None, ge=1, description="Read at most this many rows per file.")

    @model_validator(mode="after")
    def _one_layout(self) -> _FileSource:
        split_files = [self.train_path, self.val_path, self.test_path]
        if self.path is None and not all(split_files):
            raise ValueError(
                "give either 'path' (one file, split by `split`) or all of 'train_path',"
                " 'val_path' and 'test_path'"
            )
        if self.path is not None and any(split_files):
            raise ValueError("give 'path' or 'train_path'/'val_path'/'test_path', not both")
        return self


class CriteoSource(_FileSource):
    """Criteo display-ads format: ``label, I1..I13, C1..C26`` (TSV without header, or CSV with one)."""

    type: Literal["criteo"]


class AvazuSource(_FileSource):
    """Avazu CSV with header (``id, click, hour, C1, banner_pos, site_id, …``)."""

    type: Literal["avazu"]


class TableSource(_FileSource):
    """Generic CSV/TSV/parquet file(s) whose columns are declared in the dataset config."""

    type: Literal["table"]
    format: Literal["auto", "csv", "tsv", "parquet"] = Field(
        default="auto", description="File format; 'auto' picks it from the file extension."
    )
    sep: str | None = Field(default=None, description="Field separator for csv (default ',').")


class SyntheticSource(StrictModel):
    """Rows drawn from a known parametric click model (Bayes-optimal scores are known).

    Each row is one impression: a user (dense ``x*`` + sparse user fields) shown a uniformly
    drawn ad (``ad_id``); ``click ~ Bernoulli(p_click)`` with ``p_click`` the true probability.
    """

    type: Literal["synthetic"]
    n_rows: int = Field(default=200_000, ge=100, le=100_000_000, description="Impressions to draw.")
    n_users: int = Field(default=100_000, ge=10, le=10_000_000, description="User pool size.")
    n_ads: int = Field(default=50, ge=2, le=100_000, description="Ads in the catalogue.")
    n_dense: int = Field(default=8, ge=0, le=256, description="Dense user features.")
    sparse_fields: list[SparseFieldConfig] = Field(
        default_factory=lambda: [
            SparseFieldConfig(name="region", vocab_size=20, zipf=0.8),
            SparseFieldConfig(name="device", vocab_size=4, zipf=0.5),
            SparseFieldConfig(name="segment", vocab_size=50, zipf=1.0),
        ],
        description="Categorical user fields.",
    )
    base_ctr: float = Field(default=0.05, gt=0.0, lt=1.0, description="Typical click-through rate.")
    effect_scale: float = Field(default=1.0, ge=0.0, le=10.0, description="User×ad dense effect s.")
    ad_bias_sd: float = Field(default=0.5, ge=0.0, le=5.0, description="Per-ad logit bias sd.")
    sparse_effect_sd: float = Field(default=0.3, ge=0.0, le=5.0, description="Field×ad effect sd.")
    seed: int = Field(default=0, ge=0, description="Seed of the world and of the draws.")


class SyntheticCtcvrSource(StrictModel):
    """Impressions with clicks and post-click conversions from a known CTR/CVR model
    (:mod:`adsim.models.synthetic_ctcvr`; labels ``click``, ``conversion``; a multi-task world
    model can be trained on it from a fresh clone)."""

    type: Literal["synthetic_ctcvr"]
    n_rows: int = Field(default=200_000, ge=100, le=100_000_000, description="Impressions to draw.")
    n_users: int = Field(default=20_000, ge=10, le=10_000_000, description="Users of the generator.")
    n_items: int = Field(default=500, ge=2, le=1_000_000, description="Items of the generator.")
    base_ctr: float = Field(default=0.08, gt=0.0, lt=1.0, description="Typical click-through rate.")
    base_cvr: float = Field(default=0.15, gt=0.0, lt=1.0, description="Typical conversion rate per click.")
    kappa: float = Field(default=1.0, ge=0.0, le=10.0,
                         description="How much click-bait items (high click bias) convert less.")
    seed: int = Field(default=0, ge=0, description="Seed of the generator.")


Source = Annotated[
    Union[CriteoSource, AvazuSource, TableSource, SyntheticSource, SyntheticCtcvrSource],
    Field(discriminator="type"),
]


# -------------------------------------------------------------------------------------- split
class SplitConfig(StrictModel):
    """How one file is split into train/validation/test (ignored for predefined files)."""

    method: Literal["random", "time"] = Field(
        default="random", description="'random' (seeded shuffle) or 'time' (ordered by time_column)."
    )
    val_fraction: float = Field(default=0.1, gt=0.0, lt=1.0, description="Share of rows for validation.")
    test_fraction: float = Field(default=0.1, gt=0.0, lt=1.0, description="Share of rows for test.")
    time_column: str | None = Field(default=None, description="Column to order by for method='time'.")
    seed: int = Field(default=0, ge=0, description="Seed of the random split.")

    @model_validator(mode="after")
    def _check(self) -> SplitConfig:
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                f"val_fraction + test_fraction must be < 1 to leave training rows, got"
                f" {self.val_fraction + self.test_fraction:g}"
            )
        if self.method == "time" and not self.time_column:
            raise ValueError("method 'time' needs 'time_column' (the column to order rows by)")
        return self


# -------------------------------------------------------------------------------------- data
class SequenceColumn(StrictModel):
    """A behaviour-sequence column: ids separated by ``sep`` in one string cell."""

    name: str = Field(min_length=1, description="Column name.")
    sep: str = Field(default="^", min_length=1, description="Separator between ids.")
    max_len: int = Field(default=20, ge=1, le=10_000, description="Keep the last max_len ids.")


class DatasetConfig(StrictModel):
    """Where the rows come from, which columns are labels/features, how they are encoded."""

    source: Source
    labels: list[str] | None = Field(
        default=None, min_length=1,
        description="Label column(s), 0/1; several for multi-task models (default per source).",
    )
    dense: list[str] | None = Field(default=None, description="Dense (numeric) feature columns.")
    sparse: list[str] | None = Field(default=None, description="Categorical feature columns.")
    sequences: list[SequenceColumn] = Field(default_factory=list, description="Sequence columns.")
    group_column: str | None = Field(
        default=None, description="Group (user/session) column for GAUC and NDCG@K."
    )
    truth_column: str | None = Field(
        default=None, description="True click probability column (synthetic data) for Bayes-optimal metrics."
    )
    min_count: int = Field(
        default=1, ge=1, description="Categories seen fewer times in training go to the OOV bucket."
    )
    log1p: list[str] | Literal["all"] = Field(
        default_factory=list,
        description="Dense columns transformed by sign(x)·log(1+|x|) before scaling ('all' = every one).",
    )
    split: SplitConfig = Field(default_factory=SplitConfig)
    processed_dir: str = Field(
        default="data/processed", min_length=1,
        description="Folder for {train,val,test}_data.parquet and preprocessors.json.",
    )

    @field_validator("dense", "sparse")
    @classmethod
    def _unique(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            dup = sorted({c for c in v if v.count(c) > 1})
            if dup:
                raise ValueError(f"column {dup[0]!r} is listed twice")
        return v


# ------------------------------------------------------------------------------------- model
class ModelSection(StrictModel):
    """A zoo model by name (``adsim.models.zoo.available_models()``) and its options."""

    name: str = Field(default="deepfm", min_length=1, description="Registered model name.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Options of the model's config dataclass."
    )

    @field_validator("name")
    @classmethod
    def _registered(cls, v: str) -> str:
        from adsim.models.zoo import MODULES, available_models

        if v not in MODULES:
            raise ValueError(f"unknown model {v!r}; available: {', '.join(available_models())}")
        return v


# -------------------------------------------------------------------------------------- loss
#: loss name -> {option: (check, description of the valid range)}; the names are those of
#: ``adsim.models.losses.LOSSES`` (a test keeps them equal; this module must not import torch)
_LOSS_OPTIONS: dict[str, dict[str, tuple[Any, str]]] = {
    "bce": {},
    "focal": {
        "gamma": (lambda v: v >= 0, ">= 0"),
        "alpha": (lambda v: v is None or 0 < v < 1, "in (0, 1) or null"),
    },
    "class_balanced": {
        "beta": (lambda v: 0 <= v < 1, "in [0, 1)"),
        "gamma": (lambda v: v >= 0, ">= 0"),
        "n_neg": (lambda v: _positive_counts(v), "> 0 (a count, or one count per task)"),
        "n_pos": (lambda v: _positive_counts(v), "> 0 (a count, or one count per task)"),
    },
    "hard_negative": {
        "neg_ratio": (lambda v: v > 0, "> 0"),
        "min_negatives": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    },
}
LOSS_NAMES = tuple(_LOSS_OPTIONS)


def _positive_counts(v: Any) -> bool:
    vals = v if isinstance(v, list) else [v]
    return bool(vals) and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in vals)


class LossSection(StrictModel):
    """The training loss (:mod:`adsim.models.losses`): a name and the loss class's keyword options.

    ``bce`` (default), ``focal`` (``gamma`` = 2, ``alpha``), ``class_balanced`` (``beta`` = 0.9999,
    ``gamma`` = 0; class counts default to the training split's), ``hard_negative``
    (``neg_ratio`` = 3, ``min_negatives`` = 16). Applied per task, then combined by
    ``train.task_weighting``.
    """

    name: Literal["bce", "focal", "class_balanced", "hard_negative"] = Field(
        default="bce", description="Loss name (adsim.models.losses.build_loss)."
    )
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword options of the loss.")

    @model_validator(mode="after")
    def _check_options(self) -> LossSection:
        allowed = _LOSS_OPTIONS[self.name]
        for key, value in self.options.items():
            if key not in allowed:
                have = ", ".join(sorted(allowed)) or "none"
                raise ValueError(f"loss {self.name!r} has no option {key!r}; its options: {have}")
            ok, rng = allowed[key]
            numeric = value is None or isinstance(value, (int, float, list)) and not isinstance(value, bool)
            if not numeric or not ok(value):
                raise ValueError(f"{self.name} {key} must be {rng}, got {value!r}")
        return self


# ---------------------------------------------------------------------------------- training
class TrainConfig(StrictModel):
    """Trainer settings (see :class:`adsim.models.train.Trainer`)."""

    epochs: int = Field(default=5, ge=1, le=10_000, description="Maximum number of epochs.")
    batch_size: int = Field(default=4096, ge=1, le=10_000_000, description="Rows per micro-batch.")
    eval_batch_size: int = Field(default=65536, ge=1, description="Rows per batch when predicting.")
    lr: float = Field(default=1e-3, gt=0.0, le=10.0, description="Peak learning rate of AdamW.")
    weight_decay: float = Field(default=1e-5, ge=0.0, le=1.0, description="AdamW decoupled weight decay.")
    label_smoothing: float = Field(
        default=0.0, ge=0.0, lt=0.5, description="Targets y·(1-ε) + ε/2 in the training loss."
    )
    grad_clip: float | None = Field(default=1.0, gt=0.0, description="Clip gradient norm (None = off).")
    scheduler: Literal["cosine_restarts", "none"] = Field(
        default="cosine_restarts", description="CosineAnnealingWarmRestarts per epoch, or constant lr."
    )
    t0_epochs: int = Field(default=10, ge=1, description="First cosine period T_0 in epochs.")
    t_mult: int = Field(default=1, ge=1, description="Period multiplier T_mult after each restart.")
    eta_min: float = Field(default=0.0, ge=0.0, description="Minimum learning rate of the cosine.")
    amp: Literal["off", "bf16", "fp16", "auto"] = Field(
        default="off",
        description="Mixed precision: bf16 (CPU or CUDA), fp16 (CUDA, with a grad scaler), 'auto'"
        " = bf16 on CUDA when supported, otherwise off.",
    )
    accumulation_steps: int = Field(default=1, ge=1, le=1024, description="Micro-batches per step.")
    patience: int = Field(default=2, ge=1, description="Epochs without val-loss improvement before stopping.")
    min_delta: float = Field(default=0.0, ge=0.0, description="Improvement below this does not count.")
    swa_epochs: int = Field(default=0, ge=0, description="Average weights over this many last epochs (SWA).")
    swa_lr: float | None = Field(default=None, gt=0.0, description="SWA learning rate (default lr/2).")
    compile: bool = Field(default=False, description="torch.compile the model.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="Where to train.")
    num_threads: int | None = Field(default=None, ge=1, description="torch CPU threads (None = torch default).")
    seed: int = Field(default=0, ge=0, description="Seed of initialisation, shuffling and dropout.")
    checkpoint_every: int = Field(
        default=200, ge=1, description="Write the resume state every this many optimiser steps."
    )
    loss: LossSection = Field(default_factory=LossSection, description="Training loss per task.")
    task_weighting: Literal["fixed", "uncertainty"] = Field(
        default="fixed",
        description="How task losses combine: 'fixed' weights (task_weights) or learned homoscedastic"
        " 'uncertainty' weights (Kendall et al. 2018; adsim.models.multitask.MultiTaskLoss).",
    )
    task_weights: list[float] | None = Field(
        default=None, description="Fixed loss weight per task (multi-task models; default all 1)."
    )
    negative_sampling: float | None = Field(
        default=None, gt=0.0, le=1.0,
        description="Keep every click and this share w of non-clicks of the training split (single-task);"
        " the model is trained to output the re-corrected logit (logit q - log w), so predictions stay"
        " calibrated (He et al. 2014).",
    )
    progress: bool = Field(default=True, description="Show tqdm progress bars.")
    tensorboard: bool = Field(default=True, description="Also log to TensorBoard when installed.")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.swa_epochs >= self.epochs:
            raise ValueError(
                f"swa_epochs ({self.swa_epochs}) must be < epochs ({self.epochs}): SWA averages the last epochs"
            )
        if self.task_weighting == "uncertainty" and self.task_weights is not None:
            raise ValueError(
                "task_weights are the fixed weights; with task_weighting 'uncertainty' the weights are"
                " learned: remove task_weights or use task_weighting 'fixed'"
            )
        if self.task_weights is not None and (
            any(w < 0 for w in self.task_weights) or sum(self.task_weights) <= 0
        ):
            raise ValueError(f"task_weights must be >= 0 with a positive sum, got {self.task_weights}")
        return self


class CalibrationSection(StrictModel):
    """Post-hoc calibration fitted on the validation split."""

    method: Literal["isotonic", "platt", "temperature", "none"] = Field(
        default="isotonic", description="Calibrator fitted on validation predictions."
    )
    n_bins: int = Field(default=15, ge=2, le=1000, description="Bins of ECE/MCE and the reliability diagram.")


class RunConfig(StrictModel):
    """A whole training run (``adsim train CONFIG``)."""

    name: str = Field(default="ctr", min_length=1, description="Run name (default run folder runs/<name>).")
    data: DatasetConfig
    model: ModelSection = Field(default_factory=ModelSection)
    train: TrainConfig = Field(default_factory=TrainConfig)
    calibration: CalibrationSection = Field(default_factory=CalibrationSection)
    ndcg_k: int = Field(default=10, ge=1, description="K of NDCG@K in the test metrics.")


def load_run_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read and validate a run YAML file (every problem is a ConfigError naming the key)."""
    return load_config(path, RunConfig)
