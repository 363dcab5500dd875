"""Run folders: scoring rows without ids/truth, and clear errors for damaged or mismatched folders."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from adsim._io import write_manifest
from adsim.cli import main
from adsim.errors import AdsimError, DataError
from adsim.models.checkpoint import CheckpointMismatchError, load_run

SOURCE = {"type": "synthetic", "n_rows": 3000, "n_users": 300, "n_ads": 6, "n_dense": 3, "base_ctr": 0.2,
          "seed": 5}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from adsim.config import parse_config
    from adsim.models.config import RunConfig
    from adsim.models.run import train_run

    root = tmp_path_factory.mktemp("ckpt_run")
    cfg = parse_config({
        "name": "ckpt", "data": {"source": SOURCE, "processed_dir": str(root / "processed")},
        "model": {"name": "deepfm", "options": {"embed_dim": 4, "hidden": [8]}},
        "train": {"epochs": 1, "batch_size": 256, "lr": 0.01, "progress": False, "num_threads": 1,
                  "checkpoint_every": 1000, "tensorboard": False, "seed": 0},
        "calibration": {"method": "platt"},
    }, RunConfig, source="test fixture")
    return train_run(cfg, root / "run")


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    from adsim.models.config import SyntheticSource
    from adsim.models.readers import generate_synthetic

    return generate_synthetic(SyntheticSource(**{**SOURCE, "n_rows": 200, "seed": 9}))[0]


def test_test_metrics_has_business_figures(run_dir: Path) -> None:
    from adsim.models.data import load_split

    m = json.loads((run_dir / "test_metrics.json").read_text())
    b = m["business"]["click"]
    test, _ = load_split(run_dir.parent / "processed", "test")
    assert b["impressions"] == len(test) == m["n_test"]
    assert b["ctr"] == pytest.approx(float(test.labels[:, 0].mean()))
    assert b["ecpm_unit"] == pytest.approx(1000 * b["ctr"])
    assert b["pred_ecpm_unit"] == pytest.approx(1000 * m["calibrated"]["click"]["mean_pred"])


def test_encode_caches_vocabulary_index(rows: pd.DataFrame) -> None:
    from adsim.models.data import Preprocessor

    pre = Preprocessor(["click"], sparse=["ad_id"]).fit(rows.head(100))
    first = pre._vocab_index("ad_id")
    assert pre._vocab_index("ad_id") is first  # built once, reused
    keys = np.array(["0", "3", "nope"], dtype=object)
    fresh = Preprocessor(["click"], sparse=["ad_id"]).fit(rows.tail(50))
    pre.fit(rows.tail(50))  # refit replaces the vocabulary: the cache must follow
    assert pre._vocab_index("ad_id") is not first
    np.testing.assert_array_equal(pre.encode("ad_id", keys), fresh.encode("ad_id", keys))
    loaded = Preprocessor.from_dict(pre.to_dict())
    np.testing.assert_array_equal(loaded.encode("ad_id", keys), fresh.encode("ad_id", keys))


# ------------------------------------------------------------------------- predict_frame inputs
def test_predict_frame_needs_only_feature_columns(run_dir: Path, rows: pd.DataFrame) -> None:
    run = load_run(run_dir)
    pre = run.preprocessor
    assert "user_id" in pre.passthrough and "p_click" in pre.passthrough  # group and truth of the run
    ref = run.predict_frame(rows)
    only = rows[pre.features]
    assert "user_id" not in only.columns and "p_click" not in only.columns and "click" not in only.columns
    np.testing.assert_array_equal(run.predict_frame(only), ref)
    # garbage in label/truth/group columns is ignored, not validated
    junk = rows.assign(click="?", p_click=np.nan, user_id=None)
    np.testing.assert_array_equal(run.predict_frame(junk), ref)
    # extra columns and another column order do not matter
    np.testing.assert_array_equal(run.predict_frame(only[only.columns[::-1]].assign(extra=1)), ref)


def test_absent_features_take_the_documented_defaults(run_dir: Path, rows: pd.DataFrame) -> None:
    run = load_run(run_dir)
    dense, sparse = run.preprocessor.dense[0], run.preprocessor.sparse[0]
    # absent column == every value missing: dense → training mean (0 after scaling), sparse → "__missing__"
    got = run.predict_frame(rows.drop(columns=[dense, sparse]))
    want = run.predict_frame(rows.assign(**{dense: np.nan, sparse: None}))
    np.testing.assert_allclose(got, want, rtol=0, atol=0)
    assert not np.allclose(got, run.predict_frame(rows))  # the features did matter
    # the same defaults as the online encoder
    from adsim.models.data import CTRData
    from adsim.serving.features import FeatureEncoder

    enc = run.preprocessor.transform(rows.drop(columns=[dense, sparse]), features_only=True)
    assert np.all(enc[dense] == 0.0)
    assert np.all(enc[sparse] == FeatureEncoder(run.preprocessor).encode({}, [{}]).sparse[0, 0])
    assert isinstance(CTRData.from_frame(enc.assign(click=0.0), run.schema), CTRData)


def test_predict_frame_without_any_feature_is_an_error(run_dir: Path, rows: pd.DataFrame) -> None:
    run = load_run(run_dir)
    with pytest.raises(DataError, match=r"none of the model's feature columns \(x0, .*\) is in the rows to score"):
        run.predict_frame(rows[["user_id", "click"]])


def test_batch_predict_without_ids_or_truth(run_dir: Path, rows: pd.DataFrame, tmp_path: Path) -> None:
    run = load_run(run_dir)
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    rows[run.preprocessor.features].to_parquet(src, index=False)
    assert main(["predict", str(run_dir), "--input", str(src), "--output", str(out), "--quiet"]) == 0
    np.testing.assert_allclose(pd.read_parquet(out)["pred_click"], run.predict_frame(rows)[:, 0], atol=1e-7)


def test_absent_feature_column_strict_mode(run_dir: Path, rows: pd.DataFrame, tmp_path: Path, capsys) -> None:
    run = load_run(run_dir)
    partial = rows[run.preprocessor.features].drop(columns=["x1"])
    with pytest.raises(DataError, match=r"column 'x1' \(data.dense\) is not in the rows to score"):
        run.predict_frame(partial, missing_features="error")
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    partial.to_parquet(src, index=False)
    base = ["predict", str(run_dir), "--input", str(src), "--output", str(out), "--quiet"]
    assert main(base) == 2  # a whole feature column absent from a table: an error by default
    assert "pass --allow-missing-features" in capsys.readouterr().err and not out.exists()
    assert main([*base, "--allow-missing-features"]) == 0
    np.testing.assert_allclose(pd.read_parquet(out)["pred_click"], run.predict_frame(partial)[:, 0], atol=1e-7)


# --------------------------------------------------------------------------- damaged run folders
def _edit_ckpt(fn: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(d: Path) -> None:
        payload = torch.load(d / "checkpoint.pt", weights_only=True)
        fn(payload)
        torch.save(payload, d / "checkpoint.pt")
    return damage


def _drop_first_weight(p: dict) -> None:
    p["state_dict"].pop(next(iter(p["state_dict"])))


def _extra_weight(p: dict) -> None:
    p["state_dict"]["head.extra.weight"] = torch.zeros(2)


def _reshape_weight(p: dict) -> None:
    k = next(k for k, v in p["state_dict"].items() if v.ndim == 2)
    p["state_dict"][k] = torch.zeros(p["state_dict"][k].shape[0] + 1, p["state_dict"][k].shape[1])


def _rename_option(p: dict) -> None:
    p["model_options"]["embedding_size"] = p["model_options"].pop("embed_dim")


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda d: (d / name).write_bytes(data)


def _prep_missing_key(d: Path) -> None:
    meta = json.loads((d / "preprocessors.json").read_text())
    del meta["vocab_"]
    (d / "preprocessors.json").write_text(json.dumps(meta))


DAMAGE = [
    ("missing weight", _edit_ckpt(_drop_first_weight), CheckpointMismatchError, "1 missing weight(s)"),
    ("unexpected weight", _edit_ckpt(_extra_weight), CheckpointMismatchError,
     "1 unexpected weight(s) (head.extra.weight)"),
    ("shape", _edit_ckpt(_reshape_weight), CheckpointMismatchError, "1 shape mismatch(es) (saved vs expected:"),
    ("renamed option", _edit_ckpt(_rename_option), CheckpointMismatchError, "has no option 'embedding_size'"),
    ("no checkpoint", lambda d: (d / "checkpoint.pt").unlink(), DataError,
     "checkpoint.pt is missing (listed in manifest.json)"),
    ("corrupt checkpoint", _write("checkpoint.pt", b"\x00garbage"), DataError,
     "checkpoint.pt is not a readable adsim checkpoint"),
    ("foreign checkpoint", lambda d: torch.save({"a": 1}, d / "checkpoint.pt"), DataError,
     "checkpoint.pt is not an adsim checkpoint"),
    ("no preprocessor", lambda d: (d / "preprocessors.json").unlink(), DataError,
     "preprocessors.json is missing (listed in manifest.json)"),
    ("corrupt preprocessor", _write("preprocessors.json", b"{not json"), DataError,
     "preprocessors.json: not a readable preprocessor file (JSONDecodeError"),
    ("truncated preprocessor", _prep_missing_key, DataError,
     "preprocessors.json: preprocessor file is incomplete or damaged (KeyError: 'vocab_')"),
    ("corrupt calibrator", _write("calibrator.json", b"[1, 2"), DataError, "calibrator.json is damaged"),
]


@pytest.mark.parametrize(("case", "damage", "error", "message"), DAMAGE, ids=[c[0] for c in DAMAGE])
def test_damaged_run_folder_is_a_clear_error(run_dir: Path, rows: pd.DataFrame, tmp_path: Path, capsys,
                                             case: str, damage: Callable[[Path], None], error: type,
                                             message: str) -> None:
    bad = tmp_path / "bad_run"
    shutil.copytree(run_dir, bad)
    damage(bad)
    if "(listed in manifest.json)" not in message:
        # the manifest alone catches any edit (tested below); re-sign it so the content checks
        # behind it are exercised too (a folder from another adsim version, or a forged manifest)
        write_manifest(bad, "train")
    with pytest.raises(error) as info:
        load_run(bad)
    text = str(info.value)
    assert isinstance(info.value, AdsimError)
    assert message in text, text
    assert str(bad) in text, text  # names the run folder (or a file inside it)
    if error is CheckpointMismatchError:
        assert "retrain it with `adsim train`, or load it with adsim " in text
    src = tmp_path / "in.parquet"
    rows.head(5).to_parquet(src, index=False)
    code = main(["predict", str(bad), "--input", str(src), "--output", str(tmp_path / "o.parquet"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
