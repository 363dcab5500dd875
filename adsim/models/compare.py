"""``adsim compare``: train several zoo models on the same prepared data and compare them in one table.

A compare file is a run config with a list of models instead of one::

    name: zoo_synthetic
    data: {source: {type: synthetic, n_rows: 300000}, processed_dir: data/processed/zoo}
    models:
      - {name: lr}
      - {name: deepfm, options: {embed_dim: 16}}
      - {name: dcnv2, label: dcnv2-mix, options: {low_rank: 16, structure: stacked}}
    train:
      epochs: 3
      batch_size: 2048
      lr: 0.003
      loss: {name: focal, options: {gamma: 2}}      # optional, default bce
      negative_sampling: 0.1                        # optional: keep 10% of non-clicks

(top-level ``loss`` / ``negative_sampling`` keys are accepted too and mean ``train.loss`` /
``train.negative_sampling``.)

Every model is trained by the CTR pipeline's :class:`~adsim.models.train.Trainer` with the same
data, seed and settings, then scored on the test split: AUC, log-loss, ECE (raw probabilities, no
post-hoc calibration, so the losses' effect on calibration is visible), parameters, training
samples/s and inference rows/s. On synthetic data the truth's own probabilities give the
**Bayes-optimal** row, the ceiling no model can beat. Outputs: ``compare.csv``, ``compare.json``
and ``compare.png`` (AUC and log-loss bars) in the output folder.

Loss, embedding L2 and negative down-sampling are the trainer's own (one code path with
``adsim train``; see :mod:`adsim.models.train`): ``train.loss`` from :mod:`adsim.models.losses`,
the models' penalties (:func:`adsim.models.layers.regularization_loss`) always added, and with
``train.negative_sampling = w`` the training split keeps every click and a fraction ``w`` of
non-clicks (He et al. 2014) while the network learns the re-corrected logit
``logit q + log w`` (:func:`adsim.models.losses.recalibrate_logit`), so its test probabilities are
calibrated; the table also reports ``ece_uncorrected``, the ECE of the uncorrected ``q``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
from pydantic import Field, model_validator

from adsim.config import StrictModel, load_config
from adsim.errors import AdsimError, ConfigError
from adsim.models.config import DatasetConfig, TrainConfig

__all__ = [
    "CompareModel",
    "CompareConfig",
    "CompareResult",
    "compare_models",
    "compare_command",
    "format_table",
]


class CompareModel(StrictModel):
    """One contender: a zoo model, its options and a label for the table."""

    name: str = Field(min_length=1, description="Registered zoo model name.")
    label: str | None = Field(default=None, min_length=1, description="Row label (default: name).")
    options: dict[str, Any] = Field(default_factory=dict, description="The model config's options.")

    @property
    def row_label(self) -> str:
        return self.label or self.name


class CompareConfig(StrictModel):
    """An ``adsim compare`` file."""

    name: str = Field(default="compare", min_length=1, description="Name (default folder runs/<name>).")
    data: DatasetConfig
    models: list[CompareModel] = Field(min_length=1, description="Models to train and compare.")
    train: TrainConfig = Field(default_factory=TrainConfig)
    n_bins: int = Field(default=15, ge=2, le=1000, description="Bins of the ECE.")

    @model_validator(mode="before")
    @classmethod
    def _fold_shorthands(cls, data: Any) -> Any:
        """Top-level ``loss`` / ``negative_sampling`` are shorthands for ``train.loss`` / ``train.…``."""
        if not isinstance(data, dict) or not ({"loss", "negative_sampling"} & set(data)):
            return data
        data = dict(data)
        train = data.get("train") or {}
        train = train.model_dump(exclude_unset=True) if isinstance(train, TrainConfig) else dict(train)
        for key in ("loss", "negative_sampling"):
            if key in data:
                if key in train:
                    raise ValueError(f"give {key} once: top-level or in 'train', not both")
                train[key] = data.pop(key)
        data["train"] = train
        return data

    @model_validator(mode="after")
    def _unique_labels(self) -> CompareConfig:
        labels = [m.row_label for m in self.models]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"model label {dup[0]!r} appears twice; give each entry a distinct 'label'")
        return self


@dataclass
class CompareResult:
    """Rows of the comparison (one dict per model, plus the Bayes-optimal row when known)."""

    rows: list[dict[str, Any]]
    out_dir: Path | None = None

    def table(self) -> str:
        return format_table(self.rows)


COLUMNS = [
    ("model", "{}"), ("auc", "{:.4f}"), ("logloss", "{:.4f}"), ("ece", "{:.4f}"), ("params", "{:,}"),
    ("train_rows_per_s", "{:,.0f}"), ("infer_rows_per_s", "{:,.0f}"), ("epochs", "{}"),
]


def format_table(rows: list[dict[str, Any]]) -> str:
    """Fixed-width text table of comparison rows (missing values shown as ``-``)."""
    head = [c for c, _ in COLUMNS]
    body = [[fmt.format(r[c]) if r.get(c) is not None else "-" for c, fmt in COLUMNS] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(b) for b in body)])


def train_and_score(
    cfg: CompareConfig, entry: CompareModel, train: Any, val: Any, test: Any, schema: Any,
    run_dir: Path | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Train one model as ``cfg`` says; its table row and its (re-corrected) test probabilities."""
    import torch

    from adsim.models.metrics import auc, ece, log_loss
    from adsim.models.train import Trainer, to_tensors
    from adsim.models.zoo import build_model

    torch.manual_seed(cfg.train.seed)
    try:
        model = build_model(entry.name, schema, **entry.options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"models[{entry.row_label}]: {exc}") from None
    trainer = Trainer(model, cfg.train, run_dir)
    t0 = time.perf_counter()
    result = trainer.fit(train, val)
    fit_s = time.perf_counter() - t0
    model = trainer.model
    tensors = to_tensors(test, trainer.device)
    bs = cfg.train.eval_batch_size
    Trainer.predict_logits(model, {k: v[:bs] for k, v in tensors.items()}, bs)  # warm-up
    t0 = time.perf_counter()
    z = Trainer.predict_logits(model, tensors, bs)[:, 0]
    infer_s = time.perf_counter() - t0
    y = test.labels[:, 0]
    extra = {}
    w = cfg.train.negative_sampling
    if w is not None:  # the network outputs logit p = logit q + log w; show the uncorrected q too
        extra["ece_uncorrected"] = ece(y, 0.5 * (1.0 + np.tanh(0.5 * (z - np.log(w)))), cfg.n_bins)
    p = 0.5 * (1.0 + np.tanh(0.5 * z))
    rates = [h["rows_per_s"] for h in result.history if np.isfinite(h["rows_per_s"])]
    row = {
        "model": entry.row_label, "name": entry.name,
        "auc": auc(y, p), "logloss": log_loss(y, p), "ece": ece(y, p, cfg.n_bins),
        "params": int(sum(t.numel() for t in model.parameters())),
        "train_rows_per_s": float(np.mean(rates)) if rates else None,
        "infer_rows_per_s": len(test) / infer_s if infer_s > 0 else None,
        "epochs": len(result.history), "best_epoch": result.best_epoch, "fit_seconds": fit_s,
        "train_rows": trainer.train_rows, **extra,
    }
    return row, p


