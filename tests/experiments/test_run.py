"""`adsim run`: the quickstart end to end, reproducibility, and the results files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from adsim.cli import main
from adsim.config import load_scenario
from adsim.experiments.runner import run_scenario

SMALL = """\
name: small
seed: 3
world: {n_users: 300, n_ads: 4, n_dense: 3}
logging_policy: {type: softmax, temperature: 1.0, model: noisy_truth}
candidates:
  - {type: uniform}
  - {name: eg, type: epsilon_greedy, epsilon: 0.2, model: fitted}
  - {name: ts, type: thompson, n_samples: 50}
evaluation: {n_rounds: 3000, n_train_rounds: 2000, estimators: [dm, ips, snips, dr]}
"""


@pytest.fixture()
def small(tmp_path: Path) -> Path:
    p = tmp_path / "small.yaml"
    p.write_text(SMALL)
    return p


def test_quickstart_end_to_end_console_script(repo_root: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("adsim")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "adsim.cli"]
    out = tmp_path / "qs"
    proc = subprocess.run(
        [*cmd, "run", str(repo_root / "scenarios" / "quickstart.yaml"), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("leaderboard.csv", "results.json", "log.parquet", "estimates.png", "report.md"):
        assert (out / name).stat().st_size > 0, name
    assert "true value" in proc.stdout and "thompson" in proc.stdout
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["estimator"]) == {"ips", "snips", "dr"}
    assert board.groupby("policy")["true_value"].nunique().eq(1).all()
    # DR with a reasonable reward model is close to the truth on this scenario
    dr = board[board["estimator"] == "dr"]
    assert (dr["error"].abs() < 4 * dr["std_err"]).all()
    results = json.loads((out / "results.json").read_text())
    assert results["seed"] == 7 and results["scenario"]["name"] == "quickstart"
    assert (out / "estimates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_is_byte_identical_other_seed_differs(small: Path, tmp_path: Path) -> None:
    outs = []
    for i, seed in enumerate(["3", "3", "4"]):
        out = tmp_path / f"r{i}"
        assert main(["run", str(small), "--out", str(out), "--seed", seed, "--quiet"]) == 0
        outs.append(out)
    for name in ("results.json", "leaderboard.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
        assert (outs[0] / name).read_bytes() != (outs[2] / name).read_bytes(), name
    assert json.loads((outs[2] / "results.json").read_text())["seed"] == 4


def test_log_parquet_round_trips(small: Path, tmp_path: Path) -> None:
    from adsim.env.logs import read_log

    run = run_scenario(load_scenario(small), tmp_path / "o", progress=False)
    log = read_log(tmp_path / "o" / "log.parquet")
    assert log.n_rounds == 3000 and log.n_actions == 4
    assert log.expected_reward is not None and log.context is not None
    assert {"user_id", "x0", "region", "device"} <= set(log.context.columns)
    assert run.results["log"]["n_rounds"] == 3000


def test_leaderboard_is_ranked_by_true_value(small: Path) -> None:
    run = run_scenario(load_scenario(small), None, progress=False)
    board = run.leaderboard
    per_policy = board.groupby("rank")["true_value"].first()
    assert per_policy.is_monotonic_decreasing
    assert {"logger (softmax)", "uniform", "eg", "ts"} == set(board["policy"])
    assert "true value" in run.table()


def test_bad_seed_flag_exits_2(small: Path, capsys) -> None:
    assert main(["run", str(small), "--seed", "-1", "--quiet"]) == 2
    assert "--seed must be >= 0" in capsys.readouterr().err


def test_failed_run_leaves_no_partial_files(small: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.replace("n_ads: 4", "n_ads: 1"))
    out = tmp_path / "never"
    assert main(["run", str(bad), "--out", str(out), "--quiet"]) == 2
    assert not out.exists()


def test_console_script_is_installed() -> None:
    assert shutil.which("adsim") or Path(sys.executable).with_name("adsim").exists()
