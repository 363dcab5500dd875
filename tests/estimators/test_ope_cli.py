"""``adsim ope`` end to end: outputs, formats, and a table of bad inputs with their messages."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from adsim.cli import main
from adsim.env.logs import BanditLog
from adsim.estimators.api import OUTPUT_FILES, evaluate, run_ope

pytestmark = pytest.mark.filterwarnings("ignore::adsim.estimators.diagnostics.OverlapWarning")

N, K = 400, 3


def _frames(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=N)
    pi0 = np.full((N, K), 1 / K)
    a = rng.integers(0, K, N)
    r = (rng.random(N) < 0.2 + 0.1 * a).astype(float)
    log = pd.DataFrame({"action": a, "reward": r, "pscore": pi0[np.arange(N), a], "x0": x})
    pi = rng.dirichlet(np.ones(K), N)
    target = pd.DataFrame(pi, columns=[f"pi_{k}" for k in range(K)])
    return log, target


@pytest.fixture
def files(tmp_path):
    log, target = _frames()
    log.to_csv(tmp_path / "log.csv", index=False)
    target.to_csv(tmp_path / "target.csv", index=False)
    return tmp_path


def _run(tmp_path, *extra):
    return main(["ope", "--log", str(tmp_path / "log.csv"), "--target",
                 str(tmp_path / "target.csv"), "--out", str(tmp_path / "out"),
                 "--reward-model", "mean", *extra])


def test_ope_writes_three_outputs(files, capsys):
    assert _run(files) == 0
    out = files / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted([*OUTPUT_FILES, "manifest.json"])
    from adsim._io import verify_manifest

    verify_manifest(out, kind="ope")  # written as a whole, manifest last
    assert _run(files) == 0  # a rerun replaces the earlier result
    table = pd.read_csv(out / "estimates.csv")
    assert {"dm", "ips", "snips", "dr", "sndr"} <= set(table["estimator"])
    report = json.loads((out / "report.json").read_text())
    assert report["n_rounds"] == N and report["overlap"]["ess"] > 0
    assert (out / "estimates.png").read_bytes()[:4] == b"\x89PNG"
    assert "overlap: ESS" in capsys.readouterr().out


def test_long_target_and_prediction_file_agree_with_wide(files, tmp_path):
    log, target = _frames()
    pi = target.to_numpy()
    rows, acts = np.nonzero(pi >= 0)
    long = pd.DataFrame({"row": rows, "action": acts, "prob": pi[rows, acts]})
    long.to_parquet(tmp_path / "long.parquet")
    q = pd.DataFrame(np.full((N, K), 0.3), columns=[f"q_{k}" for k in range(K)])
    q.to_csv(tmp_path / "q.csv", index=False)
    a = run_ope(tmp_path / "log.csv", tmp_path / "target.csv", reward_model=tmp_path / "q.csv")
    b = run_ope(tmp_path / "log.csv", tmp_path / "long.parquet", reward_model=tmp_path / "q.csv")
    assert a.table()["value"].tolist() == pytest.approx(b.table()["value"].tolist(), abs=1e-12)
    assert a.reward_model == "user predictions"


def test_python_api_matches_cli(files):
    assert _run(files) == 0
    cli_table = pd.read_csv(files / "out" / "estimates.csv")
    res = run_ope(files / "log.csv", files / "target.csv", reward_model="mean")
    assert res.table()["value"].tolist() == pytest.approx(cli_table["value"].tolist(), rel=1e-12)


def test_target_mass_on_unlogged_actions_widens_action_set_and_warns(tmp_path):
    log, _ = _frames()
    log["action"] = log["action"].clip(0, 1)  # action 2 never logged
    log.to_csv(tmp_path / "log.csv", index=False)
    pi = np.tile([0.2, 0.2, 0.6], (N, 1))
    pd.DataFrame(pi, columns=["pi_0", "pi_1", "pi_2"]).to_csv(tmp_path / "t.csv", index=False)
    with pytest.warns(UserWarning, match="never took"):
        res = run_ope(tmp_path / "log.csv", tmp_path / "t.csv", reward_model="mean",
                      estimators=["ips"])
    assert res.n_actions == 3
    assert res.diagnostics.unsupported_mass == pytest.approx(0.6)
    assert not res.report()["trusted"]


def _bad_log(**changes):
    def apply(log, target):
        for col, (row, value) in changes.items():
            if value is None:
                log = log.drop(columns=[col])
            else:
                log[col] = log[col].astype(object if isinstance(value, str) else float)
                log.loc[row, col] = value
        return log, target
    return apply


def _bad_target(fn):
    def apply(log, target):
        return log, fn(target.copy())
    return apply


def _set(t, row, col, v):
    t[col] = t[col].astype(float)
    t.loc[row, col] = v
    return t


BAD = [
    (_bad_log(pscore=(0, None)), "log column 'pscore' is missing"),
    (_bad_log(reward=(0, None)), "log column 'reward' is missing"),
    (_bad_log(pscore=(17, 0.0)), "column 'pscore' must be in (0, 1], found 0.0 at row 17"),
    (_bad_log(pscore=(5, 1.5)), "column 'pscore' must be in (0, 1], found 1.5 at row 5"),
    (_bad_log(reward=(9, np.nan)), "column 'reward': non-finite value (NaN or inf) at row 9"),
    (_bad_log(reward=(4, np.inf)), "column 'reward': non-finite value (NaN or inf) at row 4"),
    (_bad_log(action=(3, 7)), "target.csv: the target gives probabilities for 3 actions (0 … 2), but the"
     " log"),
    (_bad_log(action=(2, -1)), "column 'action': -1 at row 2 is outside the action set [0, 3)"),
    (_bad_log(action=(6, 1.5)), "column 'action': 1.5 at row 6 is not an integer"),
    (_bad_log(reward=(1, "abc")), "column 'reward' must be numeric"),
    (_bad_target(lambda t: _set(t, 11, "pi_1", t.loc[11, "pi_1"] + 0.5)),
     "columns pi_0 … pi_2: probabilities must sum to 1, row 11 sums to"),
    (_bad_target(lambda t: _set(t, 8, "pi_2", np.nan)),
     "column 'pi_2': non-finite value (NaN or inf) at row 8"),
    (_bad_target(lambda t: _set(t, 12, "pi_0", -0.1)), "column 'pi_0': negative probability -0.1 at row 12"),
    (_bad_target(lambda t: t.iloc[:-5]), "target has 395 rows; the log has 400"),
    (_bad_target(lambda t: t.drop(columns=["pi_1"])), "column 'pi_1' is missing"),
    (_bad_target(lambda t: t.rename(columns={"pi_0": "p0", "pi_1": "p1", "pi_2": "p2"})),
     "target table needs columns pi_0 … pi_{K-1}"),
]


@pytest.mark.parametrize(("mutate", "message"), BAD)
def test_bad_inputs_exit_2_with_message_and_no_outputs(tmp_path, capsys, mutate, message):
    log, target = mutate(*_frames())
    log.to_csv(tmp_path / "log.csv", index=False)
    target.to_csv(tmp_path / "target.csv", index=False)
    assert _run(tmp_path) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(("args", "message"), [
    (["--confidence", "1.5"], "--confidence must be in (0.5, 1)"),
    (["--estimators", "foo"], "unknown estimator 'foo'"),
    (["--folds", "0"], "--folds must be >= 1"),
])
def test_bad_flags(files, capsys, args, message):
    assert _run(files, *args) == 2
    assert message in capsys.readouterr().err


def test_missing_files(tmp_path, capsys):
    assert main(["ope", "--log", str(tmp_path / "nope.csv"), "--target", str(tmp_path / "t.csv"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "log file not found" in capsys.readouterr().err


def test_prediction_file_errors(files, tmp_path, capsys):
    q = pd.DataFrame(np.full((N, K), 0.3), columns=[f"q_{k}" for k in range(K)])
    q.loc[7, "q_1"] = np.nan
    q.to_csv(tmp_path / "q.csv", index=False)
    assert _run(files, "--reward-model", str(tmp_path / "q.csv")) == 2
    assert "column 'q_1': non-finite value (NaN or inf) at row 7" in capsys.readouterr().err


def test_obp_roundtrip(rng):
    log, _ = _frames()
    b = BanditLog.from_frame(log)
    fb = b.to_obp()
    assert set(fb) >= {"n_rounds", "n_actions", "action", "reward", "pscore", "context"}
    back = BanditLog.from_obp(fb)
    assert np.array_equal(back.action, b.action) and np.array_equal(back.pscore, b.pscore)
    assert np.allclose(back.context["x0"], log["x0"])
    res = evaluate(back, np.full((N, K), 1 / K), reward_model="mean", estimators=["ips", "dr"])
    assert len(res.estimates) == 2


def test_from_obp_errors():
    from adsim.errors import DataError

    with pytest.raises(DataError, match="bandit_feedback has no 'pscore'"):
        BanditLog.from_obp({"action": np.array([0]), "reward": np.array([1.0])})
    with pytest.raises(DataError, match="column 'pscore' must be in"):
        BanditLog.from_obp({"action": np.array([0]), "reward": np.array([1.0]),
                            "pscore": np.array([0.0]), "n_actions": 2})


def test_scenario_target_reproduces_the_runner(tmp_path, repo_root, capsys):
    """`adsim ope --target SCENARIO:CANDIDATE` on the runner's own log gives the runner's IPS."""
    import yaml

    scn = yaml.safe_load((repo_root / "scenarios" / "quickstart.yaml").read_text())
    scn["world"]["n_users"] = 300
    scn["candidates"] = [c for c in scn["candidates"] if c["name"] in ("uniform", "egreedy-fitted")]
    scn["evaluation"].update(n_rounds=2000, n_train_rounds=1000, n_online_rounds=0,
                             estimators=["ips", "snips"])
    path = tmp_path / "scn.yaml"
    path.write_text(yaml.safe_dump(scn))
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    board = pd.read_csv(tmp_path / "run" / "leaderboard.csv")
    for name in ("uniform", "egreedy-fitted"):
        out = tmp_path / f"ope-{name}"
        assert main(["ope", "--log", str(tmp_path / "run" / "log.parquet"), "--target",
                     f"{path}:{name}", "--out", str(out), "--estimators", "ips,snips"]) == 0
        ours = pd.read_csv(out / "estimates.csv").set_index("estimator")["value"]
        theirs = board[board["policy"] == name].set_index("estimator")["estimate"]
        assert ours["ips"] == pytest.approx(theirs["ips"], rel=1e-12)
        assert ours["snips"] == pytest.approx(theirs["snips"], rel=1e-12)
    assert main(["ope", "--log", str(tmp_path / "run" / "log.parquet"), "--target",
                 f"{path}:nobody", "--out", str(tmp_path / "x")]) == 2
    assert "no candidate named 'nobody'" in capsys.readouterr().err
