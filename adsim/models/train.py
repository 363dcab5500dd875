"""The trainer: fits any zoo model (single- or multi-task) on :class:`~adsim.models.data.CTRData`.

Usage::

    from adsim.models.config import TrainConfig
    from adsim.models.train import Trainer
    from adsim.models.zoo import build_model

    model = build_model("deepfm", schema, embed_dim=16)
    result = Trainer(model, TrainConfig(epochs=3), run_dir="runs/x").fit(train, val)
    probs = Trainer.predict_proba(model, test)          # (N, n_tasks)

The model stays a pure ``nn.Module`` (``forward(batch) -> logits (B,) or (B, T)``); everything
else lives here:

* **objective** — :class:`~adsim.models.multitask.MultiTaskLoss` built by :func:`build_objective`
  from the config: per task t the loss ``train.loss`` (binary cross-entropy by default, or focal,
  class-balanced, hard-negative from :mod:`adsim.models.losses`) with targets smoothed to
  ``y(1-ε) + ε/2`` (label smoothing, Szegedy et al. 2016), combined by ``train.task_weighting``:
  fixed weights ``Σ w_t L_t / Σ w_t`` or learned uncertainty weights ``Σ e^{-s_t} L_t + s_t/2``
  (Kendall et al. 2018); plus the model's own penalties
  (:func:`adsim.models.layers.regularization_loss`, e.g. the used-row embedding L2 ``l2_reg``).
  Any other objective module can be passed as ``Trainer(..., objective=...)`` (the public hook):
  its parameters join the optimiser (no weight decay) and its state is saved in ``resume.pt``;
* **negative down-sampling** — with ``train.negative_sampling = w`` the training split keeps every
  click and each non-click with probability w (He et al. 2014; seeded by ``(seed, 17)``, the
  validation split is untouched). A model fitted to the sample estimates ``logit q`` and
  ``logit p = logit q + log w`` (:func:`adsim.models.losses.recalibrate_logit`); the trainer
  applies this correction inside the training loss — the loss sees ``z - log w`` — so the
  network's own output z is the re-corrected, calibrated logit: every consumer (``predict_frame``,
  serving, ONNX export, the world model) gets calibrated probabilities without knowing w, and
  validation loss / early stopping / calibrators work on the real distribution;
* **optimiser** — AdamW (Loshchilov & Hutter 2019) with decoupled weight decay, gradient-norm
  clipping, gradient accumulation over ``accumulation_steps`` micro-batches;
* **schedule** — ``CosineAnnealingWarmRestarts`` (Loshchilov & Hutter 2017) stepped per optimiser
  step with period ``t0_epochs`` epochs; during the last ``swa_epochs`` epochs a constant
  ``swa_lr`` (``SWALR``) and stochastic weight averaging of the end-of-epoch weights (Izmailov et
  al. 2018, ``torch.optim.swa_utils``);
* **precision** — bf16 autocast (CPU or CUDA) or fp16 autocast with a ``GradScaler`` (CUDA);
  evaluation always in float32;
* **early stopping** on validation log-loss with ``patience``; the best weights are kept (and
  written to ``best.pt``); at the end the SWA average replaces them only if its validation loss is
  not worse;
* **resume** — every ``checkpoint_every`` optimiser steps and at every epoch end the full state
  (model, optimiser, schedulers, SWA average, grad scaler, epoch, batch position, early-stopping
  counters, history, torch and numpy RNG states) is written atomically to ``resume.pt``;
  ``fit(..., resume=True)`` continues from it and ends with the same weights as an uninterrupted
  run. Each epoch's shuffling is a pure function of ``(seed, epoch)``.

Batches are sliced from pre-tensorised arrays (one gather per batch, no ``DataLoader``
per-sample overhead). A per-epoch metrics log goes to ``metrics.csv`` (and TensorBoard when
``torch.utils.tensorboard`` imports).
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from adsim._io import atomic_path, write_text
from adsim.models.config import TrainConfig
from adsim.models.data import CTRData

__all__ = ["Trainer", "TrainResult", "build_objective", "downsample", "resolve_device", "to_tensors",
           "iter_batches"]


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from adsim.errors import ConfigError

        raise ConfigError("train.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(name)


def to_tensors(data: CTRData, device: torch.device) -> dict[str, torch.Tensor]:
    """The arrays of ``data`` as tensors on ``device`` (keys: dense, sparse, [seq], labels)."""
    def t(x: np.ndarray, dtype: type) -> torch.Tensor:
        return torch.from_numpy(np.require(x, dtype, ["C_CONTIGUOUS", "WRITEABLE"])).to(device)

    out = {"dense": t(data.dense, np.float32), "sparse": t(data.sparse, np.int64),
           "labels": t(data.labels, np.float32)}
    if data.seq is not None:
        out["seq"] = t(data.seq, np.int64)
    return out


def iter_batches(tensors: dict[str, torch.Tensor], batch_size: int, perm: torch.Tensor | None = None,
                 start: int = 0):
    """Yield ``(batch index, batch dict)`` slices of ``tensors`` (rows in ``perm`` order)."""
    n = tensors["labels"].shape[0]
    n_batches = math.ceil(n / batch_size)
    for b in range(start, n_batches):
        if perm is None:
            yield b, {k: v[b * batch_size:(b + 1) * batch_size] for k, v in tensors.items()}
        else:
            idx = perm[b * batch_size:(b + 1) * batch_size]
            yield b, {k: v.index_select(0, idx) for k, v in tensors.items()}


def build_objective(cfg: TrainConfig, labels: np.ndarray) -> nn.Module:
    """The trainer's default objective for ``labels`` ``(N, T)`` (class counts for class-balanced).

    A :class:`~adsim.models.multitask.MultiTaskLoss` with ``cfg.task_weighting``,
    ``cfg.task_weights``, ``cfg.label_smoothing`` and per-task ``cfg.loss``.
    """
    from adsim.errors import ConfigError
    from adsim.models.losses import build_loss
    from adsim.models.multitask import MultiTaskLoss

    n_tasks = labels.shape[1]
    tw = cfg.task_weights
    if tw is not None and len(tw) != n_tasks:
        raise ConfigError(f"train.task_weights has {len(tw)} weights but the data has {n_tasks} tasks")
    name, opts = cfg.loss.name, dict(cfg.loss.options)
    if name == "bce":
        base: Any = None  # MultiTaskLoss's vectorised BCE
    elif name == "class_balanced":
        pos, neg = labels.sum(0), (1 - labels).sum(0)  # (T,)
        counts = {k: opts.pop(k) for k in ("n_pos", "n_neg") if k in opts}
        for k in counts:
            if isinstance(counts[k], list) and len(counts[k]) != n_tasks:
                raise ConfigError(f"train.loss.options.{k} has {len(counts[k])} counts but the data has"
                                  f" {n_tasks} tasks")
        per = lambda k, t, default: (counts[k][t] if isinstance(counts[k], list) else counts[k]) \
            if k in counts else float(default[t])  # noqa: E731
        try:
            base = [build_loss(name, n_pos=per("n_pos", t, pos), n_neg=per("n_neg", t, neg), **opts)
                    for t in range(n_tasks)]
        except ConfigError as exc:
            raise ConfigError(f"train.loss: {exc}") from None
    else:
        try:
            base = build_loss(name, **opts)
        except ConfigError as exc:
            raise ConfigError(f"train.loss: {exc}") from None
    return MultiTaskLoss(n_tasks, cfg.task_weighting, tw, cfg.label_smoothing, base)


def downsample(data: CTRData, rate: float, seed: int) -> CTRData:
    """``data`` with every click and each non-click (task 0) kept with probability ``rate``.

    :func:`adsim.models.losses.downsample_negatives` with the generator ``default_rng([seed, 17])``.
    """
    from dataclasses import fields, replace

    from adsim.models.losses import downsample_negatives

    idx = downsample_negatives(data.labels[:, 0], rate, np.random.default_rng([seed, 17]))
    arrays = {f.name: getattr(data, f.name) for f in fields(data)}
    return replace(data, **{k: v[idx] for k, v in arrays.items() if isinstance(v, np.ndarray)})


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    history: list[dict[str, float]]
    best_epoch: int
    best_val_loss: float
    used_swa: bool = False
    stopped_early: bool = False
    final_val_loss: float = float("nan")
    extras: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Train ``model`` with ``cfg``; see the module docstring.

    Args:
        model: a pure ``nn.Module`` mapping a batch dict to logits ``(B,)`` or ``(B, T)``.
        cfg: :class:`~adsim.models.config.TrainConfig`.
        run_dir: where ``resume.pt``, ``best.pt`` and ``metrics.csv`` go (None: nothing written).
        objective: the training objective, a module ``(logits (B, T), labels (B, T)) -> scalar``;
            default :func:`build_objective` of ``cfg`` (built on the first :meth:`fit`). Its
            parameters are optimised with the model and its state is part of ``resume.pt``.
    """

    def __init__(self, model: nn.Module, cfg: TrainConfig, run_dir: str | Path | None = None,
                 objective: nn.Module | None = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        self.device = resolve_device(cfg.device)
        self.model = model.to(self.device)
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            (no_decay if p.ndim <= 1 or name.endswith("bias") else decay).append(p)
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr,
        )
        self.forward_model = torch.compile(self.model) if cfg.compile else self.model
        #: sub-modules with a ``regularization_loss()`` (e.g. the embedding L2), added to the loss
        self._penalties = [m for m in self.model.modules()
                           if m is not self.model and callable(getattr(m, "regularization_loss", None))]
        #: -log w under negative down-sampling (the loss sees z - log w = logit q), else 0
        self.logit_shift = -math.log(cfg.negative_sampling) if cfg.negative_sampling else 0.0
        self.objective: nn.Module | None = None
        if objective is not None:
            self.set_objective(objective)

    def set_objective(self, objective: nn.Module) -> None:
        """Use ``objective``; its parameters join the optimiser as a group without weight decay."""
        if self.objective is not None:
            raise RuntimeError("the trainer already has an objective")
        self.objective = objective.to(self.device)
        params = [p for p in self.objective.parameters() if p.requires_grad]
        if params:
            self.optimizer.add_param_group({"params": params, "weight_decay": 0.0})

    def _amp_dtype(self) -> torch.dtype | None:
        amp = self.cfg.amp
        if amp == "auto":
            ok = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
            return torch.bfloat16 if ok else None
        if amp == "fp16":
            if self.device.type != "cuda":
                from adsim.errors import ConfigError

                raise ConfigError("train.amp 'fp16' needs CUDA; use 'bf16' on CPU")
            return torch.float16
        return torch.bfloat16 if amp == "bf16" else None

    # ------------------------------------------------------------------------------ loss
    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Training loss of one micro-batch: objective (on ``z - log w`` under negative
        down-sampling) + the model's penalties from the forward that produced ``logits``."""
        logits = logits.float().reshape(labels.shape)  # (B, T)
        if self.logit_shift:
            logits = logits + self.logit_shift
        out = self.objective(logits, labels)
        for m in self._penalties:
            out = out + m.regularization_loss().to(out.device)
        return out

    def _task_weights(self, n_tasks: int, device: torch.device) -> torch.Tensor:
        tw = self.cfg.task_weights
        if tw is None:
            return torch.ones(n_tasks, device=device)
        if len(tw) != n_tasks:
            from adsim.errors import ConfigError

            raise ConfigError(f"train.task_weights has {len(tw)} weights but the data has {n_tasks} tasks")
        return torch.tensor(tw, dtype=torch.float32, device=device)

    # --------------------------------------------------------------------------- predict
    @staticmethod
    @torch.no_grad()
    def predict_logits(model: nn.Module, data: CTRData | dict[str, torch.Tensor],
                       batch_size: int = 65536, device: torch.device | None = None) -> np.ndarray:
        """``(N, T)`` float64 logits of ``model`` on ``data`` (eval mode, float32)."""
        was_training = model.training
        model.eval()
        dev = device or next(model.parameters()).device
        tensors = to_tensors(data, dev) if isinstance(data, CTRData) else data
        outs = []
        for _, batch in iter_batches(tensors, batch_size):
            labels = batch.pop("labels")
            outs.append(model(batch).float().reshape(labels.shape[0], -1).cpu())
        model.train(was_training)
        return torch.cat(outs).double().numpy()

    @staticmethod
    def predict_proba(model: nn.Module, data: CTRData, batch_size: int = 65536) -> np.ndarray:
        """``(N, T)`` probabilities."""
        z = Trainer.predict_logits(model, data, batch_size)
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    def _val_loss(self, model: nn.Module, val: dict[str, torch.Tensor]) -> tuple[float, np.ndarray]:
        z = self.predict_logits(model, val, self.cfg.eval_batch_size)
        y = val["labels"].double().cpu().numpy()
        per_task = np.mean(np.logaddexp(0.0, z) - y * z, axis=0)
        w = self._task_weights(y.shape[1], torch.device("cpu")).double().numpy()
        return float(np.sum(per_task * w) / w.sum()), z

    # ------------------------------------------------------------------------- resume state
    def _state(self, **progress: Any) -> dict[str, Any]:
        np_state = np.random.get_state()
        state = {
            "format": "adsim.resume/1",
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "swa_model": self.swa_model.state_dict() if self.swa_model is not None else None,
            "swa_scheduler": self.swa_scheduler.state_dict() if self.swa_scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy_rng": {"key": np_state[0], "state": torch.from_numpy(np_state[1].astype(np.int64)),
                          "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
            "train_config": self.cfg.model_dump(mode="json"),
            "objective": self.objective.state_dict() if self.objective is not None else {},
        }
        state.update(progress)
        return state

    def _save_resume(self, **progress: Any) -> None:
        if self.run_dir is None:
            return
        state = self._state(**progress)
        with atomic_path(self.run_dir / "resume.pt") as tmp:
            torch.save(state, tmp)

    def _load_resume(self) -> dict[str, Any] | None:
        path = self.run_dir / "resume.pt" if self.run_dir is not None else None
        if path is None or not path.exists():
            return None
        from adsim.errors import AdsimError, DataError

        try:
            st = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated, foreign or a pickle that is not plain data
            raise DataError(
                f"cannot resume {path}: not a readable adsim resume state ({type(exc).__name__}:"
                f" {' '.join(str(exc).split())[:160]}); delete it and start the run again"
            ) from None
        need = ("format", "train_config", "model", "optimizer", "epoch", "batch", "global_step", "history")
        if not isinstance(st, dict) or st.get("format") != "adsim.resume/1" or any(k not in st for k in need):
            raise DataError(f"cannot resume {path}: not an adsim resume state (format 'adsim.resume/1');"
                            " delete it and start the run again")
        try:
            return self._restore(st, path)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
            if isinstance(exc, AdsimError):
                raise
            raise DataError(
                f"cannot resume {path}: the saved state does not fit this model or config"
                f" ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); delete it and start the run again"
            ) from None

    def _restore(self, st: dict[str, Any], path: Path) -> dict[str, Any]:
        ignore = {"progress", "tensorboard", "num_threads", "device", "eval_batch_size"}
        defaults = TrainConfig().model_dump(mode="json")  # keys added later: a run saved without them used these
        saved = {k: v for k, v in st["train_config"].items() if k not in ignore}
        now = {k: v for k, v in self.cfg.model_dump(mode="json").items() if k not in ignore}
        changed = sorted(k for k in now if saved.get(k, defaults.get(k)) != now[k])
        if changed:
            from adsim.errors import ConfigError

            raise ConfigError(
                f"cannot resume {path}: train.{changed[0]} changed since the run started"
                f" ({saved.get(changed[0], defaults.get(changed[0]))!r} -> {now[changed[0]]!r});"
                " restore it or start a new run"
            )
        self.model.load_state_dict(st["model"])
        if st.get("objective"):
            self.objective.load_state_dict(st["objective"])
        self.optimizer.load_state_dict(st["optimizer"])
        if self.scheduler is not None and st["scheduler"] is not None:
            self.scheduler.load_state_dict(st["scheduler"])
        if st["swa_model"] is not None:
            self._start_swa()
            self.swa_model.load_state_dict(st["swa_model"])
            self.swa_scheduler.load_state_dict(st["swa_scheduler"])
        self.scaler.load_state_dict(st["scaler"])
        torch.set_rng_state(st["torch_rng"])
        if st["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(st["cuda_rng"])
        r = st["numpy_rng"]
        np.random.set_state((r["key"], r["state"].numpy().astype(np.uint32), r["pos"], r["has_gauss"], r["cached"]))
        return st

    # ---------------------------------------------------------------------------------- SWA
    def _start_swa(self) -> None:
        from torch.optim.swa_utils import SWALR, AveragedModel

        if self.swa_model is None:
            self.swa_model = AveragedModel(self.model)
            self.swa_scheduler = SWALR(self.optimizer, swa_lr=self.cfg.swa_lr or self.cfg.lr / 2,
                                       anneal_epochs=0)  # constant swa_lr from the first SWA step

    # ---------------------------------------------------------------------------------- fit
    def fit(self, train: CTRData, val: CTRData, resume: bool = False) -> TrainResult:
        """Train on ``train``, early-stop on ``val``; with ``resume`` continue from ``resume.pt``."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        if len(train) == 0 or len(val) == 0:
            from adsim.errors import DataError

            raise DataError(f"empty split: train has {len(train)} rows, val has {len(val)}")
        if cfg.negative_sampling is not None:
            if train.labels.shape[1] != 1:
                from adsim.errors import ConfigError

                raise ConfigError(
                    f"train.negative_sampling needs single-task data (the log w correction is exact only"
                    f" for the label that defines negatives); this data has {train.labels.shape[1]} tasks"
                )
            train = downsample(train, cfg.negative_sampling, cfg.seed)
        self.train_rows = len(train)  # rows actually trained on
        if self.objective is None:
            self.set_objective(build_objective(cfg, train.labels))
        tr, va = to_tensors(train, self.device), to_tensors(val, self.device)
        n = len(train)
        n_batches = math.ceil(n / cfg.batch_size)
        steps_per_epoch = math.ceil(n_batches / cfg.accumulation_steps)
        self.scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
                self.optimizer, T_0=cfg.t0_epochs * steps_per_epoch, T_mult=cfg.t_mult, eta_min=cfg.eta_min)
            if cfg.scheduler == "cosine_restarts" else None
        )
        self.swa_model = self.swa_scheduler = None
        swa_start = cfg.epochs - cfg.swa_epochs if cfg.swa_epochs else cfg.epochs

        torch.manual_seed(cfg.seed)
        st = self._load_resume() if resume else None
        epoch, start_batch = (st["epoch"], st["batch"]) if st else (0, 0)
        step = st["global_step"] if st else 0
        best_val = st["best_val"] if st else math.inf
        best_epoch = st["best_epoch"] if st else -1
        best_state = st["best_state"] if st else None
        bad_epochs = st["bad_epochs"] if st else 0
        history: list[dict[str, float]] = list(st["history"]) if st else []
        loss_sum, rows_seen = (st["loss_sum"], st["rows_seen"]) if st else (0.0, 0)
        stopped = bool(st["stopped"]) if st else False
        writer = self._tensorboard()

        device_type = self.device.type
        while epoch < cfg.epochs and not stopped:
            self.model.train()
            in_swa = cfg.swa_epochs > 0 and epoch >= swa_start
            if in_swa:
                self._start_swa()
            perm = torch.from_numpy(np.random.default_rng([cfg.seed, epoch]).permutation(n)).to(self.device)
            t0 = time.perf_counter()
            bar = tqdm(iter_batches(tr, cfg.batch_size, perm, start_batch), total=n_batches,
                       initial=start_batch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       disable=not cfg.progress, leave=False)
            for b, batch in bar:
                labels = batch.pop("labels")
                with torch.autocast(device_type, dtype=self.amp_dtype or torch.float32,
                                    enabled=self.amp_dtype is not None):
                    logits = self.forward_model(batch)
                loss = self.loss(logits, labels)
                self.scaler.scale(loss / cfg.accumulation_steps).backward()
                loss_sum += float(loss.detach()) * labels.shape[0]
                rows_seen += labels.shape[0]
                if (b + 1) % cfg.accumulation_steps == 0 or b + 1 == n_batches:
                    self._optimizer_step(in_swa)
                    step += 1
                    if cfg.progress:
                        bar.set_postfix(loss=f"{loss_sum / rows_seen:.4f}", refresh=False)
                    if step % cfg.checkpoint_every == 0 and b + 1 < n_batches:
                        self._save_resume(epoch=epoch, batch=b + 1, global_step=step, best_val=best_val,
                                          best_epoch=best_epoch, best_state=best_state, bad_epochs=bad_epochs,
                                          history=history, loss_sum=loss_sum, rows_seen=rows_seen, stopped=False)
            bar.close()
            seconds = time.perf_counter() - t0
            if in_swa:
                self.swa_model.update_parameters(self.model)
                self.swa_scheduler.step()
            val_loss, z = self._val_loss(self.model, va)
            row = {"epoch": epoch + 1, "step": step, "lr": self.optimizer.param_groups[0]["lr"],
                   "train_loss": loss_sum / max(rows_seen, 1), "val_loss": val_loss,
                   "val_auc": _auc(va["labels"][:, 0].cpu().numpy(), z[:, 0]),
                   "seconds": seconds, "rows_per_s": rows_seen / seconds if seconds > 0 else float("nan")}
            history.append(row)
            if val_loss < best_val - cfg.min_delta:
                best_val, best_epoch, bad_epochs = val_loss, epoch + 1, 0
                best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                self._save_best(best_state)
            else:
                bad_epochs += 1
                stopped = bad_epochs >= cfg.patience
            self._log(row, history, writer)
            epoch, start_batch, loss_sum, rows_seen = epoch + 1, 0, 0.0, 0
            self._save_resume(epoch=epoch, batch=0, global_step=step, best_val=best_val, best_epoch=best_epoch,
                              best_state=best_state, bad_epochs=bad_epochs, history=history, loss_sum=0.0,
                              rows_seen=0, stopped=stopped)
        if writer is not None:
            writer.close()
        return self._finish(va, history, best_val, best_epoch, best_state, stopped)

    def _optimizer_step(self, in_swa: bool) -> None:
        if self.cfg.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if not in_swa and self.scheduler is not None:
            self.scheduler.step()

    def _finish(self, va: dict[str, torch.Tensor], history: list[dict[str, float]], best_val: float,
                best_epoch: int, best_state: dict[str, torch.Tensor] | None, stopped: bool) -> TrainResult:
        used_swa = False
        final_val = best_val
        if self.swa_model is not None:
            from torch.optim.swa_utils import update_bn

            if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.model.modules()):
                tr_batches = [b for _, b in iter_batches({k: v for k, v in va.items() if k != "labels"}, 65536)]
                update_bn(tr_batches, self.swa_model)
            swa_val, _ = self._val_loss(self.swa_model.module, va)
            if swa_val <= best_val:
                used_swa, final_val = True, swa_val
                self.model.load_state_dict(self.swa_model.module.state_dict())
        if not used_swa and best_state is not None:
            self.model.load_state_dict(best_state)
        return TrainResult(history=history, best_epoch=best_epoch, best_val_loss=best_val, used_swa=used_swa,
                           stopped_early=stopped, final_val_loss=final_val)

    # ------------------------------------------------------------------------------ logging
    def _save_best(self, state: dict[str, torch.Tensor]) -> None:
        if self.run_dir is not None:
            with atomic_path(self.run_dir / "best.pt") as tmp:
                torch.save(state, tmp)

    def _tensorboard(self) -> Any:
        if self.run_dir is None or not self.cfg.tensorboard:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard not installed: the CSV log is enough
            return None
        return SummaryWriter(str(self.run_dir / "tensorboard"))

    def _log(self, row: dict[str, float], history: list[dict[str, float]], writer: Any) -> None:
        if writer is not None:
            for k, v in row.items():
                if k != "epoch":
                    writer.add_scalar(k, v, int(row["epoch"]))
        if self.run_dir is not None:
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=list(history[0]))
            w.writeheader()
            w.writerows(history)
            write_text(self.run_dir / "metrics.csv", buf.getvalue())


def _auc(y: np.ndarray, z: np.ndarray) -> float:
    from adsim.models.metrics import auc

    return auc(y, 0.5 * (1.0 + np.tanh(0.5 * z)))
