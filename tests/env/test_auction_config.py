"""Auction scenario sections: invalid inputs give one path-named message and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from adsim.cli import main
from adsim.config import load_scenario

HEAD = "name: a\nworld: {n_ads: 4}\n"
CAMP = "  campaigns: [{name: c}]\n"

BAD = [
    ("name: a\n", "candidates: must have at least 1 item(s)"),
    (HEAD + "auction:\n  mechanism: dutch\n" + CAMP, "auction.mechanism: must be one of"),
    (HEAD + "auction:\n  mechanism: second_price\n  n_slots: 3\n" + CAMP,
     "auction: mechanism 'second_price' sells one slot"),
    (HEAD + "auction:\n  mechanism: gsp\n  n_slots: 2\n  examination: [0.5, 0.9]\n" + CAMP,
     "non-increasing"),
    (HEAD + "auction:\n  mechanism: gsp\n  n_slots: 2\n  examination: [1.0]\n" + CAMP,
     "examination needs 2 entries"),
    (HEAD + "auction:\n  reserve: -1\n" + CAMP, "auction.reserve: must be >= 0"),
    (HEAD + "auction:\n  ranking: cpa\n" + CAMP, "auction.ranking: must be one of"),
    (HEAD + "auction:\n  campaigns: []\n", "auction.campaigns: must have at least 1 item(s)"),
    (HEAD + "auction:\n  campaigns: [{name: c, budget: 0}]\n",
     "auction.campaigns[0].budget: must be > 0"),
    (HEAD + "auction:\n  campaigns: [{name: c}, {name: c}]\n", "two campaigns are named 'c'"),
    (HEAD + "auction:\n  campaigns: [{name: c, ad: 9}]\n",
     "campaigns[0].ad is 9 but world.n_ads is 4"),
    (HEAD + "auction:\n  campaigns: [{name: c, targeting: {planet: [1]}}]\n",
     "targeting: unknown field 'planet'"),
    (HEAD + "auction:\n  campaigns: [{name: c, targeting: {region: [99]}}]\n",
     "targeting.region: values must be a non-empty list in [0, 8)"),
    (HEAD + "auction:\n  campaigns: [{name: c, bidder: {type: psychic}}]\n",
     "auction.campaigns[0].bidder: unknown type 'psychic'"),
    (HEAD + "auction:\n  market: {type: auctioneers}\n" + CAMP, "auction.market: unknown type"),
    (HEAD + "auction:\n  market: {type: bidders, n_bidders: 5}\n" + CAMP,
     "market.n_bidders (5) + campaigns (1) need that many world ads"),
    (HEAD + "auction:\n  market: {type: lognormal, sigma: -1}\n" + CAMP,
     "auction.market.sigma: must be >= 0"),
    (HEAD + "auction:\n  traffic: {n_steps: 0}\n" + CAMP, "auction.traffic.n_steps: must be >= 1"),
    (HEAD + "auction:\n  traffic: {diurnal: [0, 0]}\n" + CAMP,
     "auction.traffic.diurnal: rates must be >= 0 with a positive sum"),
    (HEAD + "auction:\n  conversion: {base_cvr: 1.5}\n" + CAMP,
     "auction.conversion.base_cvr: must be < 1"),
    (HEAD + "auction:\n  speed: 3\n" + CAMP, "auction.speed: unknown key"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_auction_scenario(tmp_path: Path, capsys, text: str, message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["second_price", "first_price", "gsp_multislot", "budget_day"])
def test_shipped_auction_scenarios_validate(repo_root: Path, name: str) -> None:
    scn = load_scenario(repo_root / "scenarios" / f"{name}.yaml")
    assert scn.auction is not None and scn.candidates == []
