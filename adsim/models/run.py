"""A whole training run: config → prepared data → trained, calibrated model → run folder.

:func:`train_run` is what ``adsim train CONFIG`` does (the folder layout is documented in
:mod:`adsim.models.checkpoint`); :func:`calibrate_run` is ``adsim calibrate RUN_DIR``.
Any registered zoo model trains by name (``model.name`` + ``model.options``); multi-task models
get one label column per task and one calibrator per task.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from adsim._io import MANIFEST, write_json, write_manifest, write_text
from adsim.errors import ConfigError, DataError
from adsim.models.config import RunConfig

__all__ = ["train_run", "calibrate_run", "evaluate_predictions", "learning_curves",
           "plot_learning_curves"]


def _build(cfg: RunConfig, schema: Any) -> Any:
    import torch

    from adsim.models.zoo import build_model

    torch.manual_seed(cfg.train.seed)
    try:
        return build_model(cfg.model.name, schema, **cfg.model.options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model: {exc}") from None


def evaluate_predictions(
    y: np.ndarray, p: np.ndarray, tasks: tuple[str, ...], group: np.ndarray | None = None,
    k: int = 10, n_bins: int = 15,
) -> dict[str, dict[str, float]]:
    """Metrics per task (``classification_metrics``), NaN replaced by None for JSON."""
    from adsim.models.metrics import classification_metrics

    out = {}
    for j, t in enumerate(tasks):
        m = classification_metrics(y[:, j], p[:, j], group, k, n_bins)
        out[t] = {key: (None if isinstance(v, float) and np.isnan(v) else v) for key, v in m.items()}
    return out


def plot_learning_curves(history: list[dict[str, float]], axes: Any = None) -> Any:
    """Train/val loss and validation AUC per epoch; ``axes``: a pair to draw into. Returns the
    Figure (no pyplot)."""
    from adsim._figures import figure_of, new_figure

    if axes is None:
        _, axes = new_figure((9, 3.5), 1, 2)
    a1, a2 = axes
    ep = [h["epoch"] for h in history]
    a1.plot(ep, [h["train_loss"] for h in history], marker="o", label="train (smoothed targets)")
    a1.plot(ep, [h["val_loss"] for h in history], marker="o", label="validation")
    a1.set_xlabel("epoch")
    a1.set_ylabel("log-loss")
    a1.legend()
    a1.grid(alpha=0.3)
    a2.plot(ep, [h["val_auc"] for h in history], marker="o", color="C2")
    a2.set_xlabel("epoch")
    a2.set_ylabel("validation AUC")
    a2.grid(alpha=0.3)
    return figure_of(a1)


def learning_curves(path: Path, history: list[dict[str, float]]) -> None:
    """:func:`plot_learning_curves` written to ``path`` as PNG and SVG."""
    from adsim._figures import save_figure

    save_figure(plot_learning_curves(history), path)


def _calibrate(cfg: RunConfig, out: Path, model: Any, val: Any, test: Any, schema: Any) -> dict[str, Any]:
    """Fit calibrators on val, evaluate raw/calibrated on test, write JSON + reliability PNG."""
    from adsim.models.calibration import make_calibrator, reliability_diagram, save_calibrators
    from adsim.models.metrics import run_business_metrics
    from adsim.models.train import Trainer

    bs = cfg.train.eval_batch_size
    p_val = Trainer.predict_proba(model, val, bs)
    p_test = Trainer.predict_proba(model, test, bs)
    cals = {t: make_calibrator(cfg.calibration.method).fit(p_val[:, j], val.labels[:, j])
            for j, t in enumerate(schema.tasks)}
    save_calibrators(out / "calibrator.json", cals)
    p_cal = np.stack([cals[t].predict(p_test[:, j]) for j, t in enumerate(schema.tasks)], axis=1)
    nb, k = cfg.calibration.n_bins, cfg.ndcg_k
    metrics: dict[str, Any] = {
        "raw": evaluate_predictions(test.labels, p_test, schema.tasks, test.group, k, nb),
        "calibrated": evaluate_predictions(test.labels, p_cal, schema.tasks, test.group, k, nb),
        "calibration_method": cfg.calibration.method,
        "n_test": len(test),
        # CTR and eCPM at unit value per click (no price/value column is configurable yet)
        "business": run_business_metrics(test.labels, p_cal, schema.tasks),
    }
    if test.truth is not None:
        truth = np.clip(test.truth, 1e-7, 1 - 1e-7)[:, None]
        metrics["bayes_optimal"] = evaluate_predictions(
            test.labels[:, :1], truth, schema.tasks[:1], test.group, k, nb)
    curves = {"raw": p_test[:, 0], f"calibrated ({cfg.calibration.method})": p_cal[:, 0]}
    if test.truth is not None:
        curves["truth"] = test.truth
    reliability_diagram(out / "reliability.png", test.labels[:, 0], curves, nb,
                        title=f"{cfg.name}: test reliability ({schema.tasks[0]})")
    return metrics


def train_run(
    cfg: RunConfig, out_dir: str | Path | None = None, *, resume: bool = False,
    prepare: bool = False, progress: bool | None = None,
) -> Path:
    """Prepare data if needed, train, calibrate and write the run folder; returns its path.

    Args:
        cfg: the run config.
        out_dir: run folder (default ``runs/<name>``).
        resume: continue from ``out_dir/resume.pt`` when it exists.
        prepare: re-run data preparation even if prepared data is up to date.
        progress: override ``train.progress``.
    """
    from adsim.models.checkpoint import save_checkpoint
    from adsim.models.data import is_prepared, load_split, prepare_data
    from adsim.models.train import Trainer

    out = _check_run_out(Path(out_dir) if out_dir is not None else Path("runs") / cfg.name)
    if progress is not None:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"progress": progress})})
    if prepare or not is_prepared(cfg.data):
        prepare_data(cfg.data)
    pdir = Path(cfg.data.processed_dir)
    train, schema = load_split(pdir, "train")
    val, _ = load_split(pdir, "val")
    test, _ = load_split(pdir, "test")
    out.mkdir(parents=True, exist_ok=True)
    # From here until the manifest is written at the very end, the folder is an unfinished run:
    # every reader refuses it (no manifest.json), `--resume` continues it from resume.pt.
    (out / MANIFEST).unlink(missing_ok=True)
    if not resume:
        for stale in ("model.onnx", "model.onnx.json"):  # exported from an earlier model
            (out / stale).unlink(missing_ok=True)
    write_text(out / "config.yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    shutil.copyfile(pdir / "preprocessors.json", out / "preprocessors.json")

    model = _build(cfg, schema)
    trainer = Trainer(model, cfg.train, out)
    result = trainer.fit(train, val, resume=resume and (out / "resume.pt").exists())
    learning_curves(out / "learning_curves.png", result.history)
    model = trainer.model
    summary = {"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
               "used_swa": result.used_swa, "stopped_early": result.stopped_early,
               "final_val_loss": result.final_val_loss, "epochs_run": len(result.history),
               "train_rows": trainer.train_rows, "negative_sampling": cfg.train.negative_sampling,
               "loss": cfg.train.loss.name, "task_weighting": cfg.train.task_weighting,
               "task_weights": [float(w) for w in trainer.objective.task_weights()]}
    save_checkpoint(out / "checkpoint.pt", model, cfg.model.name, cfg.model.options, schema,
                    cfg.train.model_dump(mode="json"), summary)
    metrics = _calibrate(cfg, out, model, val, test, schema)
    metrics["training"] = summary
    metrics["model"] = cfg.model.name
    write_json(out / "test_metrics.json", metrics)
    write_run_manifest(out)
    return out


def _check_run_out(out: Path) -> Path:
    """The run folder must be a folder (or absent) under a writable parent — checked before any work.

    (Not :func:`adsim._io.check_output_dir`: a run folder is trained in place and may hold an
    unfinished run to ``--resume``, which a fresh-output check would rightly refuse.)
    """
    import os

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder; choose another path")
    markers = ("manifest.json", "config.yaml", "resume.pt", "checkpoint.pt")
    if out.is_dir() and any(out.iterdir()) and not any((out / m).exists() for m in markers):
        raise ConfigError(f"--out {out}: a folder of other files (not an adsim run folder); the run would write"
                          " into it — choose a new or empty folder")
    probe = out.absolute().parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: {probe} is not a writable folder; choose another path")
    return out


def write_run_manifest(out: Path) -> None:
    """Mark ``out`` as a finished run: ``manifest.json`` (sizes, SHA-256 of every file), written last."""
    from adsim.models.checkpoint import RUN_KIND

    write_manifest(out, RUN_KIND)


def calibrate_run(run_dir: str | Path, method: str | None = None) -> dict[str, Any]:
    """Refit the calibrator of a run folder (on its validation split) and rewrite its outputs."""
    from adsim.config import load_config
    from adsim.models.checkpoint import load_checkpoint, verify_run_folder
    from adsim.models.data import load_split

    d = Path(run_dir)
    if not (d / "config.yaml").exists():
        raise ConfigError(f"{d}: not a run folder (no config.yaml); train one with `adsim train CONFIG`")
    # a finished, unchanged run: checkpoint and config must match the manifest (calibrator.json is
    # what we replace, so it may be damaged)
    verify_run_folder(d, ("checkpoint.pt", "preprocessors.json", "config.yaml"))
    cfg = load_config(d / "config.yaml", RunConfig)
    if method is not None:
        cfg = cfg.model_copy(update={"calibration": cfg.calibration.model_copy(update={"method": method})})
    model, payload = load_checkpoint(d / "checkpoint.pt")
    pdir = Path(cfg.data.processed_dir)
    val, schema = load_split(pdir, "val")
    test, _ = load_split(pdir, "test")
    from adsim.models.schema import ModelSchema

    if ModelSchema.from_dict(payload["schema"]) != schema:
        raise DataError(f"{pdir}: the prepared data no longer matches run folder {d} (prepared again with"
                        " another config?); re-run `adsim prepare-data` with the run's config.yaml")
    (d / MANIFEST).unlink()  # unfinished until the new calibrator and metrics are all written
    metrics = _calibrate(cfg, d, model, val, test, schema)
    write_text(d / "config.yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    old = d / "test_metrics.json"
    if old.exists():
        import json

        prev = json.loads(old.read_text(encoding="utf-8"))
        metrics = {**prev, **metrics}
    write_json(d / "test_metrics.json", metrics)
    write_run_manifest(d)
    return metrics
