"""Data preparation: readers on the real samples, encoders, reload, splits, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adsim.config import parse_config
from adsim.errors import ConfigError, DataError
from adsim.models.config import DatasetConfig
from adsim.models.data import OOV, Preprocessor, load_preprocessor, load_split, prepare_data
from adsim.models.readers import read_avazu, read_criteo


def _prep(d: dict, tmp_path: Path) -> Path:
    d = {"processed_dir": str(tmp_path / "out"), **d}
    return prepare_data(parse_config(d, DatasetConfig))


def test_criteo_sample(shared_data: Path, tmp_path: Path) -> None:
    raw = read_criteo(shared_data / "criteo/criteo_sample.txt")
    assert raw.shape == (200, 40)
    out = _prep({"source": {"type": "criteo", "path": str(shared_data / "criteo/criteo_sample.txt")},
                 "min_count": 2}, tmp_path)
    for s in ("train", "val", "test"):
        assert (out / f"{s}_data.parquet").exists()
    train, schema = load_split(out, "train")
    assert schema.dense == tuple(f"I{i}" for i in range(1, 14))
    assert [f.name for f in schema.sparse] == [f"C{i}" for i in range(1, 27)]
    assert len(train) == 160 and train.labels.shape == (160, 1)
    assert np.isfinite(train.dense).all()  # NaNs imputed
    # scaled on train: mean 0, and min_count=2 sends singletons to OOV
    assert np.allclose(train.dense.mean(0), 0.0, atol=1e-5)
    assert (train.sparse == OOV).any()
    assert all(f.vocab_size == (train.sparse[:, j].max() + 1) or f.vocab_size > train.sparse[:, j].max()
               for j, f in enumerate(schema.sparse))


def test_criteo_raw_tsv(tmp_path: Path) -> None:
    row = "\t".join(["1", *["3"] * 13, *["ab12"] * 26])
    f = tmp_path / "day_0.txt"
    f.write_text(row + "\n" + row.replace("ab12", "") + "\n")
    df = read_criteo(f)
    assert df.shape == (2, 40) and df["label"].tolist() == [1, 1]
    assert df["C1"].isna().tolist() == [False, True]


def test_avazu_sample(shared_data: Path, tmp_path: Path) -> None:
    df = read_avazu(shared_data / "avazu/avazu_sample.txt")
    assert {"hour_of_day", "weekday"} <= set(df.columns)
    out = _prep({"source": {"type": "avazu", "path": str(shared_data / "avazu/avazu_sample.txt")}}, tmp_path)
    _, schema = load_split(out, "train")
    names = [f.name for f in schema.sparse]
    assert "id" not in names and "site_id" in names and "hour_of_day" in names
    assert schema.tasks == ("click",)


def test_taobao_predefined_files_with_sequence(shared_data: Path, tmp_path: Path) -> None:
    d = shared_data / "taobao_ad"
    out = _prep({
        "source": {"type": "table", "train_path": str(d / "train_sample.csv"),
                   "val_path": str(d / "valid_sample.csv"), "test_path": str(d / "test_sample.csv")},
        "labels": ["clk"], "dense": ["price"],
        "sparse": ["userid", "adgroup_id", "pid", "cate_id", "pvalue_level"],
        "sequences": [{"name": "click_sequence", "max_len": 3}],
        "group_column": "userid",
    }, tmp_path)
    train, schema = load_split(out, "train")
    assert schema.sequences[0].max_len == 3 and train.seq.shape == (100, 1, 3)
    raw = pd.read_csv(d / "train_sample.csv")
    n_tokens = raw["click_sequence"].fillna("").map(lambda s: len([t for t in s.split("^") if t]))
    # left-aligned: the number of non-padding ids equals min(len, max_len)
    assert ((train.seq[:, 0] > 0).sum(1) == np.minimum(n_tokens, 3)).all()
    assert train.group is not None
    # pvalue_level is float with NaN: missing is its own category, 2.0 keys as "2"
    pre, _ = load_preprocessor(out)
    assert "__missing__" in pre.vocab_["pvalue_level"]
    assert "2" in pre.vocab_["pvalue_level"]


def test_fuxictr_parquet(shared_data: Path, tmp_path: Path) -> None:
    d = shared_data / "fuxictr_tiny_parquet"
    cols = ["userid", "adgroup_id", "pid", "cate_id"]
    out = _prep({"source": {"type": "table", "train_path": str(d / "train.parquet"),
                            "val_path": str(d / "valid.parquet"), "test_path": str(d / "test.parquet")},
                 "labels": ["clk"], "sparse": cols}, tmp_path)
    test, schema = load_split(out, "test")
    assert test.sparse.shape == (100, 4) and test.sparse.dtype == np.int64


def test_reload_transforms_identically_with_oov(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.integers(0, 2, 500), "a": rng.choice(["u", "v", "w", "rare"], 500,
                                                                        p=[.5, .3, .199, .001]),
                       "n": rng.integers(0, 30, 500).astype(float), "x": rng.lognormal(size=500)})
    df.loc[::7, "x"] = np.nan
    pre = Preprocessor(["y"], dense=["x"], sparse=["a", "n"], min_count=3, log1p=["x"]).fit(df)
    pre.save(tmp_path / "pre.json")
    again = Preprocessor.load(tmp_path / "pre.json")
    new = pd.DataFrame({"y": [0, 1, 1], "a": ["u", "never-seen", None], "n": [5, 999, 5.0],
                        "x": [1.0, np.nan, 1e6]})
    a, b = pre.transform(new), again.transform(new)
    pd.testing.assert_frame_equal(a, b)
    assert a["a"].tolist()[1] == OOV and a["n"].tolist()[1] == OOV
    assert a["n"].iloc[0] == a["n"].iloc[2]  # 5 and 5.0 are one key
    assert a["x"].iloc[1] == 0.0  # missing → the mean
    # min_count: "rare" appears < 3 times in training → OOV
    assert "rare" not in pre.vocab_["a"]


def test_time_split_orders_rows(tmp_path: Path) -> None:
    df = pd.DataFrame({"t": np.arange(100)[::-1], "y": np.tile([0, 1], 50), "c": np.arange(100) % 7})
    f = tmp_path / "rows.csv"
    df.to_csv(f, index=False)
    out = _prep({"source": {"type": "table", "path": str(f)}, "labels": ["y"], "sparse": ["c"],
                 "split": {"method": "time", "time_column": "t", "val_fraction": 0.2,
                           "test_fraction": 0.2}}, tmp_path)
    rows = {s: len(pd.read_parquet(out / f"{s}_data.parquet")) for s in ("train", "val", "test")}
    assert rows == {"train": 60, "val": 20, "test": 20}


def _table(tmp_path: Path, df: pd.DataFrame) -> str:
    f = tmp_path / "rows.csv"
    df.to_csv(f, index=False)
    return str(f)


GOOD = pd.DataFrame({"y": [0, 1] * 20, "d": np.arange(40.0), "c": list("abcd") * 10})

BAD_DATA = [
    ({"labels": ["click"], "dense": ["d"], "sparse": ["c"]}, GOOD,
     "column 'click' (data.labels) is not in the training split"),
    ({"labels": ["y"], "dense": ["d", "nope"], "sparse": ["c"]}, GOOD,
     "column 'nope' (data.dense) is not in the training split"),
    ({"labels": ["y"], "dense": ["d"], "sparse": ["zzz"]}, GOOD,
     "column 'zzz' (data.sparse) is not in the training split"),
    ({"labels": ["y"], "dense": ["d", "e"], "sparse": ["c"]}, GOOD.assign(e=np.nan),
     "dense column 'e' is empty (all values missing)"),
    ({"labels": ["y"], "dense": ["c"]}, GOOD,
     "dense column 'c' in the training split has non-numeric value 'a'"),
    ({"labels": ["d"], "sparse": ["c"]}, GOOD, "label column 'd' in the train split must be 0 or 1, found 2.0 at row 2"),
    ({"labels": ["y"], "sparse": ["c"], "source": {"nrows": 2}}, GOOD, "split is empty"),
    ({"sparse": ["c"]}, GOOD, "data.labels is required"),
    ({"labels": ["y"]}, GOOD, "no feature columns"),
    ({"labels": ["y"], "dense": ["d"], "log1p": ["c"]}, GOOD, "data.log1p column 'c' is not one of the dense"),
]


@pytest.mark.parametrize(("cfg", "df", "message"), BAD_DATA)
def test_bad_data_messages(tmp_path: Path, cfg: dict, df: pd.DataFrame, message: str) -> None:
    cfg = dict(cfg)
    src = {"type": "table", "path": _table(tmp_path, df), **cfg.pop("source", {})}
    with pytest.raises(DataError) as err:
        _prep({"source": src, **cfg}, tmp_path)
    assert message in str(err.value)


BAD_CONFIGS = [
    ({"source": {"type": "csv", "path": "x"}}, "data: source: unknown type 'csv'"),
    ({"source": {"type": "table"}}, "give either 'path'"),
    ({"source": {"type": "table", "path": "x"}, "min_count": 0}, "min_count: must be >= 1"),
    ({"source": {"type": "table", "path": "x"}, "split": {"val_fraction": 0.6, "test_fraction": 0.5}},
     "val_fraction + test_fraction must be < 1"),
    ({"source": {"type": "table", "path": "x"}, "split": {"method": "time"}}, "needs 'time_column'"),
    ({"source": {"type": "table", "path": "x"}, "dense": ["a", "a"]}, "column 'a' is listed twice"),
    ({"source": {"type": "table", "path": "x"}, "colour": 1}, "colour: unknown key"),
]


@pytest.mark.parametrize(("cfg", "message"), BAD_CONFIGS)
def test_bad_dataset_configs(cfg: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(cfg, DatasetConfig, source="data")
    assert message in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        _prep({"source": {"type": "criteo", "path": str(tmp_path / "none.txt")}}, tmp_path)
