"""`adsim run` on an auction scenario: files, table, byte-identical reruns."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from adsim.cli import main

SMALL = """\
name: small_auction
seed: 5
world: {n_users: 300, n_ads: 6}
auction:
  mechanism: gsp
  n_slots: 2
  ranking: ecpm
  market: {type: bidders, n_bidders: 3}
  conversion: {base_cvr: 0.2, delay_mean_hours: 1.0}
  campaigns:
    - {name: a, budget: 3.0, value_per_click: 2.0}
    - {name: b, budget: 3.0, value_per_click: 2.0, bidder: {type: constant_pacing}}
  traffic: {n_requests: 4000, n_steps: 12}
"""


@pytest.fixture()
def small(tmp_path: Path) -> Path:
    p = tmp_path / "small.yaml"
    p.write_text(SMALL)
    return p


def test_auction_run_writes_results_and_is_reproducible(
    small: Path, tmp_path: Path, capsys
) -> None:
    outs = [tmp_path / "r1", tmp_path / "r2", tmp_path / "r3"]
    assert main(["run", str(small), "--out", str(outs[0]), "--quiet"]) == 0
    assert main(["run", str(small), "--out", str(outs[1])]) == 0
    printed = capsys.readouterr().out
    assert "pct_of_optimal" in printed and "constant_pacing" in printed
    assert main(["run", str(small), "--out", str(outs[2]), "--seed", "6", "--quiet"]) == 0
    for name in ("results.json", "campaigns.csv", "steps.csv", "auction_day.png"):
        assert (outs[0] / name).stat().st_size > 0
    for name in ("results.json", "campaigns.csv", "steps.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    assert (outs[0] / "results.json").read_bytes() != (outs[2] / "results.json").read_bytes()
    res = json.loads((outs[0] / "results.json").read_text())
    assert res["seed"] == 5 and res["mechanism"] == "gsp"
    camp = pd.read_csv(outs[0] / "campaigns.csv")
    assert (camp["spend"] <= camp["budget"] + 1e-9).all()
    assert ((camp["pct_of_optimal"] > 0) & (camp["pct_of_optimal"] <= 100.0 + 1e-6)).all()
