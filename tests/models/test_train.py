"""Trainer and run folder: end to end on tiny data, resume after SIGKILL, multi-task, CLI errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from adsim.cli import main
from adsim.config import parse_config
from adsim.models.checkpoint import load_checkpoint, load_run
from adsim.models.config import RunConfig, TrainConfig
from adsim.models.data import load_split
from adsim.models.train import Trainer
from adsim.models.zoo import build_model

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, cfg: dict, name: str = "run.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_train_writes_run_folder(tmp_path: Path, tiny_run_config: dict, capsys) -> None:
    cfg = _write(tmp_path, tiny_run_config)
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Bayes-optimal" in printed and "test AUC" in printed
    for f in ("checkpoint.pt", "preprocessors.json", "calibrator.json", "metrics.csv",
              "test_metrics.json", "reliability.png", "learning_curves.png", "config.yaml"):
        assert (out / f).is_file(), f
    payload = torch.load(out / "checkpoint.pt", weights_only=True)
    assert payload["model_name"] == "deepfm" and payload["schema"]["tasks"] == ["click"]
    hist = pd.read_csv(out / "metrics.csv")
    assert list(hist["epoch"]) == [1, 2] and hist["val_loss"].notna().all()
    m = json.loads((out / "test_metrics.json").read_text())
    raw, bayes = m["raw"]["click"], m["bayes_optimal"]["click"]
    assert 0.5 < raw["auc"] <= bayes["auc"] + 0.02  # it learns, and cannot beat the truth by much
    # the loaded run scores raw rows exactly as the trainer scored the encoded test split
    run = load_run(out)
    test, _ = load_split(tiny_run_config["data"]["processed_dir"], "test")
    p_trainer = Trainer.predict_proba(run.model, test)
    from adsim.models.config import SyntheticSource
    from adsim.models.data import _split  # noqa: PLC2701 - reproduce the test rows
    from adsim.models.readers import generate_synthetic
    rc = parse_config(tiny_run_config, RunConfig)
    raw_rows = _split(generate_synthetic(rc.data.source)[0], rc.data)["test"]
    p_raw = run.predict_frame(raw_rows.drop(columns=["click"]), calibrated=False)
    np.testing.assert_allclose(p_raw, p_trainer, rtol=1e-6)
    assert isinstance(rc.data.source, SyntheticSource)
    # adsim calibrate refits with another method
    assert main(["calibrate", str(out), "--method", "temperature"]) == 0
    assert json.loads((out / "calibrator.json").read_text())["tasks"]["click"]["method"] == "temperature"


def test_resume_after_sigkill_matches_uninterrupted(tmp_path: Path, tiny_run_config: dict) -> None:
    cfg = tiny_run_config
    cfg["model"]["options"].update(dropout=0.1, embed_dropout=0.05)
    # 4800 training rows / 128 = 38 micro-batches per epoch; the first resume point is batch 8
    cfg["train"].update(epochs=2, batch_size=128, swa_epochs=1, label_smoothing=0.02,
                        accumulation_steps=2, checkpoint_every=4, patience=5)
    path = _write(tmp_path, cfg)
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "adsim.cli", "train", str(path), "--out", str(killed), "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while not (killed / "resume.pt").exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "no resume checkpoint appeared"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = torch.load(killed / "resume.pt", weights_only=True)
    assert state["batch"] > 0 and state["epoch"] == 0, "the kill should land mid-epoch"
    assert not (killed / "test_metrics.json").exists()
    assert main(["train", str(path), "--out", str(killed), "--resume", "--quiet"]) == 0
    full = tmp_path / "full"
    assert main(["train", str(path), "--out", str(full), "--quiet"]) == 0
    a = json.loads((killed / "test_metrics.json").read_text())
    b = json.loads((full / "test_metrics.json").read_text())
    assert a["raw"] == b["raw"] and a["calibrated"] == b["calibrated"]
    assert pd.read_csv(killed / "metrics.csv")[["train_loss", "val_loss"]].equals(
        pd.read_csv(full / "metrics.csv")[["train_loss", "val_loss"]])
    sa = torch.load(killed / "checkpoint.pt", weights_only=True)["state_dict"]
    sb = torch.load(full / "checkpoint.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sb)


def test_multitask_aliexpress(shared_data: Path, tmp_path: Path) -> None:
    d = shared_data / "aliexpress_mtl"
    cfg = {
        "name": "mtl",
        "data": {"source": {"type": "table", "train_path": str(d / "train.csv"),
                            "val_path": str(d / "test.csv"), "test_path": str(d / "test.csv")},
                 "labels": ["click", "conversion"], "dense": [f"numerical_{i}" for i in range(1, 11)],
                 "sparse": [f"categorical_{i}" for i in range(1, 9)], "group_column": "search_id",
                 "processed_dir": str(tmp_path / "p")},
        "model": {"name": "deepfm", "options": {"embed_dim": 4, "hidden": [8]}},
        "train": {"epochs": 1, "batch_size": 32, "progress": False, "task_weights": [1.0, 2.0]},
        "calibration": {"method": "platt"},
    }
    assert main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    m = json.loads((tmp_path / "run/test_metrics.json").read_text())
    assert set(m["calibrated"]) == {"click", "conversion"} and "gauc" in m["raw"]["click"]
    run = load_run(tmp_path / "run")
    assert run.predict_frame(pd.read_csv(d / "test.csv").head(7)).shape == (7, 2)


def _tiny_data(n: int = 3000, seed: int = 0):
    from adsim.models.data import CTRData
    from adsim.models.schema import ModelSchema, SparseField

    rng = np.random.default_rng(seed)
    sparse = rng.integers(0, 10, (n, 2))
    dense = rng.standard_normal((n, 2)).astype(np.float32)
    z = dense[:, 0] + (sparse[:, 0] - 5) / 3
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.float32)[:, None]
    schema = ModelSchema(dense=("a", "b"), sparse=(SparseField("s", 10), SparseField("t", 10)))
    return CTRData(dense, sparse, y), schema


@pytest.mark.parametrize("opts", [
    {"amp": "bf16"},
    {"accumulation_steps": 3, "label_smoothing": 0.1, "scheduler": "none"},
    {"swa_epochs": 1, "grad_clip": None},
])
def test_trainer_options_learn(opts: dict) -> None:
    data, schema = _tiny_data()
    torch.manual_seed(0)
    model = build_model("deepfm", schema, embed_dim=4, hidden=(16,))
    cfg = TrainConfig(epochs=3, batch_size=128, lr=0.01, progress=False, **opts)
    res = Trainer(model, cfg).fit(data, _tiny_data(1000, 1)[0])
    assert len(res.history) == 3
    assert res.history[-1]["val_auc"] > 0.7


def test_early_stopping_and_best_weights(tmp_path: Path) -> None:
    data, schema = _tiny_data()
    torch.manual_seed(0)
    model = build_model("deepfm", schema, embed_dim=4, hidden=(16,))
    cfg = TrainConfig(epochs=10, batch_size=256, lr=0.01, patience=1, min_delta=10.0, progress=False)
    res = Trainer(model, cfg, tmp_path).fit(data, _tiny_data(500, 1)[0])
    assert res.stopped_early and len(res.history) == 2 and res.best_epoch == 1
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())


def test_checkpoint_loads_on_cpu(tmp_path: Path, tiny_run_config: dict) -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tiny_run_config["train"].update(epochs=1, device=device)
    out = tmp_path / "run"
    assert main(["train", str(_write(tmp_path, tiny_run_config)), "--out", str(out), "--quiet"]) == 0
    model, payload = load_checkpoint(out / "checkpoint.pt", device="cpu")
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert payload["train_config"]["device"] == device


CLI_ERRORS = [
    ({"train": {"lr": -1}}, "train.lr: must be > 0"),
    ({"train": {"swa_epochs": 5, "epochs": 2}}, "swa_epochs (5) must be < epochs (2)"),
    ({"model": {"name": "nope"}}, "model.name: unknown model 'nope'"),
    ({"model": {"name": "deepfm", "options": {"depth": 3}}}, "model: model 'deepfm' has no option 'depth'"),
    ({"train": {"amp": "fp16", "device": "cpu"}}, "train.amp 'fp16' needs CUDA"),
    ({"train": {"task_weights": [1, 2]}}, "train.task_weights has 2 weights but the data has 1 tasks"),
    ({"data": {"labels": ["clicked"]}}, "column 'clicked' (data.labels) is not in the training split"),
    ({"data": {"sparse": ["region", "nope"]}}, "column 'nope' (data.sparse) is not in the training split"),
    ({"banana": 1}, "banana: unknown key"),
]


@pytest.mark.parametrize(("patch", "message"), CLI_ERRORS)
def test_cli_errors_exit_2(tmp_path: Path, tiny_run_config: dict, capsys, patch: dict, message: str) -> None:
    cfg = tiny_run_config
    for key, val in patch.items():
        if isinstance(val, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(val)
        else:
            cfg[key] = val
    code = main(["train", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err


def test_cli_missing_config_and_run(tmp_path: Path, capsys) -> None:
    assert main(["train", str(tmp_path / "none.yaml")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["calibrate", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["prepare-data", str(tmp_path / "none.yaml")]) == 2


def test_prepare_data_command(tmp_path: Path, tiny_run_config: dict, capsys) -> None:
    assert main(["prepare-data", str(_write(tmp_path, tiny_run_config))]) == 0
    assert "train 4800, val 600, test 600 rows" in capsys.readouterr().out


def test_resume_refuses_changed_config(tmp_path: Path) -> None:
    from adsim.errors import ConfigError

    data, schema = _tiny_data(600)
    cfg = TrainConfig(epochs=1, batch_size=256, progress=False)
    Trainer(build_model("deepfm", schema, embed_dim=2, hidden=(4,)), cfg, tmp_path).fit(data, data)
    again = Trainer(build_model("deepfm", schema, embed_dim=2, hidden=(4,)),
                    cfg.model_copy(update={"lr": 0.5}), tmp_path)
    with pytest.raises(ConfigError, match=r"train.lr changed since the run started \(0.001 -> 0.5\)"):
        again.fit(data, data, resume=True)


@pytest.mark.slow
def test_torch_compile_trains() -> None:
    data, schema = _tiny_data()
    torch.manual_seed(0)
    model = build_model("deepfm", schema, embed_dim=4, hidden=(16,))
    cfg = TrainConfig(epochs=2, batch_size=128, lr=0.01, progress=False, compile=True)
    res = Trainer(model, cfg).fit(data, _tiny_data(1000, 1)[0])
    assert res.history[-1]["val_auc"] > 0.7
