"""Derived temporal and cross features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adsim.errors import DataError
from adsim.models.temporal import DerivedFeaturesConfig, derive_features, derived_columns


def _naive_recency(df):
    out = []
    for _, r in df.iterrows():
        prev = df[(df.user == r.user) & (df.ts < r.ts) & (df.click == 1)]
        out.append(r.ts - prev.ts.max() if len(prev) else -1.0)
    return np.array(out, dtype=float)


def test_recency_matches_a_naive_loop_and_never_sees_its_own_click():
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"user": rng.integers(0, 12, n), "ts": rng.integers(0, 50, n) * 60.0,
                       "click": rng.integers(0, 2, n), "item": rng.integers(0, 5, n)})
    cfg = DerivedFeaturesConfig(time_column="ts", user_column="user", click_column="click",
                                recency_log=False, crosses=[("user", "item")])
    out = derive_features(df, cfg)
    np.testing.assert_allclose(out["recency_since_last_click"], _naive_recency(df))
    assert (out["user×item"] == df.user.astype(str) + "|" + df.item.astype(str)).all()
    assert set(derived_columns(cfg)["sparse"]) <= set(out.columns)


def test_hour_and_weekday():
    ts = pd.Series([0, 3600 * 13, 86400 * 4 + 3600 * 23])  # Thu 1970-01-01 00h, 13h, Mon 23h
    out = derive_features(pd.DataFrame({"ts": ts}), DerivedFeaturesConfig(time_column="ts"))
    assert out["hour_of_day"].tolist() == [0, 13, 23]
    assert out["day_of_week"].tolist() == [3, 3, 0]
    log = derive_features(pd.DataFrame({"ts": ["2024-05-06 10:30:00"]}), DerivedFeaturesConfig(time_column="ts"))
    assert log["hour_of_day"].tolist() == [10] and log["day_of_week"].tolist() == [0]


@pytest.mark.parametrize(
    ("cfg", "df", "message"),
    [
        ({"time_column": "t"}, {"ts": [1]}, "column 't' is not in the data"),
        ({"user_column": "u", "click_column": "c"}, {"u": [1], "c": [0]}, "needs time_column"),
        ({"time_column": "t"}, {"t": ["yesterday"]}, "cannot read 'yesterday' at row 0"),
        ({"crosses": [["a", "b"]]}, {"a": [1]}, "column 'b' is not in the data"),
    ],
)
def test_errors(cfg, df, message):
    with pytest.raises(DataError, match=message):
        derive_features(pd.DataFrame(df), DerivedFeaturesConfig(**cfg))
