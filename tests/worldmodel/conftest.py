"""A tiny ESMM world model, trained once per test session (a few seconds on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

AD_FIELDS = ["item_id", "item_cat", "item_price"]


@pytest.fixture(scope="session")
def world_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ESMM world model trained by the pipeline on synthetic CTR/CVR data."""
    from adsim.config import parse_config
    from adsim.models.config import RunConfig
    from adsim.models.run import train_run
    from adsim.models.synthetic_ctcvr import DENSE, LABELS, SPARSE, generate_ctr_cvr

    tmp = tmp_path_factory.mktemp("world")
    generate_ctr_cvr(5000, seed=1, n_users=1500, n_items=60).to_parquet(tmp / "rows.parquet")
    cfg = parse_config({
        "name": "world",
        "data": {"source": {"type": "table", "path": str(tmp / "rows.parquet")},
                 "labels": list(LABELS), "dense": list(DENSE), "sparse": list(SPARSE),
                 "processed_dir": str(tmp / "processed")},
        "model": {"name": "esmm", "options": {"embed_dim": 4, "tower": [16]}},
        "train": {"epochs": 1, "batch_size": 256, "progress": False, "tensorboard": False,
                  "device": "cpu"},
        "calibration": {"method": "platt"},
    }, RunConfig)
    return train_run(cfg, tmp / "run", progress=False)


def decoded_rows(world, user_ids: np.ndarray, ads: np.ndarray) -> pd.DataFrame:
    """Raw rows (the run's own column names and raw values) of (user, ad) pairs, decoded from the
    world's encoded users and ads with the run's preprocessor — an independent path to the
    network's input (the run re-encodes them in ``predict_frame``)."""
    truth = world.truth
    pre = truth.run.preprocessor
    users = world.population.users.take(np.asarray(user_ids))
    out: dict[str, list] = {}

    def dense(c, v):
        j = pre.dense.index(c)
        y = v * pre.scale_[j] + pre.mean_[j]
        return np.sign(y) * np.expm1(np.abs(y)) if c in pre.log1p else y

    for i, c in enumerate(truth.user_columns["dense"]):
        out[c] = dense(c, users.dense[:, i])
    for i, c in enumerate(truth.user_columns["sparse"]):
        out[c] = [pre.vocab_[c][int(v) - 2] for v in users.sparse[:, i]]
    for c in AD_FIELDS:
        v = truth.ad_table[c].to_numpy()[np.asarray(ads)]
        out[c] = dense(c, v) if c in pre.dense else [pre.vocab_[c][int(x) - 2] for x in v]
    return pd.DataFrame(out)


def direct_click_conversion(world, user_ids: np.ndarray, ads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per (user, ad) pair: P(click) and P(conversion | click) by a direct forward pass of the run
    folder (preprocessor → network → calibrators), ESMM's pCVR = pCTCVR / pCTR, clipped."""
    p = world.truth.run.predict_frame(decoded_rows(world, user_ids, ads), calibrated=True)
    ctr = np.clip(p[:, 0], 1e-6, 1 - 1e-6)
    cvr = np.clip(np.clip(p[:, 1], 1e-6, 1 - 1e-6) / ctr, 1e-6, 1 - 1e-6)
    return ctr, cvr


@pytest.fixture(scope="session")
def direct_probs():
    """:func:`direct_click_conversion` as a fixture (test modules do not import conftest)."""
    return direct_click_conversion