def compare_models(
    cfg: CompareConfig, out_dir: str | Path | None = None, only: list[str] | None = None,
    progress: bool | None = None, write: bool = True,
) -> CompareResult:
    """Prepare ``cfg.data`` if needed, train every model (or those labelled in ``only``), score them."""
    from adsim.models.data import is_prepared, load_split, prepare_data
    from adsim.models.metrics import auc, ece, log_loss

    entries = cfg.models
    if only:
        known = [m.row_label for m in entries]
        missing = [x for x in only if x not in known]
        if missing:
            raise ConfigError(f"--models: no model labelled {missing[0]!r}; the config has {', '.join(known)}")
        entries = [m for m in entries if m.row_label in only]
    if progress is not None:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"progress": progress})})
    if not is_prepared(cfg.data):
        prepare_data(cfg.data)
    pdir = Path(cfg.data.processed_dir)
    train, schema = load_split(pdir, "train")
    val, _ = load_split(pdir, "val")
    test, _ = load_split(pdir, "test")
    out = Path(out_dir) if out_dir is not None else (Path("runs") / cfg.name if write else None)
    rows = []
    for entry in entries:
        run_dir = out / "models" / entry.row_label if out is not None and write else None
        row, _ = train_and_score(cfg, entry, train, val, test, schema, run_dir)
        rows.append(row)
    if test.truth is not None:
        y, t = test.labels[:, 0], np.clip(test.truth, 1e-7, 1 - 1e-7)
        rows.append({"model": "bayes-optimal", "name": "truth", "auc": auc(y, t), "logloss": log_loss(y, t),
                     "ece": ece(y, t, cfg.n_bins), "params": None, "train_rows_per_s": None,
                     "infer_rows_per_s": None, "epochs": None})
    result = CompareResult(rows, out if write else None)
    if write and out is not None:
        _write_outputs(result, out, cfg)
    return result


