"""Fixtures: the real Ali-CCP and AliExpress samples, prepared by the pipeline's data prep."""

from __future__ import annotations

from pathlib import Path

import pytest

ALI_CCP_SPARSE = ["101", "121", "122", "124", "125", "126", "127", "128", "129", "205", "206",
                  "207", "210", "216", "508", "509", "702", "853", "301", "109_14", "110_14",
                  "127_14", "150_14"]
ALI_CCP_DENSE = ["D109_14", "D110_14", "D127_14", "D150_14", "D508", "D509", "D702", "D853"]


def _prepare(data: dict, tmp: Path):
    from adsim.config import parse_config
    from adsim.models.config import DatasetConfig
    from adsim.models.data import load_split, prepare_data

    data = {**data, "processed_dir": str(tmp)}
    cfg = parse_config(data, DatasetConfig, source="test")
    prepare_data(cfg)
    train, schema = load_split(tmp, "train")
    val, _ = load_split(tmp, "val")
    return train, val, schema


@pytest.fixture(scope="session")
def ali_ccp(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    d = shared_data / "ali_ccp"
    return _prepare({
        "source": {"type": "table", "train_path": str(d / "ali_ccp_train_sample.csv"),
                   "val_path": str(d / "ali_ccp_val_sample.csv"),
                   "test_path": str(d / "ali_ccp_test_sample.csv")},
        "labels": ["click", "purchase"], "dense": ALI_CCP_DENSE, "sparse": ALI_CCP_SPARSE,
    }, tmp_path_factory.mktemp("ali_ccp"))


@pytest.fixture(scope="session")
def aliexpress(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    d = shared_data / "aliexpress_mtl"
    return _prepare({
        "source": {"type": "table", "train_path": str(d / "train.csv"),
                   "val_path": str(d / "test.csv"), "test_path": str(d / "test.csv")},
        "labels": ["click", "conversion"],
        "dense": [f"numerical_{i}" for i in range(1, 64)],
        "sparse": [f"categorical_{i}" for i in range(1, 17)],
        "group_column": "search_id",
    }, tmp_path_factory.mktemp("aliexpress"))


@pytest.fixture(scope="session")
def taobao_seq(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """The Taobao display-ad sample with its real ``click_sequence`` behaviour column."""
    d = shared_data / "taobao_ad"
    return _prepare({
        "source": {"type": "table", "train_path": str(d / "train_sample.csv"),
                   "val_path": str(d / "valid_sample.csv"), "test_path": str(d / "test_sample.csv")},
        "labels": ["clk"], "dense": ["price"],
        "sparse": ["userid", "adgroup_id", "pid", "cate_id", "brand", "age_level"],
        "sequences": [{"name": "click_sequence", "sep": "^", "max_len": 5}],
        "log1p": ["price"],
    }, tmp_path_factory.mktemp("taobao"))
