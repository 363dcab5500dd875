"""Fixtures: two tiny run folders trained in seconds with the CTR pipeline's own API.

* ``main`` — DeepFM on all features (3 dense user features, 3 sparse user fields, ad_id);
* ``cold`` — an ad-only model (ad_id), the cold-start default for users without features.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

SOURCE = {"type": "synthetic", "n_rows": 4000, "n_users": 400, "n_ads": 6, "n_dense": 3, "base_ctr": 0.2,
          "seed": 3}
USER_GROUP = ["x0", "x1", "x2", "region", "device", "segment"]


def _train(out: Path, processed: Path, dense: list[str] | None, sparse: list[str] | None, hidden: list[int],
           method: str) -> Path:
    from adsim.config import parse_config
    from adsim.models.config import RunConfig
    from adsim.models.run import train_run

    data: dict = {"source": SOURCE, "processed_dir": str(processed)}
    if dense is not None:
        data["dense"] = dense
    if sparse is not None:
        data["sparse"] = sparse
    cfg = parse_config({
        "name": out.name, "data": data,
        "model": {"name": "deepfm", "options": {"embed_dim": 4, "hidden": hidden}},
        "train": {"epochs": 1, "batch_size": 256, "lr": 0.01, "progress": False, "num_threads": 1,
                  "checkpoint_every": 1000, "tensorboard": False, "seed": 0},
        "calibration": {"method": method},
    }, RunConfig, source="test fixture")
    return train_run(cfg, out)


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serving_runs")
    return {
        "main": _train(root / "main", root / "p_main", None, None, [16], "isotonic"),
        "cold": _train(root / "cold", root / "p_cold", [], ["ad_id"], [8], "platt"),
    }


@pytest.fixture(scope="session")
def raw_rows() -> pd.DataFrame:
    """Raw (unencoded) rows from the same synthetic source, a different seed."""
    from adsim.models.config import SyntheticSource
    from adsim.models.readers import generate_synthetic

    df, _ = generate_synthetic(SyntheticSource(**{**SOURCE, "n_rows": 300, "seed": 11}))
    return df


@pytest.fixture(scope="session")
def serve_config(runs: dict[str, Path]):
    from adsim.serving.config import ServeConfig

    return ServeConfig(
        models=[{"path": str(runs["main"]), "version": "main", "weight": 1.0},
                {"path": str(runs["cold"]), "version": "cold", "weight": 0.0}],
        default="cold", feature_groups={"user": USER_GROUP, "ad": ["ad_id"]},
    )


@pytest.fixture(scope="session")
def client(serve_config):
    from fastapi.testclient import TestClient

    from adsim.serving.app import create_app

    with TestClient(create_app(serve_config)) as c:
        yield c
