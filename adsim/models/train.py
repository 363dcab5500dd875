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

* **objective** — mean over tasks t (weights w_t) of binary cross-entropy with logits,
  targets smoothed to ``y(1-ε) + ε/2`` (label smoothing, Szegedy et al. 2016);
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

__all__ = ["Trainer", "TrainResult", "resolve_device", "to_tensors", "iter_batches"]


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
    """

    def __init__(self, model: nn.Module, cfg: TrainConfig, run_dir: str | Path | None = None) -> None:
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
    def _loss(self, logits: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
        logits = logits.float().reshape(labels.shape)  # (B, T)
        target = labels * (1.0 - smoothing) + 0.5 * smoothing if smoothing else labels
        per_task = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(0)
        w = self._task_weights(labels.shape[1], labels.device)
        return (per_task * w).sum() / w.sum()

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
        st = torch.load(path, map_location="cpu", weights_only=True)
        ignore = {"progress", "tensorboard", "num_threads", "device", "eval_batch_size"}
        saved = {k: v for k, v in st["train_config"].items() if k not in ignore}
        now = {k: v for k, v in self.cfg.model_dump(mode="json").items() if k not in ignore}
        changed = sorted(k for k in now if saved.get(k) != now[k])
        if changed:
            from adsim.errors import ConfigError

            raise ConfigError(
                f"cannot resume {path}: train.{changed[0]} changed since the run started"
                f" ({saved.get(changed[0])!r} -> {now[changed[0]]!r}); restore it or start a new run"
            )
        self.model.load_state_dict(st["model"])
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
                loss = self._loss(logits, labels, cfg.label_smoothing)
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
