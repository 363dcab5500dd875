"""Fuzzing the artefact doors: run folders (predict, export, serve, calibrate, resume), CTR data
files (``adsim prepare-data``) and RL model files.

Every hostile input must end in exit code 2 (or an :class:`~adsim.errors.AdsimError` from the
Python API) with a message naming the thing, no traceback, and no partial output. A tiny run is
trained once per session (``fuzz_helpers.tiny_run``) and copied before each tampering.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from fuzz_helpers import cli, no_partial, tiny_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adsim._io import MANIFEST, write_manifest
from adsim.errors import AdsimError
from adsim.models.checkpoint import load_run

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("fuzz_run"))


@pytest.fixture(scope="session")
def rows(run_dir: Path) -> Path:
    from fuzz_helpers import SOURCE

    from adsim.models.config import SyntheticSource
    from adsim.models.readers import generate_synthetic

    df = generate_synthetic(SyntheticSource(**{**SOURCE, "n_rows": 100, "seed": 99}))[0]
    path = run_dir.parent / "rows.parquet"
    df.to_parquet(path, index=False)
    return path


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    d = tmp_path / "run"
    shutil.copytree(run_dir, d)
    return d


# ------------------------------------------------------------------------------ tampering
def _json_edit(name: str, fn: Callable[[dict], object]) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        body = json.loads((d / name).read_text())
        new = fn(body)
        (d / name).write_text(json.dumps(body if new is None else new, allow_nan=True))
    return edit


def _cal(body: dict) -> dict:
    return body["tasks"]["click"]


def _set_cal(**values: object) -> Callable[[dict], object]:
    def fn(body: dict) -> None:
        body["tasks"]["click"] = dict(values)
    return fn


def _ckpt_edit(fn: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        payload = torch.load(d / "checkpoint.pt", weights_only=True)
        fn(payload)
        torch.save(payload, d / "checkpoint.pt")
    return edit


class _Evil:
    """A pickle that would create a marker file if it were ever unpickled with full pickle."""

    marker = ""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.marker, "w"))


def _evil_file(name: str) -> Callable[[Path], None]:
    def write(d: Path) -> None:
        evil = _Evil()
        evil.marker = str(d / "PWNED")
        with open(d / name, "wb") as f:
            pickle.dump({"format": "adsim.checkpoint/1", "x": evil}, f)
    return write


def _flip_byte(name: str) -> Callable[[Path], None]:
    def flip(d: Path) -> None:
        data = bytearray((d / name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (d / name).write_bytes(bytes(data))
    return flip


def _bump_vocab(body: dict) -> None:
    col = body["sparse"][0]
    body["vocab_"][col] = body["vocab_"][col] + ["a-new-key"]


def _schema_size(p: dict) -> None:
    p["schema"]["sparse"][0]["vocab_size"] += 1


# (case, tamper, re-sign the manifest afterwards, message)
TAMPER = [
    # the manifest catches an unfinished or edited folder
    ("no manifest (killed)", lambda d: (d / MANIFEST).unlink(), False, "is incomplete: it has no manifest.json"),
    ("killed before calibrator", lambda d: [(d / MANIFEST).unlink(), (d / "calibrator.json").unlink()], False,
     "is incomplete"),
    ("calibrator edited", _json_edit("calibrator.json", lambda b: _cal(b).update(method="none")), False,
     "calibrator.json does not match manifest.json"),
    ("checkpoint byte flipped", _flip_byte("checkpoint.pt"), False, "checkpoint.pt does not match manifest.json"),
    ("config edited", lambda d: (d / "config.yaml").write_text((d / "config.yaml").read_text() + "\n# x\n"),
     False, "config.yaml does not match manifest.json"),
    ("calibrator deleted", lambda d: (d / "calibrator.json").unlink(), False,
     "calibrator.json is missing (listed in manifest.json)"),
    ("manifest garbage", lambda d: (d / MANIFEST).write_text("{nope"), False, "unreadable manifest"),
    ("manifest of data", lambda d: write_manifest(d, "data"), False, "a 'data' folder where a 'train' folder"),
    # behind a consistent (forged) manifest, every artefact is still validated as data
    ("NaN temperature", _json_edit("calibrator.json", _set_cal(method="temperature", temperature_=math.nan)), True,
     "temperature_ must be a finite number"),
    ("zero temperature", _json_edit("calibrator.json", _set_cal(method="temperature", temperature_=0.0)), True,
     "temperature_ 0.0 is outside"),
    ("isotonic 5.0", _json_edit("calibrator.json", lambda b: _cal(b).update(
        y_thresholds_=[5.0] * len(_cal(b)["y_thresholds_"]))), True, "must be probabilities in [0, 1]"),
    ("isotonic decreasing", _json_edit("calibrator.json", lambda b: _cal(b).update(
        x_thresholds_=_cal(b)["x_thresholds_"][::-1])), True, "thresholds must be non-decreasing"),
    ("isotonic ragged", _json_edit("calibrator.json", lambda b: _cal(b).update(y_thresholds_=[0.5])), True,
     "equal-length lists"),
    ("Platt 1e308", _json_edit("calibrator.json", _set_cal(method="platt", coef_=1e308, intercept_=0.0)), True,
     "beyond ±1000"),
    ("Platt inf", _json_edit("calibrator.json", _set_cal(method="platt", coef_=1.0, intercept_=math.inf)), True,
     "intercept_ must be a finite number"),
    ("Platt text", _json_edit("calibrator.json", _set_cal(method="platt", coef_="1", intercept_=0.0)), True,
     "coef_ must be a finite number"),
    ("unknown task", _json_edit("calibrator.json", lambda b: b["tasks"].update(conversion=_cal(b))), True,
     "a calibrator for task 'conversion', which the model does not have"),
    ("no task", _json_edit("calibrator.json", lambda b: b.update(tasks={})), True, "no calibrator for task 'click'"),
    ("unknown method", _json_edit("calibrator.json", _set_cal(method="magic")), True,
     "unknown calibration method 'magic'"),
    ("calibrator list", _json_edit("calibrator.json", lambda b: [1, 2]), True, "not an adsim calibrator file"),
    ("calibrator not json", lambda d: (d / "calibrator.json").write_bytes(b"\xff\xfe[1,"), True,
     "calibrator.json is damaged"),
    ("scale 0", _json_edit("preprocessors.json", lambda b: b.update(scale_=[0.0] * len(b["scale_"]))), True,
     "'scale_' must be >= 1e-12"),
    ("scale tiny", _json_edit("preprocessors.json", lambda b: b.update(scale_=[1e-300] * len(b["scale_"]))), True,
     "'scale_' must be >= 1e-12"),
    ("mean inf", _json_edit("preprocessors.json", lambda b: b.update(mean_=[math.inf] * len(b["mean_"]))), True,
     "'mean_' holds a non-finite value or one beyond 1e+15"),
    ("scale list short", _json_edit("preprocessors.json", lambda b: b.update(scale_=[1.0])), True,
     "'scale_' has 1 values for 3 dense columns"),
    ("vocab duplicate", _json_edit("preprocessors.json", lambda b: b["vocab_"].update(
        {b["sparse"][0]: ["a", "a"]})), True, "lists a key twice"),
    ("vocab missing", _json_edit("preprocessors.json", lambda b: b["vocab_"].__delitem__(b["sparse"][0])), True,
     "'vocab_' has no list of string keys"),
    ("vocab grown", _json_edit("preprocessors.json", _bump_vocab), True,
     "preprocessors.json does not match checkpoint.pt"),
    ("sequences garbage", _json_edit("preprocessors.json", lambda b: b.update(sequences=[["s", "^", -4]])), True,
     "'sequences' entry"),
    ("labels empty", _json_edit("preprocessors.json", lambda b: b.update(labels=[])), True, "'labels' is empty"),
    ("label is a feature", _json_edit("preprocessors.json", lambda b: b.update(dense=[*b["dense"][:-1], "click"])),
     True, "column 'click' has two roles"),
    ("schema size", _ckpt_edit(_schema_size), True, "does not match the model code"),
    # sizes edited to be huge are compared with the saved weights on the meta device: nothing is
    # allocated (before: 19 GiB and 190 s for a vocabulary of 1e9)
    ("schema size 1e9", _ckpt_edit(lambda p: p["schema"]["sparse"][0].update(vocab_size=10**9)), True,
     "shape mismatch(es) (saved vs expected: embed.table.weight (80, 4) vs (10000000"),
    ("embed_dim 1e6", _ckpt_edit(lambda p: p["model_options"].update(embed_dim=10**6)), True,
     "shape mismatch(es)"),
    ("checkpoint pickle", _evil_file("checkpoint.pt"), True, "checkpoint.pt is not a readable adsim checkpoint"),
    ("checkpoint empty", lambda d: (d / "checkpoint.pt").write_bytes(b""), True, "not a readable adsim checkpoint"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("case", "tamper", "resign", "message"), TAMPER, ids=[t[0] for t in TAMPER])
def test_tampered_run_folder_is_refused_by_every_reader(run_dir: Path, rows: Path, tmp_path: Path, case: str,
                                                        tamper: Callable[[Path], None], resign: bool,
                                                        message: str) -> None:
    d = _copy(run_dir, tmp_path)
    tamper(d)
    if resign:
        write_manifest(d, "train")
    with pytest.raises(AdsimError) as info:
        load_run(d)
    assert message in str(info.value), str(info.value)
    assert str(d) in str(info.value)
    out = tmp_path / "scored.parquet"
    for args in (["predict", str(d), "--input", str(rows), "--output", str(out), "--quiet"],
                 ["export", str(d), "--out", str(tmp_path / "m.onnx")],
                 ["serve", str(d), "--port", "1"]):
        code, _, err = cli(*args)
        assert code == 2 and message in err and "Traceback" not in err, (args[0], err)
    assert not out.exists() and not (tmp_path / "m.onnx").exists() and not (d / "model.onnx").exists()
    assert not (d / "PWNED").exists()  # nothing in a file ever runs
    assert no_partial(tmp_path) == []


@pytest.mark.parametrize("case", ["no manifest", "checkpoint edited", "config edited"])
def test_calibrate_refuses_an_unfinished_or_edited_run(run_dir: Path, tmp_path: Path, case: str) -> None:
    d = _copy(run_dir, tmp_path)
    if case == "no manifest":
        (d / MANIFEST).unlink()
    elif case == "checkpoint edited":
        _flip_byte("checkpoint.pt")(d)
    else:
        (d / "config.yaml").write_text((d / "config.yaml").read_text() + "\n")
    before = (d / "calibrator.json").read_bytes()
    code, _, err = cli("calibrate", str(d))
    assert code == 2 and "Traceback" not in err and f"run folder {d}" in err, err
    assert (d / "calibrator.json").read_bytes() == before


def test_calibrate_rewrites_the_manifest_and_repairs_a_damaged_calibrator(run_dir: Path, tmp_path: Path) -> None:
    d = _copy(run_dir, tmp_path)
    (d / "calibrator.json").write_text('{"format": "adsim.calibrator/1", "tasks": {"click": {"method": "magic"}}}')
    assert cli("calibrate", str(d), "--method", "platt")[0] == 0
    run = load_run(d)  # the new manifest lists the new calibrator
    assert type(run.calibrators["click"]).__name__ == "PlattScaling"
    assert json.loads((d / MANIFEST).read_text())["files"]["calibrator.json"]["bytes"] == (
        d / "calibrator.json").stat().st_size


def test_onnx_from_another_run_is_not_served(run_dir: Path, tmp_path: Path) -> None:
    from adsim.models.export import export_onnx

    d = _copy(run_dir, tmp_path)
    assert cli("export", str(d))[0] == 0
    run = load_run(d)
    with torch.no_grad():  # "another run": same architecture, other weights
        for p in run.model.parameters():
            p.add_(0.5)
    (d / "model.onnx").write_bytes(export_onnx(run.model, run.schema))
    code, _, err = cli("serve", str(d), "--backend", "onnx", "--port", "1")
    assert code == 2 and "model.onnx does not match model.onnx.json" in err and "Traceback" not in err


def test_malicious_resume_state_is_a_clean_error(run_dir: Path, tmp_path: Path) -> None:
    d = _copy(run_dir, tmp_path)
    _evil_file("resume.pt")(d)
    code, _, err = cli("train", str(d / "config.yaml"), "--out", str(d), "--resume", "--quiet")
    assert code == 2 and "cannot resume" in err and "not a readable adsim resume state" in err, err
    assert "Traceback" not in err and not (d / "PWNED").exists()
    torch.save({"format": "adsim.resume/1", "train_config": {}}, d / "resume.pt")
    code, _, err = cli("train", str(d / "config.yaml"), "--out", str(d), "--resume", "--quiet")
    assert code == 2 and "not an adsim resume state" in err and "Traceback" not in err, err


def _rl_meta() -> dict:
    from adsim.policies.rl import BIDDING_ENV, FORMAT

    return {"format": FORMAT, "env": BIDDING_ENV, "algo": "ppo", "obs_dim": 4, "obs_low": 0.0,
            "obs_high": 1.0, "policy_kwargs": {"net_arch": [8]}}


RL_META = _rl_meta()


@pytest.mark.parametrize(("meta", "weights", "message"), [
    ("{nope", None, "unreadable RL agent description"),
    (json.dumps([1]), None, "not an adsim RL agent"),
    (json.dumps({**RL_META, "format": "adsim-rl-bidder/1"}), None, "not an adsim RL agent"),
    (json.dumps({**RL_META, "algo": "magic"}), None, "algo"),
    (json.dumps({**RL_META, "obs_dim": 10**12}), None, "damaged RL agent description"),
    (json.dumps({**RL_META, "obs_high": "inf"}), None, "damaged RL agent description"),
    (json.dumps({**RL_META, "policy_kwargs": {"net_arch": "big"}}), None, "damaged RL agent description"),
    (json.dumps({**RL_META, "policy_kwargs": {"net_arch": [65536] * 8}}), None, "far larger than any"),
    (json.dumps({**RL_META, "policy_kwargs": {"no_such_arg": 1}}), None, "damaged RL agent description"),
    (json.dumps({**RL_META, "n_actions": 10**9}), None, "damaged RL agent description"),
    (json.dumps(RL_META), b"PK\x03\x04garbage", "not a readable RL model file"),
    (json.dumps(RL_META), "evil", "not a readable RL model file"),
    (json.dumps(RL_META), {"w": torch.zeros(2)}, "RL model weights do not fit"),
])
def test_damaged_rl_model_files_are_clean_errors(tmp_path: Path, meta: str, weights: object, message: str) -> None:
    from adsim.policies.rl import RLBidder

    p = tmp_path / "bidder.pt"
    p.with_suffix(".json").write_text(meta)
    if weights is None or isinstance(weights, bytes):
        p.write_bytes(weights or b"")
    elif weights == "evil":
        _evil_file("bidder.pt")(tmp_path)
    else:
        torch.save(weights, p)
    with pytest.raises(AdsimError, match=message.replace("(", r"\(")):
        RLBidder.load(p)
    assert not (tmp_path / "PWNED").exists()


# ------------------------------------------------------------------ hypothesis: run folders
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["checkpoint.pt", "preprocessors.json", "calibrator.json", "config.yaml"]),
       where=st.floats(0.0, 1.0), cut=st.booleans())
def test_any_corrupted_byte_is_refused(run_dir: Path, tmp_path_factory: pytest.TempPathFactory, name: str,
                                       where: float, cut: bool) -> None:
    d = _copy(run_dir, tmp_path_factory.mktemp("corrupt"))
    data = bytearray((d / name).read_bytes())
    i = min(int(where * len(data)), len(data) - 1)
    if cut:
        data = data[:i]
    else:
        data[i] ^= 0x5A
    (d / name).write_bytes(bytes(data))
    with pytest.raises(AdsimError, match=f"{name} does not match manifest.json"):
        load_run(d)


HOSTILE = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0, -1.0, 5.0, 1e-300, 2**63, True, None, "",
                     "x", [], {}, [1, 2], {"a": 1}]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.text(max_size=8),
)


def _leaves(obj: object, path: tuple = ()) -> list[tuple]:
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _leaves(v, (*path, k))] or [path]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj[:6]) for p in _leaves(v, (*path, i))] or [path]
    return [path]


def _replace(obj: object, path: tuple, value: object) -> object:
    if not path:
        return value
    obj[path[0]] = _replace(obj[path[0]], path[1:], value)  # type: ignore[index]
    return obj


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["calibrator.json", "preprocessors.json"]), pick=st.floats(0.0, 1.0),
       value=HOSTILE)
def test_any_forged_artefact_value_is_refused_or_scores_probabilities(
        run_dir: Path, rows: Path, tmp_path_factory: pytest.TempPathFactory, name: str, pick: float,
        value: object) -> None:
    """A hostile value anywhere in a JSON artefact, behind a forged manifest: a clean error, or
    (if the value happens to be harmless) scores that are finite probabilities."""
    d = _copy(run_dir, tmp_path_factory.mktemp("forged"))
    body = json.loads((d / name).read_text())
    leaves = _leaves(body)
    path = leaves[min(int(pick * len(leaves)), len(leaves) - 1)]
    (d / name).write_text(json.dumps(_replace(body, path, value), allow_nan=True))
    write_manifest(d, "train")
    try:
        run = load_run(d)
    except AdsimError:
        return
    try:
        p = run.predict_frame(pd.read_parquet(rows))
    except AdsimError as exc:  # refused when scoring: it must say which run and row
        assert str(d) in str(exc) and "row" in str(exc), exc
        return
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()


# ------------------------------------------------------------------------------- CTR data
def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"click": rng.integers(0, 2, n), "d0": rng.normal(size=n), "d1": rng.exponential(size=n),
                         "s0": rng.choice(list("abc"), n), "s1": rng.integers(0, 5, n), "hist": ["1^2^3"] * n})


def _data_config(tmp: Path, splits: list[pd.DataFrame], **data: object) -> Path:
    src: dict = {"type": "table"}
    for k, f in zip(("train", "val", "test"), splits):
        f.to_csv(tmp / f"{k}.csv", index=False)
        src[f"{k}_path"] = str(tmp / f"{k}.csv")
    dd = {"source": src, "labels": ["click"], "dense": ["d0", "d1"], "sparse": ["s0", "s1"],
          "sequences": [{"name": "hist", "max_len": 4}], "processed_dir": str(tmp / "processed"), **data}
    cfg = {"name": "fuzz_data", "data": dd, "model": {"name": "deepfm", "options": {"embed_dim": 4, "hidden": [8]}},
           "train": {"epochs": 1, "batch_size": 128, "progress": False, "num_threads": 1}}
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _splits(col: str | None = None, value: object = None, split: int = 1, row: int = 3) -> list[pd.DataFrame]:
    fs = [_frame(300, 0), _frame(60, 1), _frame(60, 2)]
    if col is not None:
        fs[split][col] = fs[split][col].astype(object)
        fs[split].loc[row, col] = value
    return fs


DATA_BAD = [
    ("label 2 in val", _splits("click", 2, 1), {}, "label column 'click' in the val split must be 0 or 1"),
    ("label text in test", _splits("click", "yes", 2), {}, "label column 'click' in the test split must be 0 or 1"),
    ("label missing in train", _splits("click", None, 0), {}, "label column 'click' in the train split"),
    ("dense text in val", _splits("d0", "abc", 1), {}, "dense column 'd0' in the val split has non-numeric value"),
    ("dense 1e308 in train", _splits("d0", 1e308, 0), {}, "has value 1e+308 at row 3, beyond ±1e+15"),
    ("dense -1e308 in test", _splits("d1", -1e308, 2), {}, "dense column 'd1' in the test split has value -1e+308"),
    ("label as dense", _splits(), {"dense": ["d0", "click"]}, "data.dense: 'click' is the label column"),
    ("label as sparse", _splits(), {"sparse": ["click"]}, "(label leakage)"),
    ("label as sequence", _splits(), {"sequences": [{"name": "click"}]}, "data.sequences: 'click' is the label"),
    ("truth as dense", [f.assign(p=0.5) for f in _splits()], {"truth_column": "p", "dense": ["d0", "p"]},
     "'p' is the truth (true probability) column"),
    ("two roles", _splits(), {"sparse": ["s0", "d0"]}, "column 'd0' is also listed under data.dense"),
    ("label twice", _splits(), {"labels": ["click", "click"]}, "data.labels: 'click' is listed twice"),
    ("column missing in test", [*_splits()[:2], _splits()[2].drop(columns=["s1"])], {},
     "column 's1' (data.sparse) is not in the test split"),
    ("empty val", [_splits()[0], _splits()[1].head(0), _splits()[2]], {}, "the val split is empty"),
    ("dense all missing", [_splits()[0].assign(d0=np.nan), *_splits()[1:]], {}, "dense column 'd0' is empty"),
]


@pytest.mark.parametrize(("case", "splits", "data", "message"), DATA_BAD, ids=[c[0] for c in DATA_BAD])
def test_bad_ctr_data_exits_2_and_writes_nothing(tmp_path: Path, case: str, splits: list[pd.DataFrame],
                                                 data: dict, message: str) -> None:
    cfg = _data_config(tmp_path, splits, **data)
    code, _, err = cli("prepare-data", str(cfg))
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "processed").exists()
    assert no_partial(tmp_path) == []


def test_failed_prepare_leaves_the_previous_folder_intact(tmp_path: Path) -> None:
    cfg = _data_config(tmp_path, _splits())
    assert cli("prepare-data", str(cfg))[0] == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "processed").iterdir()}
    cfg = _data_config(tmp_path, _splits("click", 7, 2))
    assert cli("prepare-data", str(cfg))[0] == 2
    assert {p.name: p.read_bytes() for p in (tmp_path / "processed").iterdir()} == before
    assert no_partial(tmp_path) == []


def test_prepare_never_replaces_a_folder_of_other_files(tmp_path: Path) -> None:
    (tmp_path / "processed").mkdir()
    (tmp_path / "processed" / "my_raw_data.csv").write_text("keep me")
    code, _, err = cli("prepare-data", str(_data_config(tmp_path, _splits())))
    assert code == 2 and "holds files adsim did not write" in err, err
    assert (tmp_path / "processed" / "my_raw_data.csv").read_text() == "keep me"


def test_train_refuses_a_folder_of_other_files_as_out(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    code, _, err = cli("train", str(run_dir / "config.yaml"), "--out", str(tmp_path), "--quiet")
    assert code == 2 and "a folder of other files (not an adsim run folder)" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_train_refuses_processed_data_without_manifest(tmp_path: Path) -> None:
    from adsim.models.data import load_split

    cfg = _data_config(tmp_path, _splits())
    assert cli("prepare-data", str(cfg))[0] == 0
    (tmp_path / "processed" / MANIFEST).unlink()
    with pytest.raises(AdsimError, match="incomplete processed data"):
        load_split(tmp_path / "processed", "train")


CELL = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 1e15, 2, -1, 0.5, "", "x", "1", None, True]),
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**18), 10**18), st.text(max_size=5),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(col=st.sampled_from(["click", "d0", "d1", "s0", "s1", "hist"]), split=st.integers(0, 2),
       row=st.integers(0, 59), value=CELL)
def test_any_hostile_cell_gives_a_complete_folder_or_exit_2(tmp_path_factory: pytest.TempPathFactory, col: str,
                                                            split: int, row: int, value: object) -> None:
    tmp = tmp_path_factory.mktemp("cell")
    cfg = _data_config(tmp, _splits(col, value, split, row), log1p=["d1"])
    code, _, err = cli("prepare-data", str(cfg))
    assert "Traceback" not in err
    assert no_partial(tmp) == []
    if code == 2:
        assert err.startswith("error: ") and not (tmp / "processed").exists()
        return
    assert code == 0
    from adsim.models.data import load_split

    for s in ("train", "val", "test"):
        data, _ = load_split(tmp / "processed", s)
        assert np.isfinite(data.dense).all() and np.isin(data.labels, (0.0, 1.0)).all()
    assert os.path.exists(tmp / "processed" / MANIFEST)


# ------------------------------------------------------------------------- kill tests (slow)
def _spawn(args: list[str], cwd: Path):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    return subprocess.Popen([sys.executable, "-m", "adsim.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_at(args: list[str], cwd: Path, after: float) -> int | None:
    """Run ``adsim ARGS``; SIGKILL it ``after`` seconds in. Returns its exit code if it finished first."""
    import signal
    import time

    proc = _spawn(args, cwd)
    deadline = time.monotonic() + after
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return None
    assert b"Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
    return proc.returncode


def _timed(args: list[str], cwd: Path) -> float:
    import time

    t0 = time.monotonic()
    proc = _spawn(args, cwd)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    return time.monotonic() - t0


@pytest.mark.slow
def test_sigkill_train_at_random_moments_leaves_no_finished_looking_folder(tmp_path: Path, rows: Path) -> None:
    """SIGKILL ``adsim train`` at 24 random moments: each run folder is absent, complete (manifest
    verifies, loads) or unfinished — and then every reader refuses it; an unfinished one resumes."""
    from fuzz_helpers import run_config

    from adsim.models.checkpoint import verify_run_folder

    cfg = run_config("kill", tmp_path / "processed", epochs=3, checkpoint_every=2, batch_size=128)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert cli("prepare-data", str(path))[0] == 0  # prepared once: the kills hit training
    full = _timed(["train", str(path), "--out", str(tmp_path / "full"), "--quiet"], tmp_path)
    rng = np.random.default_rng(13)
    seen = {"absent": 0, "complete": 0, "unfinished": 0}
    resumable = None
    for i, after in enumerate(rng.uniform(0.0, 1.15 * full, 24)):
        out = tmp_path / f"k{i}"
        code = _kill_at(["train", str(path), "--out", str(out), "--quiet"], tmp_path, float(after))
        assert code in (None, 0)
        if not out.exists():
            seen["absent"] += 1
        elif (out / MANIFEST).exists():
            seen["complete"] += 1
            verify_run_folder(out)
            assert np.isfinite(load_run(out).predict_frame(pd.read_parquet(rows))).all()
        else:
            seen["unfinished"] += 1
            with pytest.raises(AdsimError, match="is incomplete"):
                load_run(out)
            for args in (["predict", str(out), "--input", str(rows), "--output", str(out / "p.parquet"), "--quiet"],
                         ["export", str(out)], ["calibrate", str(out)], ["serve", str(out), "--port", "1"]):
                c, _, err = cli(*args)
                assert c == 2 and "Traceback" not in err, (args[0], err)
            assert not (out / "p.parquet").exists() and not (out / "model.onnx").exists()
            if (out / "resume.pt").exists():
                resumable = out
    assert seen["unfinished"] >= 3, seen
    assert resumable is not None, seen
    assert cli("train", str(path), "--out", str(resumable), "--resume", "--quiet")[0] == 0
    verify_run_folder(resumable)
    assert load_run(resumable).schema == load_run(tmp_path / "full").schema


@pytest.mark.slow
def test_sigkill_prepare_data_at_random_moments_leaves_no_or_a_complete_folder(tmp_path: Path) -> None:
    """SIGKILL ``adsim prepare-data`` at 24 random moments: ``processed_dir`` is absent or a complete
    folder (manifest verifies, every split loads) — never a partial one."""
    from fuzz_helpers import run_config

    from adsim._io import verify_manifest
    from adsim.models.data import load_split

    cfg = run_config("killprep", tmp_path / "processed")
    cfg["data"]["source"]["n_rows"] = 60_000  # long enough for kills to land mid-way
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    full = _timed(["prepare-data", str(path)], tmp_path)
    shutil.rmtree(tmp_path / "processed")
    rng = np.random.default_rng(17)
    seen = {"absent": 0, "complete": 0, "interrupted": 0}
    for after in rng.uniform(0.0, 1.15 * full, 24):
        d = tmp_path / "processed"
        code = _kill_at(["prepare-data", str(path)], tmp_path, float(after))
        assert code in (None, 0)
        seen["interrupted"] += code is None
        # killed or not, the folder is absent or complete (the last finished one, or a new one if
        # the kill landed after the rename)
        if not d.exists():
            seen["absent"] += 1
            continue
        seen["complete"] += 1
        verify_manifest(d, kind="data")
        for s in ("train", "val", "test"):
            assert len(load_split(d, s)[0]) > 0
    assert seen["interrupted"] >= 10 and seen["complete"] >= 1, seen


@pytest.mark.parametrize("where", ["/proc/adsim-x", "/dev/null/x"])
def test_unwritable_outputs_are_refused_before_any_work(run_dir: Path, rows: Path, where: str) -> None:
    for args, flag in ((["predict", str(run_dir), "--input", str(rows), "--output", where + ".parquet", "--quiet"],
                        "--output"), (["export", str(run_dir), "--out", where + ".onnx"], "--out")):
        code, _, err = cli(*args)
        assert code == 2 and f"{flag} {where}" in err and "cannot write there" in err and "Traceback" not in err, err


@pytest.mark.parametrize(("kind", "content", "message"), [
    ("table", "fifo", "is not a regular file (a FIFO or device)"),
    ("table", b"PAR1garbage", "cannot read it as"),
    ("table", bytes(range(128, 256)) * 20, "cannot read it as csv"),
    ("avazu", b"id,click,hour\n1,0,notanhour\n", "column 'hour' at row 0 is not YYMMDDHH: 'notanhour'"),
    ("avazu", b"id,click,hour\n1,0,99999999999999999999\n", "column 'hour' at row 0 is not YYMMDDHH"),
    ("criteo", b"1\t2\t3\n", "line 1 has 3 tab-separated fields; the Criteo format has 40"),
])
def test_hostile_source_files(tmp_path: Path, kind: str, content: object, message: str) -> None:
    src = tmp_path / ("data.parquet" if content == b"PAR1garbage" else "data.csv")
    if content == "fifo":
        os.mkfifo(src)
    else:
        src.write_bytes(content)  # type: ignore[arg-type]
    data = {"source": {"type": kind, "path": str(src)}, "processed_dir": str(tmp_path / "processed")}
    if kind == "table":
        data.update(labels=["click"], sparse=["x"])
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"name": "src", "data": data}))
    code, _, err = cli("prepare-data", str(tmp_path / "run.yaml"))
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "processed").exists()
