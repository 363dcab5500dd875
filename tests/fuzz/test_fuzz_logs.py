"""Fuzzing the OPE door (``adsim ope``): hostile logs, targets, reward-model files and flags.

Every case ends in exit 0 with finite estimates, or exit 2 with one ``error:`` line naming the
column/row/file and no output folder — never a traceback, never NaN with exit 0. Memory is
bounded: sizes a file declares are checked against the log and ``ADSIM_MAX_MEMORY_GB`` before
anything is allocated (one subprocess runs the allocation-bomb cases under an address-space limit).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fuzz_helpers import cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

N, K = 120, 3
REPO = Path(__file__).resolve().parents[2]


def _log(seed: int = 0, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"action": rng.integers(0, K, n), "reward": (rng.random(n) < 0.3).astype(float),
                         "pscore": np.full(n, 1 / K), "x0": rng.normal(size=n), "seg": rng.integers(0, 4, n)})


def _target(k: int = K, n: int = N, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.dirichlet(np.ones(k), n), columns=[f"pi_{j}" for j in range(k)])


def _write(df: pd.DataFrame, path: Path, meta: bytes | None = None) -> Path:
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        table = pa.Table.from_pandas(df, preserve_index=False)
        if meta is not None:
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"adsim": meta})
        pq.write_table(table, path)
    return path


def _ope(tmp: Path, log: pd.DataFrame | Path, target: pd.DataFrame | None = None, *extra: str,
         fmt: str = ".csv", meta: bytes | None = None) -> tuple[int, str, Path]:
    lp = log if isinstance(log, Path) else _write(log, tmp / f"log{fmt}", meta)
    tp = _write(_target() if target is None else target, tmp / "target.csv")
    out = tmp / "out"
    code, _, err = cli("ope", "--log", str(lp), "--target", str(tp), "--out", str(out), "--reward-model", "mean",
                       *extra)
    return code, err, out


def _cell(col: str, row: int, value: object) -> pd.DataFrame:
    df = _log()
    df[col] = df[col].astype(object if isinstance(value, str) or value is None else float)
    df.loc[row, col] = value
    return df


BAD = [
    ("context NaN", _cell("x0", 5, math.nan), None, (), "context column 'x0': NaN (missing) at row 5"),
    ("context inf", _cell("x0", 6, math.inf), None, (), "context column 'x0': inf at row 6"),
    ("context 1e308", _cell("x0", 7, 1e308), None, (), "context column 'x0': 1e+308 at row 7 is beyond"),
    ("position text", _log().assign(position="top"), None, (), "column 'position' must hold whole numbers"),
    ("position NaN", _cell("reward", 0, 0.0).assign(position=[0.0] * 3 + [math.nan] + [0.0] * (N - 4)), None, (),
     "column 'position': nan at row 3 is not a whole number"),
    ("position 1e12", _log().assign(position=10**12), None, (), "column 'position': 1000000000000 at row 0"),
    ("pscore 1e-300", _cell("pscore", 4, 1e-300), None, (), "column 'pscore': 1e-300 at row 4 is below 1e-12"),
    ("reward 1e308", _cell("reward", 4, 1e308), None, (), "column 'reward': 1e+308 at row 4 is beyond ±1e+12"),
    ("reward -inf", _cell("reward", 2, -math.inf), None, (), "column 'reward': non-finite value"),
    ("action 1e300", _cell("action", 2, 1e300), None, (), "column 'action': 1e+300 at row 2 is beyond the"),
    ("action text", _cell("action", 2, "ad7"), None, (), "column 'action' must be numeric"),
    ("one row", _log().head(1), _target(n=1), (), "the log has 1 row; off-policy estimates need at least 2"),
    ("2-column target on 3-action log", _log(), _target(k=2), (),
     "target.csv: the target gives probabilities for 2 actions (0 … 1), but the log"),
    ("long target huge action", _log(),
     pd.DataFrame({"row": np.arange(N), "action": [0] * 3 + [10**12] + [0] * (N - 4), "prob": 1.0}), (),
     "declares 1,000,000,000,001 actions; at most 1,000,000"),
    ("long target inf action", _log(),
     pd.DataFrame({"row": np.arange(N), "action": [0.0] * 3 + [math.inf] + [0.0] * (N - 4), "prob": 1.0}), (),
     "target column 'action': non-finite value (NaN or inf) at row 3"),
    ("long target huge position", _log().assign(action=0),
     pd.DataFrame({"row": np.arange(N), "action": 0, "prob": 1.0, "position": [0] * 5 + [10**9] + [0] * (N - 6)}),
     (), "target column 'position': 1e+09 at row 5 is beyond the 1,000 supported positions"),
    ("n-bootstrap 1e8", _log(), None, ("--interval", "bootstrap", "--n-bootstrap", "100000000"),
     "--n-bootstrap must be in [10, 100,000], got 100000000"),
    ("no overlap", _log().assign(action=0), pd.DataFrame({"pi_0": np.zeros(N), "pi_1": np.ones(N), "pi_2": 0.0}),
     ("--estimators", "snips"), "snips"),
]


@pytest.mark.parametrize(("case", "log", "target", "extra", "message"), BAD, ids=[b[0] for b in BAD])
def test_hostile_logs_exit_2_with_a_message_and_no_output(tmp_path: Path, case: str, log: pd.DataFrame,
                                                          target: pd.DataFrame | None, extra: tuple,
                                                          message: str) -> None:
    code, err, out = _ope(tmp_path, log, target, *extra)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not out.exists()


@pytest.mark.parametrize(("meta", "message"), [
    (b'{"n_actions": 1000000000000}', "(metadata adsim.n_actions) declares 1,000,000,000,000 actions"),
    (b'{"n_actions": 900000}', "need about"),
    (b'{"n_actions": "abc"}', "adsim.n_actions must be a whole number >= 1, got 'abc'"),
    (b'{"n_actions": true}', "adsim.n_actions must be a whole number >= 1, got True"),
    (b'{"n_actions": 1.5}', "adsim.n_actions must be a whole number >= 1, got 1.5"),
    (b"\xff not json", "the parquet metadata 'adsim' is damaged"),
    (b'{"n_actions": 2}', "column 'action': 2 at row"),
])
def test_tampered_parquet_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, meta: bytes,
                                   message: str) -> None:
    monkeypatch.setenv("ADSIM_MAX_MEMORY_GB", "0.05")  # 900,000 actions × 120 rows × 48 B > 50 MiB
    code, err, out = _ope(tmp_path, _log(), None, fmt=".parquet", meta=meta)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not out.exists()


def test_huge_reward_model_predictions(tmp_path: Path) -> None:
    q = pd.DataFrame(np.full((N, K), 0.3), columns=[f"q_{k}" for k in range(K)])
    q.loc[2, "q_1"] = 1e308
    q.to_csv(tmp_path / "q.csv", index=False)
    code, err, out = _ope(tmp_path, _log(), None, "--reward-model", str(tmp_path / "q.csv"))
    assert code == 2 and "reward_model: a prediction beyond ±1e+12 at row 2" in err and not out.exists(), err


def test_nested_context_columns(tmp_path: Path) -> None:
    for value, kind in (([1, 2], "ndarray"), ({"a": 1}, "dict"), (b"ab", "bytes")):
        df = _log()
        df["nest"] = [value] * N
        code, err, out = _ope(tmp_path, df, None, fmt=".parquet")
        assert code == 2 and f"context column 'nest': a nested value ({kind}) at row 0" in err, err
        assert "Traceback" not in err and not out.exists()


def test_duplicate_columns_and_non_files(tmp_path: Path) -> None:
    b = _log()
    pq.write_table(pa.table([pa.array(b[c]) for c in b.columns], names=["action", "reward", "pscore", "x0", "x0"]),
                   tmp_path / "dup.parquet")
    for path, message in ((tmp_path / "dup.parquet", "cannot read the log"),
                          (Path("/dev/null"), "not a regular file")):
        code, err, _ = _ope(tmp_path, path)
        assert code == 2 and message in err and "Traceback" not in err, err


def test_allocation_bombs_stay_bounded_in_memory_and_time(tmp_path: Path) -> None:
    """Tampered sizes under a 3 GiB address-space limit: each a quick exit 2, no MemoryError."""
    df = _log()
    _write(df, tmp_path / "meta.parquet", b'{"n_actions": 999999}')
    pd.DataFrame({"row": np.arange(N), "action": [0] * (N - 1) + [999_999], "prob": 1.0}).to_csv(
        tmp_path / "long.csv", index=False)
    _write(df, tmp_path / "log.csv")
    _write(_target(), tmp_path / "t.csv")
    script = textwrap.dedent(f"""
        import resource, time
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        from adsim.cli import main
        d = {str(tmp_path)!r}
        cases = [
            ["ope", "--log", d + "/meta.parquet", "--target", d + "/t.csv"],
            ["ope", "--log", d + "/log.csv", "--target", d + "/long.csv"],
            ["ope", "--log", d + "/log.csv", "--target", d + "/t.csv", "--interval", "bootstrap",
             "--n-bootstrap", "100000000"],
        ]
        for c in cases:
            t0 = time.perf_counter()
            code = main(c + ["--out", d + "/out", "--reward-model", "mean"])
            print(code, round(time.perf_counter() - t0, 2), flush=True)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO), "ADSIM_MAX_MEMORY_GB": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    lines = [ln.split() for ln in proc.stdout.strip().splitlines()]
    assert [ln[0] for ln in lines] == ["2", "2", "2"], proc.stdout + proc.stderr
    assert all(float(ln[1]) < 10 for ln in lines), proc.stdout
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ hypothesis
VALUES = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 1e-300, 0.0, -1.0, 2.0, 1e12, 10**15,
                     "", "x", None, True]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.sampled_from(["action", "reward", "pscore", "x0", "seg", "position"]),
                                st.integers(0, N - 1), VALUES), min_size=1, max_size=3),
       fmt=st.sampled_from([".csv", ".parquet"]),
       interval=st.sampled_from(["clt", "bootstrap", "bernstein"]))