def _write_outputs(result: CompareResult, out: Path, cfg: CompareConfig) -> None:
    import pandas as pd

    from adsim._io import write_json, write_text

    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "compare.csv", pd.DataFrame(result.rows).to_csv(index=False))
    write_json(out / "compare.json", {"name": cfg.name, "rows": result.rows,
                                      "config": cfg.model_dump(mode="json")})

    from adsim._figures import save_figure

    save_figure(plot_compare(result.rows, cfg.name), out / "compare")


def plot_compare(rows: list[dict[str, Any]], title: str = "", axes: Any = None) -> Any:
    """Test AUC and log-loss per model (bars) against the Bayes-optimal "truth" row (dashed);
    ``axes``: a pair to draw into. Returns the Figure (no pyplot)."""
    from adsim._figures import figure_of, new_figure

    models = [r for r in rows if r["name"] != "truth"]
    bayes = next((r for r in rows if r["name"] == "truth"), None)
    labels = [r["model"] for r in models]
    if axes is None:
        _, axes = new_figure((10, 0.45 * len(labels) + 1.6), 1, 2)
    for ax, key, name in ((axes[0], "auc", "test AUC"), (axes[1], "logloss", "test log-loss")):
        vals = [r[key] for r in models]
        ax.barh(labels, vals, color="C0")
        if bayes is not None:
            ax.axvline(bayes[key], color="C3", ls="--",
                       label="Bayes-optimal (the world's true probabilities)")
            ax.legend(loc="lower right", fontsize=8)
        lo, hi = min(vals + ([bayes[key]] if bayes else [])), max(vals + ([bayes[key]] if bayes else []))
        pad = 0.15 * (hi - lo) + 1e-4
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_title(name)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    fig = figure_of(axes[0])
    if title:
        fig.suptitle(title)
    return fig


def load_compare_config(path: str | Path) -> CompareConfig:
    """Read and validate an ``adsim compare`` YAML file."""
    return load_config(path, CompareConfig)


@click.command("compare")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: runs/<name>).")
@click.option("--models", "only", default=None, help="Comma-separated labels: compare only these.")
@click.option("--epochs", type=int, default=None, help="Override train.epochs.")
@click.option("--quiet", is_flag=True, help="No progress bars or table.")
def compare_command(config: Path, out_dir: Path | None, only: str | None, epochs: int | None, quiet: bool) -> None:
    """Train the models of CONFIG on the same data; print and plot one comparison table."""
    cfg = load_compare_config(config)
    if epochs is not None:
        if epochs < 1:
            raise AdsimError(f"--epochs must be >= 1, got {epochs}")
        swa = min(cfg.train.swa_epochs, epochs - 1)
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": epochs, "swa_epochs": swa})})
    labels = [s.strip() for s in only.split(",") if s.strip()] if only else None
    result = compare_models(cfg, out_dir, labels, progress=False if quiet else None)
    if not quiet:
        click.echo(result.table())
        click.echo(f"\nwrote compare.csv, compare.json, compare.png to {result.out_dir}/")
