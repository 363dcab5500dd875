"""The trainer's objective from YAML: train.loss, embedding L2, negative down-sampling, task weighting.

Each is exercised through ``adsim train``'s own path (``train_run`` / the CLI) or the ``Trainer``
that both ``adsim train`` and ``adsim compare`` use.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from adsim.cli import main
from adsim.config import parse_config
from adsim.errors import ConfigError
from adsim.models.config import LOSS_NAMES, RunConfig, TrainConfig
from adsim.models.run import train_run
from adsim.models.train import Trainer, build_objective
from adsim.models.zoo import build_model


def _run(cfg: dict, out: Path) -> Path:
    return train_run(parse_config(cfg, RunConfig), out)


def _state(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoint.pt", weights_only=True)["state_dict"]


def test_config_loss_names_are_the_registry() -> None:
    from adsim.models.losses import LOSSES

    assert set(LOSS_NAMES) == set(LOSSES)


CONFIG_ERRORS = [
    ({"loss": {"name": "dice"}},
     "train.loss.name: must be one of 'bce', 'focal', 'class_balanced' or 'hard_negative', got 'dice'"),
    ({"loss": {"name": "focal", "options": {"gama": 2}}},
     "train.loss: loss 'focal' has no option 'gama'; its options: alpha, gamma"),
    ({"loss": {"name": "focal", "options": {"gamma": -1}}}, "train.loss: focal gamma must be >= 0, got -1"),
    ({"loss": {"name": "hard_negative", "options": {"min_negatives": 1.5}}},
     "train.loss: hard_negative min_negatives must be an integer >= 0, got 1.5"),
    ({"loss": {"name": "bce", "options": {"gamma": 1}}}, "loss 'bce' has no option 'gamma'; its options: none"),
    ({"negative_sampling": 0}, "train.negative_sampling: must be > 0, got 0"),
    ({"negative_sampling": 1.5}, "train.negative_sampling: must be <= 1"),
    ({"task_weighting": "gradnorm"}, "train.task_weighting: must be one of 'fixed' or 'uncertainty'"),
    ({"task_weighting": "uncertainty", "task_weights": [1, 2]},
     "train: task_weights are the fixed weights; with task_weighting 'uncertainty' the weights are learned"),
    ({"task_weights": [0, 0]}, "train: task_weights must be >= 0 with a positive sum, got [0.0, 0.0]"),
]


@pytest.mark.parametrize(("patch", "message"), CONFIG_ERRORS)
def test_train_config_errors_exit_2(tmp_path: Path, tiny_run_config: dict, capsys, patch: dict,
                                    message: str) -> None:
    tiny_run_config["train"].update(patch)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(tiny_run_config))
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_negative_sampling_on_multitask_data_is_refused() -> None:
    from adsim.models.data import CTRData
    from adsim.models.schema import ModelSchema, SparseField

    schema = ModelSchema(dense=("a",), sparse=(SparseField("s", 5),), tasks=("click", "conversion"))
    data = CTRData(np.zeros((20, 1), np.float32), np.ones((20, 1), np.int64), np.zeros((20, 2), np.float32))
    cfg = TrainConfig(epochs=1, progress=False, negative_sampling=0.5)
    with pytest.raises(ConfigError, match="train.negative_sampling needs single-task data.*has 2 tasks"):
        Trainer(build_model("fm", schema, embed_dim=2), cfg).fit(data, data)


# ------------------------------------------------------------------------------ 1. train.loss
def test_adsim_train_honours_train_loss(tmp_path: Path, tiny_run_config: dict) -> None:
    tiny_run_config["train"].update(epochs=1, label_smoothing=0.05)
    bce = _run(tiny_run_config, tmp_path / "bce")
    tiny_run_config["train"]["loss"] = {"name": "focal", "options": {"gamma": 2.0}}
    focal = _run(tiny_run_config, tmp_path / "focal")
    summary = json.loads((focal / "test_metrics.json").read_text())["training"]
    assert summary["loss"] == "focal"
    a, b = _state(bce), _state(focal)
    assert any(not torch.equal(a[k], b[k]) for k in a), "the focal run trained exactly like the BCE run"
    # the objective Trainer builds for it: focal per task on smoothed targets
    cfg = parse_config(tiny_run_config, RunConfig).train
    obj = build_objective(cfg, np.array([[0.0], [1.0]], np.float32))
    z, y = torch.tensor([[0.3], [-2.0], [1.5]]), torch.tensor([[1.0], [0.0], [0.0]])
    from adsim.models.losses import focal_loss

    assert torch.allclose(obj(z, y), focal_loss(z, y * 0.95 + 0.025, gamma=2.0))


def test_class_balanced_counts_come_from_the_training_split() -> None:
    labels = np.array([[1, 0], [0, 0], [0, 1], [0, 0], [1, 1]], np.float32)
    cfg = TrainConfig(loss={"name": "class_balanced", "options": {"beta": 0.9}})
    obj = build_objective(cfg, labels)
    from adsim.models.losses import class_balanced_weights

    for t in range(2):
        expected = class_balanced_weights(float((1 - labels[:, t]).sum()), float(labels[:, t].sum()), 0.9)
        assert torch.allclose(obj.base[t].class_weights, expected)


# ----------------------------------------------------------------------------- 2. embedding L2
def test_l2_reg_shrinks_the_embeddings_through_adsim_train(tmp_path: Path, tiny_run_config: dict) -> None:
    tiny_run_config["model"] = {"name": "fm", "options": {"embed_dim": 4, "init_std": 0.1}}
    tiny_run_config["train"].update(epochs=1, weight_decay=0.0)
    plain = _state(_run(tiny_run_config, tmp_path / "plain"))
    tiny_run_config["model"]["options"]["l2_reg"] = 0.05
    reg = _state(_run(tiny_run_config, tmp_path / "l2"))
    emb = [k for k in plain if "embed" in k and plain[k].ndim == 2 and plain[k].shape[0] > 2]
    assert emb, list(plain)
    n_plain = sum(float(plain[k].pow(2).sum()) for k in emb)
    n_reg = sum(float(reg[k].pow(2).sum()) for k in emb)
    assert n_reg < 0.5 * n_plain, (n_plain, n_reg)


def test_models_without_penalties_add_nothing() -> None:
    from adsim.models.schema import ModelSchema, SparseField

    schema = ModelSchema(dense=("a",), sparse=(SparseField("s", 5),))
    trainer = Trainer(build_model("deepfm", schema, embed_dim=2, hidden=(4,)), TrainConfig(progress=False),
                      objective=build_objective(TrainConfig(), np.zeros((1, 1), np.float32)))
    assert trainer._penalties == []
    z, y = torch.tensor([0.2, -1.0]), torch.tensor([[1.0], [0.0]])
    assert torch.allclose(trainer.loss(z, y), torch.nn.functional.binary_cross_entropy_with_logits(z[:, None], y))


# --------------------------------------------------------------------- 3. negative down-sampling
def test_negative_sampling_keeps_predicted_ctr_at_the_base_rate(tmp_path: Path, tiny_run_config: dict) -> None:
    from adsim.models.checkpoint import load_run
    from adsim.models.data import _split  # noqa: PLC2701 - the raw test rows
    from adsim.models.readers import generate_synthetic

    src = tiny_run_config["data"]["source"]
    src.update(n_rows=20_000, base_ctr=0.05)
    tiny_run_config["train"].update(epochs=2, negative_sampling=0.2, batch_size=512)
    tiny_run_config["calibration"]["method"] = "none"  # the network's own probabilities are judged
    out = _run(tiny_run_config, tmp_path / "ds")
    m = json.loads((out / "test_metrics.json").read_text())
    n_train = 16_000
    assert m["training"]["train_rows"] < 0.4 * n_train and m["training"]["negative_sampling"] == 0.2
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["negative_sampling"] == 0.2
    rc = parse_config(tiny_run_config, RunConfig)
    raw = _split(generate_synthetic(rc.data.source)[0], rc.data)["test"]
    base = float(raw["click"].mean())
    p = load_run(out).predict_frame(raw.drop(columns=["click"]))[:, 0]
    assert abs(p.mean() - base) < 0.2 * base, (p.mean(), base)
    # the check can fail: the uncorrected sample probabilities q are far above the base rate
    z = np.log(p / (1 - p)) - np.log(0.2)
    q = 1 / (1 + np.exp(-z))
    assert q.mean() > 2.0 * base, (q.mean(), base)


def test_downsampling_keeps_every_click_and_is_seeded() -> None:
    from adsim.models.data import CTRData
    from adsim.models.train import downsample

    rng = np.random.default_rng(0)
    y = (rng.random((5000, 1)) < 0.1).astype(np.float32)
    data = CTRData(rng.standard_normal((5000, 2)).astype(np.float32), rng.integers(0, 9, (5000, 3)), y,
                   group=np.arange(5000))
    a, b = downsample(data, 0.25, seed=3), downsample(data, 0.25, seed=3)
    assert np.array_equal(a.group, b.group) and a.labels.sum() == y.sum()
    n_neg = int((a.labels == 0).sum())
    assert abs(n_neg - 0.25 * (y == 0).sum()) < 4 * np.sqrt(0.25 * 0.75 * (y == 0).sum())
    assert np.array_equal(a.dense, data.dense[a.group]) and np.array_equal(a.sparse, data.sparse[a.group])


# ------------------------------------------------------------------------- 4. task weighting
def test_uncertainty_weighting_from_yaml(shared_data: Path, tmp_path: Path) -> None:
    d = shared_data / "aliexpress_mtl"
    cfg = {
        "name": "mtl",
        "data": {"source": {"type": "table", "train_path": str(d / "train.csv"),
                            "val_path": str(d / "test.csv"), "test_path": str(d / "test.csv")},
                 "labels": ["click", "conversion"], "dense": [f"numerical_{i}" for i in range(1, 11)],
                 "sparse": [f"categorical_{i}" for i in range(1, 9)], "processed_dir": str(tmp_path / "p")},
        "model": {"name": "mmoe", "options": {"embed_dim": 4, "n_experts": 2, "expert": [8], "tower": [8]}},
        "train": {"epochs": 1, "batch_size": 32, "lr": 0.01, "progress": False, "tensorboard": False,
                  "task_weighting": "uncertainty"},
        "calibration": {"method": "platt"},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "run/test_metrics.json").read_text())["training"]
    assert summary["task_weighting"] == "uncertainty"
    w = np.array(summary["task_weights"])  # e^{-s_t}: learned, so no longer 1
    assert w.shape == (2,) and np.all(np.abs(w - 1.0) > 1e-4), w
    state = torch.load(tmp_path / "run/resume.pt", weights_only=True)
    assert torch.allclose(torch.exp(-state["objective"]["log_vars"]).double(), torch.tensor(w))


def _two_task_data(n: int, seed: int):
    from adsim.models.data import CTRData
    from adsim.models.schema import ModelSchema, SparseField

    rng = np.random.default_rng(seed)
    sparse = rng.integers(0, 8, (n, 2))
    dense = rng.standard_normal((n, 2)).astype(np.float32)
    click = rng.random(n) < 1 / (1 + np.exp(-(dense[:, 0] + (sparse[:, 0] - 4) / 3)))
    conv = click & (rng.random(n) < 1 / (1 + np.exp(-dense[:, 1])))
    schema = ModelSchema(dense=("a", "b"), sparse=(SparseField("s", 8), SparseField("t", 8)),
                         tasks=("click", "conversion"))
    return CTRData(dense, sparse, np.stack([click, conv], 1).astype(np.float32)), schema


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("train_opts", [
    {"task_weighting": "uncertainty", "label_smoothing": 0.02},
    {"loss": {"name": "class_balanced", "options": {"beta": 0.99}}, "task_weights": [1.0, 3.0]},
])
def test_interrupted_multitask_run_resumes_exactly(tmp_path: Path, train_opts: dict, monkeypatch) -> None:
    """Stop mid-epoch after a resume point, resume: same weights and log-variances as one run."""
    train, schema = _two_task_data(1200, 0)
    val, _ = _two_task_data(300, 1)
    cfg = TrainConfig(epochs=2, batch_size=64, lr=0.01, checkpoint_every=5, progress=False,
                      tensorboard=False, device="cpu", **train_opts)

    def fresh(run_dir: Path) -> Trainer:
        torch.manual_seed(0)
        return Trainer(build_model("shared_bottom", schema, embed_dim=4, bottom=(8,), tower=(4,)), cfg, run_dir)

    full = fresh(tmp_path / "full")
    full.fit(train, val)

    calls = {"n": 0}
    step = Trainer._optimizer_step

    def stop_at_27(self, in_swa):  # epoch 2, after the resume point at step 25
        calls["n"] += 1
        if calls["n"] == 27:
            raise _Interrupt
        step(self, in_swa)

    monkeypatch.setattr(Trainer, "_optimizer_step", stop_at_27)
    with pytest.raises(_Interrupt):
        fresh(tmp_path / "cut").fit(train, val)
    monkeypatch.setattr(Trainer, "_optimizer_step", step)
    assert torch.load(tmp_path / "cut/resume.pt", weights_only=True)["batch"] > 0
    resumed = fresh(tmp_path / "cut")
    resumed.fit(train, val, resume=True)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    oa, ob = full.objective.state_dict(), resumed.objective.state_dict()
    assert oa.keys() == ob.keys() and all(torch.equal(oa[k], ob[k]) for k in oa)
    assert pd.read_csv(tmp_path / "full/metrics.csv")[["train_loss", "val_loss"]].equals(
        pd.read_csv(tmp_path / "cut/metrics.csv")[["train_loss", "val_loss"]])