def test_any_hostile_log_gives_finite_estimates_or_exit_2(tmp_path_factory: pytest.TempPathFactory, edits: list,
                                                          fmt: str, interval: str) -> None:
    tmp = tmp_path_factory.mktemp("log")
    df = _log().assign(position=0)
    for col, row, value in edits:
        df[col] = df[col].astype(object)
        df.loc[row, col] = value
    if fmt == ".parquet":  # mixed object columns: store as text where arrow cannot type them
        for c in df.columns:
            try:
                pa.array(df[c])
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                df[c] = df[c].astype(str)
    code, err, out = _ope(tmp, df, None, "--interval", interval, "--n-bootstrap", "50",
                          "--estimators", "dm,ips,snips,dr,sndr,switch_dr_slope", fmt=fmt)
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("error: ") and not out.exists(), err
        return
    assert code == 0, err
    table = pd.read_csv(out / "estimates.csv")
    assert np.isfinite(table[["value", "std_err", "ci_low", "ci_high"]].to_numpy()).all()
    report = json.loads((out / "report.json").read_text())
    assert all(e["value"] is not None for e in report["estimates"])


def test_unwritable_out_is_refused_before_any_work(tmp_path: Path) -> None:
    lp, tp = _write(_log(), tmp_path / "log.csv"), _write(_target(), tmp_path / "t.csv")
    code, _, err = cli("ope", "--log", str(lp), "--target", str(tp), "--out", "/proc/adsim-ope")
    assert code == 2 and "--out /proc/adsim-ope: cannot create folders in /proc" in err and "Traceback" not in err, err


def test_out_folder_of_other_files_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "thesis.tex").write_text("keep me")
    code, err, out = _ope(tmp_path, _log())
    assert code == 2 and "holds files adsim did not write" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]
