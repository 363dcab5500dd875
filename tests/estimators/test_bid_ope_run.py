"""Bid OPE end to end: a logged auction day, its parquet log, ``adsim ope`` / ``ope-bids`` /
``ope-validate`` on it, and (slow) the acceptance figures of docs/bid_ope.md."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from adsim.cli import main
from adsim.config import load_scenario, parse_config
from adsim.config.scenario import Scenario
from adsim.env.auction_world import AuctionWorld
from adsim.estimators.bids.ope import BidOPE
from adsim.experiments.bid_ope import exact_outcomes, log_day, make_target

ROOT = Path(__file__).resolve().parents[2]


def _small(tmp_path: Path, mechanism: str = "second_price", reveal: bool = False,
           exploration: dict | None = None) -> Scenario:
    scn = load_scenario(ROOT / "scenarios" / "bid_ope_validation.yaml")
    data = scn.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["world"]["n_users"] = 2000
    data["auction"]["traffic"] = {"n_requests": 20_000, "n_steps": 8}
    data["auction"]["mechanism"] = mechanism
    data["bid_ope"]["reveal_min_bid_on_loss"] = reveal
    if exploration is not None:
        data["bid_ope"]["logger"]["exploration"] = exploration
    data["bid_ope"]["validation"] = {"n_seeds": 2, "sample_sizes": [5000, 20000], "sigmas": [0.5]}
    data["bid_ope"]["budget"]["lambdas"] = [0.0, 0.5, 1.0, 1.5, 2.0]
    data["bid_ope"]["budget"]["budget"] = 1000.0
    return parse_config(data, Scenario, source="test")


@pytest.mark.parametrize(("mechanism", "reveal", "exploration"), [
    ("second_price", False, None),
    ("first_price", True, None),
    ("second_price", False, {"type": "grid", "multipliers": [0.8, 1.0, 1.1428571428571428, 1.25],
                             "probs": [0.25, 0.25, 0.25, 0.25]}),
])
def test_logged_day_estimates_agree_with_exact_truth(tmp_path, mechanism, reveal, exploration) -> None:  # noqa: ANN001
    scn = _small(tmp_path, mechanism, reveal, exploration)
    aw = AuctionWorld.from_scenario(scn)
    day = log_day(scn, aw, 0)
    log = day.log
    assert log.n_rounds == 20_000 and log.meta["requests_per_day"] == pytest.approx(20_000)
    won = log.col("won") == 1
    mb = log.frame["min_bid"].to_numpy()
    if mechanism == "second_price":  # min bid revealed exactly on wins, = price
        assert np.allclose(mb[won], log.col("price")[won]) and np.isnan(mb[~won]).all()
    else:  # first price: pay the bid; min bid revealed on losses only (reveal option)
        assert np.allclose(log.col("price")[won], log.col("bid")[won])
        assert np.isnan(mb[won]).all() and (mb[~won] > log.col("bid")[~won]).all()
    # the exact truth beside every estimator, within 4.5 standard errors (DM: model only)
    target = make_target(scn.bid_ope.targets[1], scn, aw.world.spec.design_dim)  # shaded 0.8
    truth = exact_outcomes(scn, aw, target)
    res = BidOPE(log, warn=False).evaluate(target)
    # a segmented Kaplan–Meier landscape (one per device) also recovers the truth's win rate
    if mechanism == "second_price" and exploration is None:
        seg = BidOPE(log, ["dm"], landscape="km", segment_by=["device"], warn=False)
        wins = seg.evaluate(target, outcomes=["wins"]).get("wins", "dm")
        assert abs(wins.value - truth["wins"]) < 0.01
    for e, y in zip(res.estimates, res.outcomes):
        if e.estimator == "dm":
            continue
        assert abs(e.value - truth[y]) < 4.5 * e.std_err + 1e-12, (y, e)


def test_cli_ope_dispatches_on_a_bid_log(tmp_path, capsys) -> None:  # noqa: ANN001
    scn = _small(tmp_path)
    aw = AuctionWorld.from_scenario(scn)
    day = log_day(scn, aw, 1)
    path = tmp_path / "auctions.parquet"
    day.log.to_parquet(path)
    (tmp_path / "bidder.yaml").write_text("{type: lagrangian, lambda: 0.5}\n")
    assert main(["ope", "--log", str(path), "--target", str(tmp_path / "bidder.yaml"),
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "kernel_dr" in out and "spend" in out
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["log_metadata"]["mechanism"] == "second_price"
    assert {r["outcome"] for r in rep["estimates"]} == {"value", "spend", "wins", "clicks", "conversions"}
    # ope-bids with a budget paces the Lagrangian rule from the same log
    (tmp_path / "targets.yaml").write_text(
        "targets:\n  - {type: shaded, factor: 0.8}\n  - {name: t, type: truthful}\n")
    assert main(["ope-bids", "--log", str(path), "--target", str(tmp_path / "targets.yaml"),
                 "--out", str(tmp_path / "out2"), "--budget", "600", "--estimators", "dr"]) == 0
    assert "λ̂" in capsys.readouterr().out
    rep2 = json.loads((tmp_path / "out2" / "report.json").read_text())
    assert rep2["budget"]["lambda_hat"] > 0  # truthful bidding would overspend 600
    assert rep2["budget"]["spend"] == pytest.approx(600, rel=0.02)
    assert (tmp_path / "out2" / "budget_curve.csv").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "{target}"], "column 'propensity': 0 at row 3 must be > 0"),
    (["--target", "{target}", "--exploration", "gaussian:1"], "--exploration 'gaussian:1'"),
])
def test_cli_bad_bid_log_exits_2(tmp_path, capsys, args, message) -> None:  # noqa: ANN001
    scn = _small(tmp_path)
    aw = AuctionWorld.from_scenario(scn)
    log = log_day(scn, aw, 2).log
    df = log.frame.copy()
    df.loc[3, "propensity"] = 0.0
    df.drop(columns=["step"]).to_csv(tmp_path / "bad.csv", index=False)
    (tmp_path / "t.yaml").write_text("{type: truthful}\n")
    argv = ["ope-bids", "--log", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o"),
            "--mechanism", "second_price", "--exploration", "lognormal:0.3"]
    argv += [a.format(target=tmp_path / "t.yaml") for a in args]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_ope_validate_on_a_bid_scenario(tmp_path, capsys, monkeypatch) -> None:  # noqa: ANN001
    scn = _small(tmp_path)
    data = scn.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["auction"]["traffic"]["n_requests"] = 8000
    data["bid_ope"]["validation"]["sample_sizes"] = [3000, 8000]
    data["bid_ope"]["outcomes"] = ["value", "spend"]
    data["bid_ope"]["budget"]["budget"] = 250.0  # truthful bidding spends ~350 a day here
    scn = parse_config(data, Scenario, source="test")
    path = tmp_path / "scn.yaml"
    import yaml

    path.write_text(yaml.safe_dump(scn.model_dump(mode="json", by_alias=True, exclude_none=True)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["ope-validate", str(path), "--seeds", "2", "--out", str(tmp_path / "v"),
                     "--quiet"]) == 0
    names = {p.name for p in (tmp_path / "v").iterdir()}
    assert {"summary.csv", "estimates.csv", "budget.csv", "report.json", "error_vs_n.png",
            "coverage.png", "error_vs_sigma.png", "budget.png", "manifest.json"} <= names
    rep = json.loads((tmp_path / "v" / "report.json").read_text())
    b = rep["budget"][0]
    # λ̂ is where the estimated spend meets the budget; the rule at λ̂ is estimated again
    assert b["est_spend"] == pytest.approx(b["budget"], rel=0.02)
    assert b["lambda_hat"] > 0 and b["opt_spend"] <= b["budget"] * (1 + 1e-9)
    # same scenario and seeds → byte-identical results, whatever the number of workers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["ope-validate", str(path), "--seeds", "2", "--out", str(tmp_path / "v2"),
                     "--jobs", "2", "--quiet"]) == 0
    for name in ("summary.csv", "estimates.csv", "budget.csv", "report.json"):
        assert (tmp_path / "v" / name).read_bytes() == (tmp_path / "v2" / name).read_bytes(), name
    assert main(["ope-validate", str(path), "--estimators", "dr"]) == 2


@pytest.mark.slow
def test_acceptance_figures_over_600_seeds(tmp_path) -> None:  # noqa: ANN001
    """docs/bid_ope.md: kernel DR on the shaded target's value (σ = 0.3, n = 100k, second price):
    relative RMSE <= 2%, 95% coverage in [93%, 97%] over >= 200 seeds (this test: the 600 seeds
    0-599); the budget-paced day's estimated value: unbiased (|mean relative error| <= 1%) with
    relative RMSE <= 3%.

    All three 200-seed blocks are reported in docs/bid_ope.md: seeds 0-199 alone give RMSE 1.52%
    and coverage 92.0% ± 1.9, which misses [93%, 97%] (seeds 200-399: 94.5%, 400-599: 96.0%;
    all 600: 94.2% ± 1.0, which the test asserts). Not a
    wrong standard error: ``benchmarks/bid_ope_interval_check.py`` shows the reported s.e. equals
    the closed-form sampling s.d. of the estimate to within 0.1%, and an oracle interval
    ``V̂ ± 1.96 sd_exact`` also covers 92.0% of those 200 days (their estimates spread 8.5% wider
    than the exact s.d., p = 0.045); an exact 95% interval lands in [93%, 97%] over 200 days with
    probability 0.86 only (binomial). Budget (600 days): mean relative error −0.06%, RMSE 1.59%
    (93.7% of single days within 3%)."""
    from adsim.experiments.bid_ope_validation import run_bid_validation

    scn = load_scenario(ROOT / "scenarios" / "bid_ope_validation.yaml")
    val = scn.bid_ope.validation.model_copy(update={"sample_sizes": [100_000], "sigmas": []})
    scn = scn.model_copy(update={"bid_ope": scn.bid_ope.model_copy(update={"validation": val})})
    res = run_bid_validation(scn, n_seeds=600, n_jobs=2)
    sm = res.summary
    row = sm[(sm["target"] == "shaded-0.8") & (sm["outcome"] == "value")
             & (sm["estimator"] == "kernel_dr")].iloc[0]
    assert row["rel_rmse"] <= 0.02
    assert 0.93 <= row["coverage"] <= 0.97
    err = res.budget["rel_err_value"]
    assert abs(err.mean()) <= 0.01
    assert float(np.sqrt(np.mean(err**2))) <= 0.03


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["bid_ope"].update(campaign="nobody"), "campaign 'nobody' is not a campaign"),
    (lambda d: d["auction"].update(mechanism="gsp", n_slots=2), "one-slot second_price or first_price"),
    (lambda d: d["bid_ope"]["logger"].update(exploration={"type": "lognormal", "sigma": 0}),
     "must be > 0"),
    (lambda d: d["bid_ope"]["logger"].update(
        exploration={"type": "grid", "multipliers": [1, 1], "probs": [0.5, 0.5]}), "distinct"),
    (lambda d: d["bid_ope"]["budget"].update(lambdas=[1.0, 0.5]), "strictly ascending"),
])
def test_bid_ope_config_errors(tmp_path, edit, message) -> None:  # noqa: ANN001
    from adsim.errors import ConfigError

    data = _small(tmp_path).model_dump(mode="json", by_alias=True, exclude_none=True)
    edit(data)
    with pytest.raises(ConfigError, match="bid_ope|auction") as err:
        parse_config(data, Scenario, source="scn.yaml")
    assert message in str(err.value)
