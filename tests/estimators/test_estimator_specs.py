"""Parameterised estimators (``switch_dr:lambda=5``, SLOPE grids): parsing, errors, the CLI, obp
agreement at finite λ, and the SLOPE interval flag."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adsim.cli import main
from adsim.env.logs import BanditLog
from adsim.errors import AdsimError, DataError
from adsim.estimators.api import DEFAULT_ESTIMATORS, evaluate
from adsim.estimators.cli import parse_estimators_flag
from adsim.estimators.registry import parse_estimator_spec, split_specs

pytestmark = pytest.mark.filterwarnings("ignore::adsim.estimators.diagnostics.OverlapWarning")

REF = json.loads((Path(__file__).parent / "data" / "obp_reference.json").read_text())


@pytest.mark.parametrize(("spec", "name", "params", "label"), [
    ("ips", "ips", {}, "ips"),
    ("switch_dr:lambda=5", "switch_dr", {"lambda_": 5.0}, "switch_dr(lambda=5)"),
    ("dr_os:lambda=100", "dr_os", {"lambda_": 100.0}, "dr_os(lambda=100)"),
    ("dr_os:lambda=inf", "dr_os", {"lambda_": float("inf")}, "dr_os(lambda=inf)"),
    ("ips:clip=10", "ips", {"clip": 10.0}, "ips(clip=10)"),
    ("switch_dr_slope:lambdas=[inf,100,10,1]", "switch_dr_slope",
     {"lambdas": (float("inf"), 100.0, 10.0, 1.0)}, "switch_dr_slope(lambdas=[inf,100,10,1])"),
    ("dr_os_slope:lambdas=1|10|inf:delta=0.05", "dr_os_slope",
     {"lambdas": (1.0, 10.0, float("inf")), "delta": 0.05},
     "dr_os_slope(lambdas=[1,10,inf],delta=0.05)"),
])
def test_specs_parse(spec, name, params, label):
    sp = parse_estimator_spec(spec)
    assert sp.name == name and dict(sp.params) == params and sp.label == label


@pytest.mark.parametrize(("spec", "message"), [
    ("foo", "unknown estimator 'foo'; choose from dm, dr, dr_os"),
    ("switch_dr:lamda=5", "switch_dr has no parameter 'lamda'; valid parameters: lambda"),
    ("switch_dr:lambda=abc", "switch_dr:lambda=abc is not a number (inf is allowed)"),
    ("switch_dr:lambda=-1", "switch_dr:lambda: lambda must be >= 0, got -1.0"),
    ("switch_dr:lambda", "switch_dr: 'lambda' is not param=value; valid parameters: lambda"),
    ("dm:lambda=3", "dm has no parameter 'lambda'; it takes no parameters"),
    ("ips:clip=0", "ips:clip: clip must be > 0, got 0.0"),
    ("switch_dr_slope:lambdas=[a,b]", "is not a number list such as [inf,100,10,1]"),
    ("dr_os_slope:delta=2", "delta must be in (0, 1), got 2.0"),
])
def test_bad_specs_name_the_problem(spec, message):
    with pytest.raises(ValueError) as err:
        parse_estimator_spec(spec)
    assert message in str(err.value)
    with pytest.raises(AdsimError) as flag_err:
        parse_estimators_flag(f"ips,{spec}")
    assert str(flag_err.value).startswith(f"--estimators {spec!r}: ")


def test_grid_commas_stay_inside_brackets():
    assert split_specs("ips, switch_dr_slope:lambdas=[inf,10,1],dr_os:lambda=100") == [
        "ips", "switch_dr_slope:lambdas=[inf,10,1]", "dr_os:lambda=100"]


@pytest.mark.parametrize("case", range(len(REF["bandit"])))
def test_finite_lambda_specs_match_obp(case):
    """Through the same door as ``adsim ope --estimators``: every finite λ of the obp fixture."""
    c = REF["bandit"][case]
    inp, want = c["inputs"], c["values"]
    pos = inp["position"]
    log = BanditLog(np.array(inp["action"]), np.array(inp["reward"]), np.array(inp["pscore"]),
                    inp["n_actions"], position=None if pos is None else np.array(pos))
    specs, keys = [], []
    for kind in ("switch_dr", "dr_os"):
        for lam in REF["lambdas"][kind]:
            if lam != "inf" and float(lam) > 0:
                specs.append(f"{kind}:lambda={lam}")
                keys.append(f"{kind}@{float(lam)}")
    assert len(specs) >= 8
    res = evaluate(log, np.array(inp["action_dist"]), np.array(inp["q_hat"]),
                   estimators=specs, warn=False)
    for est, key in zip(res.estimates, keys):
        assert abs(est.value - want[key]) <= 1e-12 * max(1.0, abs(want[key])), (key, est.value)
        assert est.estimator.startswith(key.split("@")[0] + "(lambda=")


def _log(n=3000, k=4, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, k, n)
    r = (rng.random(n) < 0.2 + 0.1 * a).astype(float)
    return BanditLog(a, r, np.full(n, 1 / k), k), rng.dirichlet(np.ones(k), n)


def test_finite_lambda_differs_from_bare_name_and_limits_hold():
    log, pi = _log()
    q = np.full((log.n_rounds, 4), 0.3)
    res = evaluate(log, pi, q, estimators=["switch_dr", "switch_dr:lambda=0.5", "dr",
                                           "dr_os", "dr_os:lambda=100", "dm"], warn=False)
    v = {e.estimator: e.value for e in res.estimates}
    assert v["switch_dr"] == v["dr"]  # bare name: λ = ∞
    assert v["dr_os"] == v["dm"]  # bare name: λ = 0
    assert v["switch_dr(lambda=0.5)"] != v["dr"] and v["dr_os(lambda=100)"] != v["dm"]


def test_evaluate_rejects_bad_spec_with_data_error():
    log, pi = _log()
    with pytest.raises(DataError, match="estimator 'dr_os:lamda=1': dr_os has no parameter"):
        evaluate(log, pi, np.zeros((log.n_rounds, 4)), estimators=["dr_os:lamda=1"])


def test_slope_not_default_and_flagged_when_asked(tmp_path, capsys):
    assert not any("slope" in e for e in DEFAULT_ESTIMATORS)
    log, pi = _log()
    pd.DataFrame({"action": log.action, "reward": log.reward, "pscore": log.pscore}).to_csv(
        tmp_path / "log.csv", index=False)
    pd.DataFrame(pi, columns=[f"pi_{k}" for k in range(4)]).to_csv(tmp_path / "t.csv", index=False)
    args = ["ope", "--log", str(tmp_path / "log.csv"), "--target", str(tmp_path / "t.csv"),
            "--reward-model", "mean", "--out", str(tmp_path / "o"), "--estimators"]
    assert main(args + ["dr,switch_dr:lambda=5,switch_dr_slope:lambdas=[inf,10,1]"]) == 0
    cap = capsys.readouterr()
    assert "switch_dr_slope(lambdas=[inf,10,1]) *" in cap.out and "switch_dr(lambda=5)" in cap.out
    assert "dr *" not in cap.out
    assert "warning: switch_dr_slope(lambdas=[inf,10,1]): interval treats the λ that SLOPE selected as fixed" in cap.err
    table = pd.read_csv(tmp_path / "o" / "estimates.csv", keep_default_na=False)
    notes = dict(zip(table.estimator, table.interval_note))
    assert notes["switch_dr_slope(lambdas=[inf,10,1])"].startswith("interval treats")
    assert notes["dr"] == "" and notes["switch_dr(lambda=5)"] == ""
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert len(report["interval_warnings"]) == 1


@pytest.mark.parametrize(("value", "message"), [
    ("switch_dr:lamda=5", "--estimators 'switch_dr:lamda=5': switch_dr has no parameter 'lamda';"
                          " valid parameters: lambda"),
    ("ips,,", None),
    ("bogus:x=1", "--estimators 'bogus:x=1': unknown estimator 'bogus'"),
])
def test_cli_bad_estimator_flag_exits_2(tmp_path, capsys, value, message):
    log, pi = _log(300)
    pd.DataFrame({"action": log.action, "reward": log.reward, "pscore": log.pscore}).to_csv(
        tmp_path / "log.csv", index=False)
    pd.DataFrame(pi, columns=[f"pi_{k}" for k in range(4)]).to_csv(tmp_path / "t.csv", index=False)
    code = main(["ope", "--log", str(tmp_path / "log.csv"), "--target", str(tmp_path / "t.csv"),
                 "--reward-model", "mean", "--out", str(tmp_path / "o"), "--estimators", value])
    err = capsys.readouterr().err
    if message is None:  # empty items are ignored
        assert code == 0
    else:
        assert code == 2 and message in err and "Traceback" not in err
