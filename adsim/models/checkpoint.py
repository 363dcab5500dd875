"""The run folder: what ``adsim train`` writes and what serving / the world model load.

A run folder (default ``runs/<name>``) holds::

    checkpoint.pt        final model (see below), torch.save of plain data, loads with weights_only=True
    preprocessors.json   the fitted Preprocessor (vocabularies, scalers) — JSON, never a pickle
    calibrator.json      {"format": "adsim.calibrator/1", "tasks": {task: calibrator dict}}
    metrics.csv          one row per epoch: epoch, step, lr, train_loss, val_loss, val_auc, seconds, rows_per_s
    test_metrics.json    test metrics per task, raw and calibrated (+ Bayes-optimal ones for synthetic data)
    reliability.png      reliability diagram on the test split, raw vs calibrated
    learning_curves.png  train/val loss and val AUC per epoch
    config.yaml          the run config as it was run (reproduces the run)
    resume.pt            full training state for ``adsim train --resume`` (see adsim.models.train)
    best.pt              state dict of the best epoch so far (written during training)
    manifest.json        written last, when the run is finished: every file's size and SHA-256
                         (``adsim._io.write_manifest``, kind ``"train"``)

A folder without ``manifest.json`` is an unfinished run (training was killed, or is still going):
:func:`verify_run_folder` — called by :func:`load_run`, so by ``predict``, ``serve``, ``export``,
``calibrate`` and the trained world — refuses it, and refuses a folder whose checkpoint,
preprocessor, calibrator or config no longer match the manifest (edited or copied in part).

``checkpoint.pt`` is a dict (format ``adsim.checkpoint/1``)::

    {"format": "adsim.checkpoint/1", "adsim_version": str,
     "model_name": str,                 # zoo name, e.g. "deepfm"
     "model_options": dict,             # kwargs of build_model (JSON-safe)
     "schema": dict,                    # ModelSchema.to_dict()
     "train_config": dict,              # TrainConfig as JSON
     "state_dict": {name: Tensor},      # on CPU
     "result": dict}                    # best_epoch, best_val_loss, used_swa, stopped_early

:func:`load_run` rebuilds everything on any device (``map_location``: a CUDA-trained run loads on
CPU) and :meth:`Run.predict_frame` scores raw rows exactly as training rows were encoded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adsim._io import atomic_path
from adsim.errors import DataError
from adsim.models.schema import ModelSchema

__all__ = ["CHECKPOINT_FORMAT", "CheckpointMismatchError", "save_checkpoint", "load_checkpoint", "Run", "load_run",
           "verify_run_folder", "RUN_FILES", "RUN_KIND"]

CHECKPOINT_FORMAT = "adsim.checkpoint/1"
RUN_KIND = "train"
#: the files a reader needs from a finished run folder (all listed in its manifest)
RUN_FILES = ("checkpoint.pt", "preprocessors.json", "calibrator.json", "config.yaml")


def verify_run_folder(run_dir: str | Path, files: tuple[str, ...] = RUN_FILES) -> dict[str, Any]:
    """Check that ``run_dir`` is a finished run folder whose ``files`` match its ``manifest.json``.

    Returns the manifest. Raises :class:`DataError` naming the folder, the file and the fix for a
    missing folder, an unfinished run (no manifest: killed during training or calibration), a
    manifest of another kind, or a file that is missing or changed since the run finished
    (size and SHA-256 compared).
    """
    from adsim._io import MANIFEST, verify_manifest

    d = Path(run_dir)
    if not d.is_dir():
        raise DataError(f"{d}: run folder not found; train one with `adsim train CONFIG --out {d}`")
    if not (d / MANIFEST).is_file():
        hint = (" (resume.pt is there: continue it with `adsim train CONFIG --out"
                f" {d} --resume`)" if (d / "resume.pt").is_file() else "")
        raise DataError(
            f"run folder {d} is incomplete: it has no {MANIFEST}, so its training or calibration did"
            f" not finish (killed?) or it was copied in part{hint}; retrain it with `adsim train`"
        )
    try:
        return verify_manifest(d, list(files), kind=RUN_KIND)
    except DataError as exc:
        msg = str(exc).removesuffix("; rebuild the folder")
        raise DataError(f"run folder {msg}; retrain it with `adsim train` (or `adsim calibrate`"
                        " if only calibrator.json changed)") from None


def _plain(obj: Any) -> Any:
    """JSON round trip: tuples → lists, so weights_only loading accepts everything."""
    return json.loads(json.dumps(obj))


def save_checkpoint(
    path: str | Path,
    model: Any,
    model_name: str,
    model_options: dict[str, Any],
    schema: ModelSchema,
    train_config: dict[str, Any],
    result: dict[str, Any] | None = None,
) -> None:
    """Write ``checkpoint.pt`` atomically (weights moved to CPU)."""
    import torch

    from adsim import __version__

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "adsim_version": __version__,
        "model_name": model_name,
        "model_options": _plain(model_options),
        "schema": _plain(schema.to_dict()),
        "train_config": _plain(train_config),
        "state_dict": state,
        "result": _plain(result or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


class CheckpointMismatchError(DataError):
    """A ``checkpoint.pt`` whose layout (state-dict keys/shapes, model options) does not fit the
    model code of this adsim version."""


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """``(model, payload)`` from a ``checkpoint.pt``; the model is in eval mode on ``device``.

    Raises :class:`adsim.errors.DataError` for a missing, unreadable or foreign file, and
    :class:`CheckpointMismatchError` (a DataError) when the saved weights or options do not fit
    the current model code; both name the run folder and what to do.
    """
    import torch

    from adsim import __version__
    from adsim.models.zoo import build_model

    p = Path(path)
    run = p.parent
    if not p.exists():
        raise DataError(f"run folder {run}: {p.name} not found; train a model with `adsim train CONFIG`")
    try:
        payload = torch.load(p, map_location=device, weights_only=True)
    except Exception as exc:  # corrupt, truncated or foreign file
        raise DataError(
            f"run folder {run}: {p.name} is not a readable adsim checkpoint ({type(exc).__name__}:"
            f" {' '.join(str(exc).split())[:200]}); retrain it with `adsim train`"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"run folder {run}: {p.name} is not an adsim checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    saved = payload.get("adsim_version", "unknown")
    name = payload.get("model_name")

    def mismatch(detail: str) -> CheckpointMismatchError:
        return CheckpointMismatchError(
            f"run folder {run}: {p.name} (model {name!r}, saved by adsim {saved}) does not match the"
            f" model code of adsim {__version__}: {detail}; retrain it with `adsim train`, or load"
            f" it with adsim {saved}"
        )

    try:
        schema = ModelSchema.from_dict(payload["schema"])
        opts = _options(payload["model_options"])
        if not isinstance(opts, dict):
            raise TypeError("model_options is not a mapping")
        # built on the meta device first: no memory is allocated, so schema sizes or options that
        # were edited to be huge cannot allocate anything before they are compared with the weights
        with torch.device("meta"):
            shape_model = build_model(name, schema, **opts)
        state = payload["state_dict"]
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, OverflowError) as exc:
        raise mismatch(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
    if not isinstance(state, dict):
        raise mismatch("state_dict is not a mapping")
    expected = shape_model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing weight(s) ({', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected weight(s) ({', '.join(unexpected[:3])})")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es) (saved vs expected: {'; '.join(shapes[:3])})")
    if problems:
        raise mismatch(", ".join(problems))
    model = build_model(name, schema, **opts)  # every weight's shape is now that of a saved tensor
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # anything the checks above did not catch (dtype, …)
        raise mismatch(" ".join(str(exc).split())[:300]) from None
    return model.to(device).eval(), payload


def _options(opts: dict[str, Any]) -> dict[str, Any]:
    # JSON turned tuples into lists; dataclass fields annotated as tuples get tuples back
    return {k: tuple(v) if isinstance(v, list) else v for k, v in opts.items()}


@dataclass
class Run:
    """A loaded run folder: model, schema, preprocessor and calibrators."""

    path: Path
    model: Any
    schema: ModelSchema
    preprocessor: Any
    calibrators: dict[str, Any]
    payload: dict[str, Any]

    def predict_frame(self, df: Any, calibrated: bool = True, batch_size: int = 65536,
                      missing_features: str = "default") -> np.ndarray:
        """``(N, n_tasks)`` probabilities for raw rows ``df``.

        Only the model's feature columns are used (``preprocessor.features``); labels and
        group/truth columns (e.g. ``user_id``, ``p_click``) are not needed and are ignored if
        present. An absent feature column takes its documented default for every row (dense →
        the training mean, sparse → the ``"__missing__"`` category, sequence → padding), exactly
        as a missing feature is served online; at least one feature column must be present.
        With ``missing_features="error"`` an absent feature column is a DataError naming it
        instead (for tables that should carry every feature). Rows are encoded with the saved
        preprocessor.
        """
        from adsim.models.data import CTRData
        from adsim.models.train import Trainer

        if missing_features not in ("default", "error"):
            raise ValueError(f"missing_features must be 'default' or 'error', got {missing_features!r}")
        absent = self.preprocessor.absent_features(df.columns)
        if absent and missing_features == "error":
            role, col = absent[0]
            raise DataError(f"column {col!r} (data.{role}) is not in the rows to score;"
                            f" {len(absent)} feature column(s) absent")
        enc = self.preprocessor.transform(df, "the rows to score", features_only=True)
        for c in self.schema.tasks:
            enc[c] = np.zeros(len(enc), dtype=np.float32)  # placeholder labels (not used to score)
        data = CTRData.from_frame(enc, self.schema)
        p = Trainer.predict_proba(self.model, data, batch_size)
        if not np.isfinite(p).all():  # before calibration: name the cause, not the calibrator
            r = int(np.flatnonzero(~np.isfinite(p).all(axis=1))[0])
            raise DataError(f"run folder {self.path}: the network produced a non-finite score for row {r}"
                            " (extreme inputs, or damaged weights or preprocessors); check the row's"
                            " dense values, or retrain the run")
        if calibrated:
            for j, task in enumerate(self.schema.tasks):
                if task in self.calibrators:
                    p[:, j] = self.calibrators[task].predict(p[:, j])
        if not np.isfinite(p).all():  # scored values are probabilities, or an error
            r = int(np.flatnonzero(~np.isfinite(p).all(axis=1))[0])
            raise DataError(f"run folder {self.path}: the model produced a non-finite probability for row {r};"
                            " its weights are damaged — retrain it")
        return np.clip(p, 0.0, 1.0, out=p)


def load_run(run_dir: str | Path, device: str = "cpu") -> Run:
    """Load a finished run folder written by ``adsim train`` (see the module docstring).

    The folder is first checked against its manifest (:func:`verify_run_folder`). Then every artefact is
    validated as data: the checkpoint against the model code, the preprocessor's scalers and
    vocabularies, the calibrators (one per task of the model, parameters finite and in range) and
    the schema of the checkpoint against the preprocessor's. Every problem is a
    :class:`DataError` naming the folder and the file.
    """
    from adsim.models.calibration import load_calibrators
    from adsim.models.data import Preprocessor

    d = Path(run_dir)
    verify_run_folder(d)
    model, payload = load_checkpoint(d / "checkpoint.pt", device)
    pre = Preprocessor.load(d / "preprocessors.json")
    schema = ModelSchema.from_dict(payload["schema"])
    try:
        pre_schema = pre.schema()
    except (TypeError, ValueError, KeyError) as exc:
        raise DataError(f"run folder {d}: preprocessors.json is damaged ({exc}); retrain the run") from None
    if pre_schema != schema:
        raise DataError(
            f"run folder {d}: preprocessors.json does not match checkpoint.pt (features, vocabulary"
            " sizes or tasks differ: they come from different runs or were edited); retrain the run"
        )
    cal_path = d / "calibrator.json"
    if not cal_path.is_file():
        raise DataError(f"run folder {d}: calibrator.json not found; refit it with `adsim calibrate {d}`")
    try:
        cals = load_calibrators(cal_path)
    except DataError as exc:
        msg = str(exc)
        raise DataError(msg if str(d) in msg else f"run folder {d}: {msg}") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(
            f"run folder {d}: {cal_path.name} is damaged ({type(exc).__name__}: {exc}); refit it with"
            f" `adsim calibrate {d}`"
        ) from None
    unknown = sorted(set(cals) - set(schema.tasks))
    missing = [t for t in schema.tasks if t not in cals]
    if unknown or missing:
        what = (f"a calibrator for task {unknown[0]!r}, which the model does not have (tasks:"
                f" {', '.join(schema.tasks)})" if unknown else f"no calibrator for task {missing[0]!r}")
        raise DataError(f"run folder {d}: {cal_path.name} has {what}; refit it with `adsim calibrate {d}`")
    return Run(d, model, schema, pre, cals, payload)
