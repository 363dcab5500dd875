"""Closing the loop end to end on a tiny budget: world model → logs → retrained CTR model."""

from __future__ import annotations

import json

import pytest
import yaml

from adsim.config import parse_config


def _tiny(repo_root, tmp_path):
    scn = yaml.safe_load((repo_root / "scenarios" / "world_model.yaml").read_text())
    scn["world"].update(n_users=100, n_ads=5)
    del scn["world"]["truth"]["train"]
    scn["world"]["truth"]["run"] = str(tmp_path / "world")
    (tmp_path / "scn.yaml").write_text(yaml.safe_dump(scn))
    data = yaml.safe_load((repo_root / "configs" / "world_loop.yaml").read_text())
    data["scenario"] = str(tmp_path / "scn.yaml")
    wm = yaml.safe_load((repo_root / "configs" / "world_model_esmm.yaml").read_text())
    wm["data"]["source"].update(n_rows=4000, n_users=500, n_items=40)
    wm["data"]["processed_dir"] = str(tmp_path / "wm_processed")
    wm["train"].update(epochs=2, batch_size=128, lr=0.01, progress=False, tensorboard=False,
                       t0_epochs=2)
    wm["calibration"] = {"method": "platt"}
    data["world_model"] = wm
    data["n_rounds"] = 4000
    data["retrain"]["train"].update(epochs=2, batch_size=128, progress=False, tensorboard=False,
                                    t0_epochs=2)
    data["retrain"]["calibration"] = {"method": "platt"}
    return data


def test_shipped_configs_validate(repo_root):
    from adsim.config import load_config, load_scenario
    from adsim.experiments.world_loop import WorldLoopConfig

    cfg = load_config(repo_root / "configs" / "world_loop.yaml", WorldLoopConfig)
    scn = load_scenario(repo_root / cfg.scenario)
    assert scn.world.truth.type == "trained"


@pytest.mark.slow
def test_world_loop_end_to_end(repo_root, tmp_path):
    from adsim.experiments.world_loop import WorldLoopConfig, run_world_loop

    cfg = parse_config(_tiny(repo_root, tmp_path), WorldLoopConfig)
    rep = run_world_loop(cfg, tmp_path / "out")
    r = rep["retrained"]
    assert 0.55 < r["bayes_auc"] <= 1.0, r  # the world model learned something
    assert r["auc"] <= r["bayes_auc"] + 0.02  # a learned model cannot beat the truth (noise aside)
    assert (tmp_path / "out" / "report.json").exists()
    assert json.loads((tmp_path / "out" / "report.json").read_text())["simulation"]["n_rounds"] == 4000
