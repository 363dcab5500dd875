"""Knowledge distillation: a small student model learns from a large trained run (the teacher).

Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network". The student
minimises, per task, a mixture of the log-loss on the labels and on the teacher's probabilities

.. math::  L = \\alpha\\,\\mathrm{BCE}(z_s, y) + (1-\\alpha)\\,\\mathrm{BCE}(z_s, p_t)
             = \\mathrm{BCE}\\big(z_s,\\ \\alpha y + (1-\\alpha) p_t\\big)

(binary cross-entropy is linear in its target), so the student is trained by the ordinary
:class:`~adsim.models.train.Trainer` on *soft labels* ``α·y + (1-α)·p_t``; early stopping still
uses the true validation labels. The student is then calibrated on the validation split and
written as a normal run folder (servable with ``adsim serve``), with ``distill.json`` reporting
test AUC of teacher, student and — with ``baseline=True`` — the same student trained on hard
labels only, plus parameter counts and the forward-pass speed-up.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from adsim._io import write_json, write_text
from adsim.errors import ConfigError

__all__ = ["distill", "forward_latency"]


def forward_latency(model: Any, data: Any, batch: int, repeat: int = 50) -> float:
    """Median seconds of one forward pass over ``batch`` rows (float32, inference mode)."""
    import torch

    from adsim.models.export import torch_logits

    x = {"dense": data.dense[:batch], "sparse": data.sparse[:batch]}
    if data.seq is not None:
        x["seq"] = data.seq[:batch]
    with torch.inference_mode():
        torch_logits(model, x)
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            torch_logits(model, x)
            ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def distill(teacher_dir: str | Path, out_dir: str | Path, student_options: dict[str, Any],
            alpha: float = 0.5, train_overrides: dict[str, Any] | None = None, baseline: bool = True,
            progress: bool = False) -> dict[str, Any]:
    """Train a student (the teacher's architecture with ``student_options``) on soft labels."""
    import torch

    from adsim.config import load_config, parse_config
    from adsim.models.calibration import make_calibrator, save_calibrators
    from adsim.models.checkpoint import load_run, save_checkpoint
    from adsim.models.config import RunConfig
    from adsim.models.data import CTRData, load_split
    from adsim.models.metrics import auc
    from adsim.models.train import Trainer
    from adsim.models.zoo import build_model

    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1], got {alpha}")
    tdir, out = Path(teacher_dir), Path(out_dir)
    teacher = load_run(tdir)
    cfg = load_config(tdir / "config.yaml", RunConfig)
    data = cfg.model_dump(mode="json")
    data["model"]["options"] = dict(student_options)
    data["train"].update({"progress": progress, "tensorboard": False, **(train_overrides or {})})
    data["name"] = out.name
    scfg = parse_config(data, RunConfig, source="distillation options")
    pdir = Path(cfg.data.processed_dir)
    train, schema = load_split(pdir, "train")
    val, _ = load_split(pdir, "val")
    test, _ = load_split(pdir, "test")

    p_teacher = Trainer.predict_proba(teacher.model, train, scfg.train.eval_batch_size)
    soft = CTRData(train.dense, train.sparse, (alpha * train.labels + (1 - alpha) * p_teacher).astype(np.float32),
                   train.seq, train.group, train.truth)

    def fit(labels_data: CTRData, run_dir: Path | None) -> Any:
        torch.manual_seed(scfg.train.seed)
        try:
            model = build_model(scfg.model.name, schema, **scfg.model.options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"student options: {exc}") from None
        trainer = Trainer(model, scfg.train, run_dir)
        trainer.fit(labels_data, val)
        return trainer.model.eval()

    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)  # unfinished until the end
    t0 = time.perf_counter()
    student = fit(soft, out)
    train_s = time.perf_counter() - t0
    save_checkpoint(out / "checkpoint.pt", student, scfg.model.name, scfg.model.options, schema,
                    scfg.train.model_dump(mode="json"), {"distilled_from": str(tdir), "alpha": alpha})
    shutil.copyfile(tdir / "preprocessors.json", out / "preprocessors.json")
    write_text(out / "config.yaml", yaml.safe_dump(scfg.model_dump(mode="json"), sort_keys=False))
    p_val = Trainer.predict_proba(student, val)
    save_calibrators(out / "calibrator.json", {
        t: make_calibrator(scfg.calibration.method).fit(p_val[:, j], val.labels[:, j])
        for j, t in enumerate(schema.tasks)})

    y = test.labels[:, 0]
    models = {"teacher": teacher.model, "student (distilled)": student}
    if baseline:
        models["student (hard labels)"] = fit(train, None)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = {}
        for name, m in models.items():
            p = Trainer.predict_proba(m, test)[:, 0]
            rows[name] = {
                "test_auc": auc(y, p),
                "parameters": int(sum(t.numel() for t in m.parameters())),
                "latency_ms_b100": forward_latency(m, test, 100) * 1e3,
                "latency_ms_b1000": forward_latency(m, test, 1000) * 1e3,
            }
    finally:
        torch.set_num_threads(torch_threads)
    t, s = rows["teacher"], rows["student (distilled)"]
    report = {
        "teacher": str(tdir), "alpha": alpha, "student_options": dict(student_options), "models": rows,
        "delta_auc_vs_teacher": s["test_auc"] - t["test_auc"],
        "speedup_b100": t["latency_ms_b100"] / s["latency_ms_b100"],
        "speedup_b1000": t["latency_ms_b1000"] / s["latency_ms_b1000"],
        "train_seconds": train_s,
    }
    if baseline:
        report["delta_auc_vs_hard_labels"] = s["test_auc"] - rows["student (hard labels)"]["test_auc"]
    write_json(out / "distill.json", report)
    for f in ("resume.pt", "best.pt"):
        (out / f).unlink(missing_ok=True)
    from adsim.models.run import write_run_manifest

    write_run_manifest(out)  # last: the student's run folder is finished
    return report
