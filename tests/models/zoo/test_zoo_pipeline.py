"""The zoo inside the CTR pipeline: real samples, ``adsim train`` by name, ``adsim compare``,
negative down-sampling with re-correction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from adsim.cli import main
from adsim.config import parse_config
from adsim.models.compare import CompareConfig, compare_models
from adsim.models.data import load_split, prepare_data

#: one small config per registered model (all of them; fgn wraps dcnv2)
MODELS = {
    "lr": {},
    "fm": {"embed_dim": 4},
    "deepfm": {"embed_dim": 4, "hidden": [16]},
    "xdeepfm": {"embed_dim": 4, "cin_layers": [8, 8], "hidden": [16]},
    "dcnv2": {"embed_dim": 4, "hidden": [16], "low_rank": 4, "structure": "stacked"},
    "autoint": {"embed_dim": 4, "n_layers": 1, "attention_dim": 4, "hidden": [16]},
    "fibinet": {"embed_dim": 4, "hidden": [16]},
    "dlrm": {"embed_dim": 4, "top": [16], "bottom": [8]},
    "fgn": {"base": "dcnv2", "base_config": {"embed_dim": 4, "hidden": [16]}},
}

TAOBAO_SPARSE = ["userid", "adgroup_id", "pid", "cate_id", "campaign_id", "customer", "brand", "cms_segid",
                 "cms_group_id", "final_gender_code", "age_level", "pvalue_level", "shopping_level",
                 "occupation", "new_user_class_level"]


def _datasets(shared: Path, root: Path) -> dict[str, dict]:
    t = shared / "taobao_ad"
    return {
        "criteo": {"source": {"type": "criteo", "path": str(shared / "criteo/criteo_sample.txt")},
                   "split": {"val_fraction": 0.2, "test_fraction": 0.2, "seed": 0},
                   "processed_dir": str(root / "criteo")},
        "taobao": {"source": {"type": "table", "train_path": str(t / "train_sample.csv"),
                              "val_path": str(t / "valid_sample.csv"), "test_path": str(t / "test_sample.csv")},
                   "labels": ["clk"], "dense": ["price"], "sparse": TAOBAO_SPARSE,
                   "sequences": [{"name": "click_sequence", "max_len": 5}],
                   "group_column": "userid", "processed_dir": str(root / "taobao")},
    }


@pytest.fixture(scope="module")
def real_splits(shared_data: Path, tmp_path_factory) -> dict:
    from adsim.models.config import DatasetConfig

    root = tmp_path_factory.mktemp("zoo_real")
    out = {}
    for name, d in _datasets(shared_data, root).items():
        pdir = prepare_data(parse_config(d, DatasetConfig))
        out[name] = tuple(load_split(pdir, s)[0] for s in ("train", "val", "test")) + (load_split(pdir, "train")[1],)
    return out


@pytest.mark.parametrize("dataset", ["criteo", "taobao"])
@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_trains_on_the_real_samples(name: str, dataset: str, real_splits: dict) -> None:
    from adsim.models.compare import CompareModel, train_and_score

    train, val, test, schema = real_splits[dataset]
    if dataset == "taobao":
        assert schema.sequences and schema.n_dense == 1  # the click sequence and price reach the model
    cfg = parse_config({"data": {"source": {"type": "synthetic"}}, "models": [{"name": name, "options": MODELS[name]}],
                        "train": {"epochs": 2, "batch_size": 32, "lr": 0.01, "progress": False,
                                  "tensorboard": False}}, CompareConfig)
    row, p = train_and_score(cfg, CompareModel(name=name, options=MODELS[name]), train, val, test, schema)
    assert p.shape == (len(test),) and np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
    assert np.isfinite(row["logloss"]) and row["epochs"] >= 1 and row["params"] > 0


def test_adsim_train_trains_any_zoo_model_by_name(shared_data: Path, tmp_path: Path, capsys) -> None:
    from adsim.models.checkpoint import load_run

    data = _datasets(shared_data, tmp_path)["taobao"]
    cfg = {"name": "taobao_fgn", "data": data,
           "model": {"name": "fgn", "options": {"base": "autoint", "gate": "vector",
                                                "base_config": {"embed_dim": 4, "n_layers": 1, "adaptive_dim": True}}},
           "train": {"epochs": 2, "batch_size": 32, "lr": 0.01, "progress": False, "tensorboard": False},
           "calibration": {"method": "platt"}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 0
    assert "test AUC" in capsys.readouterr().out
    run = load_run(tmp_path / "run")  # rebuilt from the registry by name, weights loaded
    assert type(run.model).__name__ == "FGN" and type(run.model.model).__name__ == "AutoInt"
    m = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert m["model"] == "fgn" and np.isfinite(m["raw"]["click" if "click" in m["raw"] else "clk"]["logloss"])


def _compare_cfg(tmp_path: Path, n_rows: int = 4000, **extra) -> dict:
    return {
        "name": "tiny_compare",
        "data": {"source": {"type": "synthetic", "n_rows": n_rows, "n_users": 500, "n_ads": 6, "n_dense": 3,
                            "base_ctr": 0.2, "seed": 3},
                 "processed_dir": str(tmp_path / "processed")},
        "models": [{"name": "lr"}, {"name": "fm", "options": {"embed_dim": 4}},
                   {"name": "dcnv2", "label": "dcnv2-mix", "options": {"embed_dim": 4, "hidden": [16], "low_rank": 4}}],
        "train": {"epochs": 2, "batch_size": 256, "lr": 0.01, "num_threads": 1, "tensorboard": False},
        **extra,
    }


def test_adsim_compare_prints_and_writes_one_table(tmp_path: Path, capsys) -> None:
    path = tmp_path / "compare.yaml"
    path.write_text(yaml.safe_dump(_compare_cfg(tmp_path, loss={"name": "class_balanced", "options": {"beta": 0.999}})))
    out = tmp_path / "out"
    assert main(["compare", str(path), "--out", str(out), "--models", "lr,dcnv2-mix"]) == 0
    printed = capsys.readouterr().out
    lines = [ln.split()[0] for ln in printed.splitlines() if ln.strip()]
    assert lines[0] == "model" and lines[2:5] == ["lr", "dcnv2-mix", "bayes-optimal"]
    rows = json.loads((out / "compare.json").read_text())["rows"]
    assert [r["model"] for r in rows] == ["lr", "dcnv2-mix", "bayes-optimal"]
    for r in rows[:2]:
        assert 0.5 < r["auc"] <= rows[2]["auc"] + 0.02 and r["params"] > 0
        assert r["train_rows_per_s"] > 0 and r["infer_rows_per_s"] > 0 and 0 <= r["ece"] < 1
    assert (out / "compare.png").stat().st_size > 1000 and (out / "compare.csv").is_file()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": []}, "models: must have at least 1 item(s)"),
        ({"models": [{"name": "lr"}, {"name": "lr"}]}, "model label 'lr' appears twice"),
        ({"models": [{"name": "nope"}]}, "unknown model 'nope'"),
        ({"models": [{"name": "fm", "options": {"depth": 3}}]}, "model 'fm' has no option 'depth'"),
        ({"models": [{"name": "dcnv2", "options": {"structure": "x"}}]}, "structure must be 'stacked' or 'parallel'"),
        ({"negative_sampling": 0}, "negative_sampling: must be > 0, got 0"),
        ({"loss": {"name": "dice"}}, "loss.name: must be one of 'bce', 'focal', 'class_balanced' or 'hard_negative', got 'dice'"),
        ({"loss": {"name": "focal", "options": {"gamma": -1}}}, "focal gamma must be >= 0"),
    ],
)
def test_compare_config_errors_exit_2(change: dict, message: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "compare.yaml"
    path.write_text(yaml.safe_dump({**_compare_cfg(tmp_path, n_rows=400), **change}))
    assert main(["compare", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err


def test_compare_unknown_model_label_exits_2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "compare.yaml"
    path.write_text(yaml.safe_dump(_compare_cfg(tmp_path, n_rows=400)))
    assert main(["compare", str(path), "--models", "lr,xdeepfm", "--quiet"]) == 2
    assert "--models: no model labelled 'xdeepfm'; the config has lr, fm, dcnv2-mix" in capsys.readouterr().err


def _downsampling_ece(tmp_path: Path, n_rows: int, rate: float) -> tuple[dict, dict]:
    base = {
        "name": "ds",
        "data": {"source": {"type": "synthetic", "n_rows": n_rows, "n_users": 20_000, "n_ads": 12, "n_dense": 4,
                            "base_ctr": 0.05, "seed": 2},
                 "split": {"val_fraction": 0.1, "test_fraction": 0.2}, "processed_dir": str(tmp_path / "p")},
        "models": [{"name": "fm", "options": {"embed_dim": 8}}],
        "train": {"epochs": 3, "batch_size": 1024, "lr": 0.01, "num_threads": 1, "progress": False,
                  "scheduler": "none", "tensorboard": False},
    }
    full = compare_models(parse_config(base, CompareConfig), write=False).rows
    ds = compare_models(parse_config({**base, "negative_sampling": rate}, CompareConfig), write=False).rows
    return full[0], ds[0]


def test_negative_downsampling_with_recorrection_keeps_ece(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    full, ds = _downsampling_ece(tmp_path, 100_000, 0.25)
    assert ds["train_rows"] < 0.35 * full["train_rows"]
    assert abs(ds["ece"] - full["ece"]) <= 0.005, (full["ece"], ds["ece"])
    # without the re-correction the down-sampled model is badly calibrated: the check can fail
    assert ds["ece_uncorrected"] > 0.05, ds["ece_uncorrected"]


@pytest.mark.slow
def test_negative_downsampling_at_ten_percent_on_400k_rows(tmp_path: Path) -> None:
    full, ds = _downsampling_ece(tmp_path, 400_000, 0.1)
    assert abs(ds["ece"] - full["ece"]) <= 0.005, (full["ece"], ds["ece"])
    assert ds["auc"] > full["auc"] - 0.01


@pytest.mark.parametrize("loss", [{"name": "focal", "options": {"gamma": 2}}, {"name": "hard_negative"},
                                  {"name": "class_balanced"}])
def test_compare_trainer_uses_the_configured_loss_and_embedding_l2(loss: dict, real_splits: dict) -> None:
    """``adsim compare`` trains with the pipeline's Trainer, whose objective comes from train.loss."""
    import torch.nn.functional as F

    from adsim.models.layers import regularization_loss
    from adsim.models.losses import build_loss
    from adsim.models.train import Trainer, build_objective
    from adsim.models.zoo import build_model

    train, val, test, schema = real_splits["criteo"]
    cfg = parse_config({"data": {"source": {"type": "synthetic"}}, "models": [{"name": "fm"}], "loss": loss,
                        "train": {"progress": False, "tensorboard": False}}, CompareConfig)
    assert cfg.train.loss.name == loss["name"]  # the top-level shorthand lands in train.loss
    model = build_model("fm", schema, embed_dim=4, l2_reg=0.1, init_std=0.5)
    trainer = Trainer(model, cfg.train, None, objective=build_objective(cfg.train, train.labels))
    opts = dict(loss.get("options", {}))
    if loss["name"] == "class_balanced":
        opts.update(n_pos=float(train.labels.sum()), n_neg=float((1 - train.labels).sum()))
    loss_fn = build_loss(loss["name"], **opts)
    batch = {"dense": torch.from_numpy(train.dense[:64]), "sparse": torch.from_numpy(train.sparse[:64])}
    y = torch.tensor(train.labels[:64])
    model.train()
    logits = model(batch)
    got = trainer.loss(logits, y)
    reg = regularization_loss(model)
    assert reg.item() > 0
    assert torch.allclose(got, loss_fn(logits.reshape(y.shape), y) + reg)
    assert not torch.allclose(got, F.binary_cross_entropy_with_logits(logits.reshape(y.shape), y) + reg)
