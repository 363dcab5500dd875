"""A scenario builds the world model it names (once, through the build cache), `--no-train`
stops with a clear error, a click-only world cannot price conversions, and CPA-constrained
pacing in a trained world keeps its realised cost per conversion at the target."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from adsim.cli import main
from adsim.config import Scenario, parse_config
from adsim.errors import ConfigError

AD_FIELDS = ["item_id", "item_cat", "item_price"]

TINY_TRAINING = {
    "name": "tiny_world",
    "data": {
        "source": {"type": "synthetic_ctcvr", "n_rows": 3000, "n_users": 400, "n_items": 30, "seed": 2},
        "labels": ["click", "conversion"],
        "dense": ["u_x0", "u_x1", "item_price"],
        "sparse": ["u_age", "u_city", "item_id", "item_cat"],
        "processed_dir": "data/processed/tiny_world",
    },
    "model": {"name": "esmm", "options": {"embed_dim": 4, "tower": [8]}},
    "train": {"epochs": 1, "batch_size": 256, "progress": False, "device": "cpu", "seed": 0},
    "calibration": {"method": "platt"},
}


@pytest.fixture()
def tiny_scenario(tmp_path, monkeypatch):
    """A bandit scenario whose world model is named by its training config (not yet built)."""
    monkeypatch.setenv("ADSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_TRAINING))
    scn = {
        "name": "tiny", "seed": 1,
        "world": {"n_users": 100, "n_ads": 5, "truth": {
            "type": "trained", "train": "tiny.yaml", "ad_fields": AD_FIELDS}},
        "candidates": [{"type": "uniform"}],
        "evaluation": {"n_rounds": 1000, "n_train_rounds": 1000, "estimators": ["ips"]},
    }
    (tmp_path / "scn.yaml").write_text(yaml.safe_dump(scn))
    return tmp_path


def test_missing_world_model_trains_once_then_reuses_the_cache(tiny_scenario, monkeypatch, capsys):
    import adsim.models.run as run_mod

    calls = []
    real = run_mod.train_run
    monkeypatch.setattr(run_mod, "train_run", lambda *a, **k: calls.append(1) or real(*a, **k))
    d = tiny_scenario
    # --no-train on an empty cache: the clear error, exit 2, nothing trained
    assert main(["run", "scn.yaml", "--no-train", "--quiet", "--out", "out0"]) == 2
    err = capsys.readouterr().err
    assert "world.truth.train: not built yet" in err and "--no-train" in err, err
    assert "Traceback" not in err and calls == []

    assert main(["run", "scn.yaml", "--quiet", "--out", "out1"]) == 0
    assert len(calls) == 1
    assert main(["run", "scn.yaml", "--quiet", "--out", "out2"]) == 0
    assert main(["run", "scn.yaml", "--no-train", "--quiet", "--out", "out3"]) == 0
    assert len(calls) == 1  # reused, not retrained
    a = (d / "out1" / "results.json").read_bytes()
    assert a == (d / "out2" / "results.json").read_bytes() == (d / "out3" / "results.json").read_bytes()

    # the Gymnasium env reaches the same cached world model (World.from_config → the cache)
    import adsim.experiments.world_models  # noqa: F401  (adsim run imports it)
    from adsim.env.envs import AdSelectionEnv

    scn = yaml.safe_load((d / "scn.yaml").read_text())
    env = AdSelectionEnv(world=scn["world"])
    assert env.world.n_actions == 5 and len(calls) == 1

    # the cached run folder is self-contained: its users, no prepared data, no temp paths
    (entry,) = [e for e in (d / "cache" / "world_model").iterdir() if e.is_dir()]
    run_dir = entry / "run"
    assert (run_dir / "world_features.json").exists() and not (entry / "processed").exists()
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["data"]["processed_dir"] == TINY_TRAINING["data"]["processed_dir"]
    for f in run_dir.iterdir():
        if f.suffix in (".json", ".yaml", ".csv"):
            assert str(entry.parent) not in f.read_text(), f


def test_training_config_missing_is_a_config_error(tiny_scenario, capsys):
    (tiny_scenario / "tiny.yaml").unlink()
    assert main(["run", "scn.yaml", "--quiet", "--out", "o"]) == 2
    assert "world.truth.train: training config 'tiny.yaml' not found" in capsys.readouterr().err


def _cpa_scenario(run, **truth):
    return parse_config({
        "name": "cpa", "seed": 5,
        "world": {"n_users": 300, "n_ads": 6, "truth": {
            "type": "trained", "run": str(run), "ad_fields": AD_FIELDS, **truth}},
        "auction": {
            "mechanism": "second_price", "market": {"type": "lognormal", "mu": -1.5, "sigma": 0.6},
            "campaigns": [{"name": "agent", "budget": 100000.0, "value_per_click": 0.0,
                           "value_per_conversion": 10.0}],
            "traffic": {"n_requests": 50000, "n_steps": 96},
        },
        "bidding": {"agent": "agent", "n_seeds": 6, "candidates": [
            {"name": "cpa", "type": "cpa_pacing", "target_cpa": 4.0, "lambda0": 0.0,
             "cpa_step_size": 0.5}]},
    }, Scenario)


def test_click_only_world_in_a_cpa_scenario_names_the_field(world_run):
    from adsim.experiments.bidding import run_bidding

    scn = _cpa_scenario(world_run, click_task="click")  # the click head only: no conversions
    with pytest.raises(ConfigError, match=r"auction.campaigns\[0\].value_per_conversion needs"
                       r" conversions.*click-only run.*world.truth.cvr_run"):
        run_bidding(scn, progress=False)


def test_cpa_pacing_keeps_realised_cpa_at_target_in_a_trained_world(world_run):
    """Over 6 days (fresh bidder each day, learning its conversion rate from its own
    conversions) the realised CPA = Σ spend / Σ conversions is within 5% of the target, while
    truthful bidding in the same world would pay about 6 per conversion."""
    from adsim.experiments.bidding import run_bidding

    run = run_bidding(_cpa_scenario(world_run), progress=False)
    days = run.days["cpa"]
    spend = sum(d.metrics["spend"] for d in days)
    conversions = sum(d.metrics["conversions"] for d in days)
    assert conversions > 1000
    print(f"realised CPA {spend / conversions:.3f} over {conversions:.0f} conversions")
    assert abs(spend / conversions / 4.0 - 1.0) < 0.05, (spend, conversions)
    assert json.dumps(run.results)  # strict JSON
    assert np.isfinite(run.leaderboard["pct_optimal"]).all()
