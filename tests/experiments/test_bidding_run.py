"""The bidding leaderboard: `adsim run` on bidding scenarios, reproducibility, config errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from adsim.cli import main
from adsim.config import Scenario, load_scenario, parse_config
from adsim.errors import ConfigError
from adsim.experiments.bidding import METRICS, run_bidding


def small(**bidding: Any) -> dict[str, Any]:
    return {
        "name": "small-bidding", "seed": 4,
        "world": {"n_users": 300, "n_ads": 4, "n_dense": 3,
                  "sparse_fields": [{"name": "region", "vocab_size": 3}]},
        "auction": {
            "market": {"type": "lognormal", "mu": -3.4, "sigma": 0.6},
            "campaigns": [{"name": "a", "budget": 8.0},
                          {"name": "b", "budget": 5.0, "targeting": {"region": [0]}}],
            "traffic": {"n_requests": 4000, "n_steps": 16},
        },
        "bidding": {"n_seeds": 2, "candidates": [{"type": "truthful"}, {"type": "dual_pacing"}],
                    **bidding},
    }


def test_run_writes_the_leaderboard_and_is_reproducible(tmp_path: Path) -> None:
    scn = parse_config(small(), Scenario)
    a = run_bidding(scn, tmp_path / "a", progress=False)
    run_bidding(scn, tmp_path / "b", progress=False)
    for name in ("leaderboard.csv", "results.json", "spend.png", "lambda.png", "regret.png",
                 "report.md"):
        assert (tmp_path / "a" / name).stat().st_size > 0, name
    assert (tmp_path / "a" / "results.json").read_bytes() == (tmp_path / "b" / "results.json").read_bytes()
    board = pd.read_csv(tmp_path / "a" / "leaderboard.csv")
    for m in METRICS:
        assert m in board.columns and f"{m}_ci" in board.columns
    dual = board.set_index("policy").loc["dual_pacing"]
    assert dual["pct_optimal"] <= 100.0 + 1e-6 and dual["spend"] <= 8.0 + 1e-9
    assert np.isclose(dual["regret"], dual["hindsight_value"] - dual["value"])
    assert "dual_pacing" in a.table()


def test_apply_to_all_controls_every_campaign(tmp_path: Path) -> None:
    scn = parse_config(small(apply_to="all"), Scenario)
    run = run_bidding(scn, None, progress=False)
    day = run.days["dual_pacing"][0]
    assert len(day.per_campaign) == 2
    assert day.metrics["spend"] == pytest.approx(sum(c["spend"] for c in day.per_campaign))
    assert all(c["spend"] <= c["budget"] + 1e-9 for c in day.per_campaign)


def test_adsim_run_dispatches_bidding_scenarios(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(small()))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {r["policy"] for r in res["leaderboard"]} == {"truthful", "dual_pacing"}


@pytest.mark.parametrize("change, message", [
    ({"auction": None}, "bidding: needs an 'auction' section"),
    ({"bidding": {"agent": "zzz", "candidates": [{"type": "truthful"}]}},
     "bidding: agent 'zzz' is not a campaign; campaigns are ['a', 'b']"),
    ({"bidding": {"candidates": [{"type": "truthful"}, {"type": "truthful"}]}},
     "same name 'truthful'"),
    ({"bidding": {"candidates": [{"type": "greedy"}]}}, "bidding.candidates[0]: unknown type 'greedy'"),
    ({"bidding": {"candidates": [{"type": "dual_pacing", "step_size": -1}]}},
     "bidding.candidates[0].step_size: must be > 0, got -1"),
    ({"bidding": {"candidates": []}}, "bidding.candidates: must have at least 1 item(s)"),
    ({"bidding": {"candidates": [{"type": "cpa_pacing"}]}},
     "bidding.candidates[0].target_cpa: is required but missing"),
    ({"logging_policy": {"type": "linucb"}}, "type 'linucb' learns from a training log"),
])
def test_config_errors(change: dict[str, Any], message: str) -> None:
    data = {**small(), **change}
    with pytest.raises(ConfigError) as err:
        parse_config(data, Scenario, source="s.yaml")
    assert message in str(err.value)


@pytest.mark.parametrize("name", ["budget_pacing", "ts_lagrangian", "rl_bidding", "multi_agent_pacing"])
def test_shipped_bidding_scenarios_validate(repo_root: Path, name: str) -> None:
    scn = load_scenario(repo_root / "scenarios" / f"{name}.yaml")
    assert scn.bidding is not None and scn.auction is not None


def test_ts_lagrangian_learns_while_it_bids(tmp_path: Path) -> None:
    data = small(candidates=[{"name": "ts", "type": "ts_lagrangian"},
                             {"name": "oracle", "type": "dual_pacing"}])
    data["auction"]["campaigns"] = [{"name": "a", "budget": 8.0}]
    data["auction"]["traffic"] = {"n_requests": 20_000, "n_steps": 48}
    run = run_bidding(parse_config(data, Scenario), None, progress=False)
    board = run.leaderboard.set_index("policy")
    assert board.loc["ts", "spend"] <= 8.0 + 1e-9
    assert board.loc["ts", "pct_optimal"] > 60.0
