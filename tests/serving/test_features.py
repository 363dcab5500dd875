"""The online encoder reproduces the training encoding; the feature spec describes it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adsim.errors import DataError
from adsim.serving.features import FeatureEncoder, feature_spec, raw_key


def _request(df: pd.DataFrame, user_cols: list[str], cand_cols: list[str]) -> tuple[dict, list[dict]]:
    """One user (the first row's user features) × every row's candidate features."""
    user = {c: df[c].iloc[0].item() if hasattr(df[c].iloc[0], "item") else df[c].iloc[0] for c in user_cols}
    cands = [{c: (v.item() if hasattr(v, "item") else v) for c, v in zip(cand_cols, row)}
             for row in df[cand_cols].itertuples(index=False)]
    return user, cands


def test_encoder_matches_training_encoding(runs, raw_rows):
    from adsim.models.checkpoint import load_run

    run = load_run(runs["main"])
    pre = run.preprocessor
    df = raw_rows.copy()
    df.loc[df.index[:5], "ad_id"] = 999  # unseen ad → OOV
    df.loc[df.index[5:8], "x1"] = np.nan  # missing dense → mean
    df.loc[df.index[8:10], "region"] = 12345
    enc = FeatureEncoder(pre)
    # every feature per candidate (all columns vary)
    feats = [*pre.dense, *pre.sparse]
    user, cands = _request(df, [], feats)
    cands = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in c.items()} for c in cands]
    got = enc.encode(user, cands)
    ref = pre.transform(df, "test rows")
    np.testing.assert_allclose(got.dense, ref[pre.dense].to_numpy(np.float32), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got.sparse, ref[pre.sparse].to_numpy(np.int64))
    assert (got.sparse[:5, pre.sparse.index("ad_id")] == 1).all()
    assert (got.dense[5:8, pre.dense.index("x1")] == 0).all()


def test_user_level_values_broadcast_and_candidate_overrides(runs, raw_rows):
    from adsim.models.checkpoint import load_run

    pre = load_run(runs["main"]).preprocessor
    enc = FeatureEncoder(pre)
    user = {"x0": 0.5, "region": 3, "ad_id": 2}
    b = enc.encode(user, [{}, {"ad_id": 4}, {"region": "3"}])
    j_ad, j_reg = pre.sparse.index("ad_id"), pre.sparse.index("region")
    ids = pre.vocab_["ad_id"]
    assert b.sparse[0, j_ad] == ids.index("2") + 2 and b.sparse[1, j_ad] == ids.index("4") + 2
    assert b.sparse[2, j_reg] == b.sparse[0, j_reg]  # "3" and 3 are the same key
    assert np.all(b.dense[:, 0] == b.dense[0, 0])


@pytest.mark.parametrize("value, key", [(None, "__missing__"), (True, "1"), (3, "3"), (3.0, "3"),
                                        (2.5, "2.5"), (float("nan"), "__missing__"), ("a", "a")])
def test_raw_key_matches_category_keys(value, key):
    from adsim.models.data import category_keys

    assert raw_key(value) == key
    if value is not None and not isinstance(value, bool):
        assert category_keys(pd.Series([value]))[0] == key


@pytest.mark.parametrize("user, cands, message", [
    ({"x0": "abc"}, [{}], "feature 'x0' (dense) must be a number or null, got 'abc' in the user features"),
    ({}, [{}, {"x1": True}], "feature 'x1' (dense) must be a number or null, got True in candidate 1"),
    ({}, [{"x2": [1, 2]}], "feature 'x2' (dense) must be a number or null, got [1, 2] in candidate 0"),
])
def test_bad_values(runs, user, cands, message):
    from adsim.models.checkpoint import load_run

    enc = FeatureEncoder(load_run(runs["main"]).preprocessor)
    with pytest.raises(DataError) as exc:
        enc.encode(user, cands)
    assert message in str(exc.value)


def test_feature_spec_contents(runs):
    from adsim.models.checkpoint import load_run

    pre = load_run(runs["main"]).preprocessor
    spec = feature_spec(FeatureEncoder(pre), "main", {"user": ["x0", "region"], "ad": ["ad_id"]})
    assert spec["$schema"].endswith("2020-12/schema") and spec["additionalProperties"] is False
    props = spec["properties"]
    assert set(props) == {*pre.dense, *pre.sparse}
    assert props["x0"]["x-adsim"]["kind"] == "dense" and props["x0"]["default"] == pytest.approx(pre.mean_[0])
    assert props["ad_id"]["x-adsim"]["vocab_size"] == len(pre.vocab_["ad_id"]) + 2
    assert props["ad_id"]["x-adsim"]["oov_id"] == 1 and props["ad_id"]["x-adsim"]["group"] == "ad"
    assert props["region"]["x-adsim"]["group"] == "user" and spec["required"] == []


def test_sequences_log1p_and_strings_match_the_preprocessor():
    """A hand-built preprocessor with every column kind: log1p dense, string sparse, a sequence."""
    from adsim.models.data import Preprocessor

    rng = np.random.default_rng(0)
    n = 200
    train = pd.DataFrame({
        "y": rng.integers(0, 2, n),
        "d": rng.exponential(100.0, n),
        "s": rng.choice(["a", "b", "c", None], n),
        "hist": ["^".join(map(str, rng.integers(0, 30, rng.integers(0, 6)))) for _ in range(n)],
    })
    pre = Preprocessor(["y"], ["d"], ["s"], [("hist", "^", 3)], min_count=2, log1p=["d"]).fit(train)
    rows = pd.DataFrame({"y": [0] * 5, "d": [0.0, 5.0, np.nan, 1e6, -3.0], "s": ["a", "zzz", None, "c", "b"],
                         "hist": ["1^2^3^4^5", "", None, "999^7", "7"]})
    ref = pre.transform(rows)
    enc = FeatureEncoder(pre)
    cands = [{"d": None if np.isnan(d) else d, "s": s, "hist": h} for d, s, h in zip(rows["d"], rows["s"], rows["hist"])]
    got = enc.encode({}, cands)
    np.testing.assert_allclose(got.dense[:, 0], ref["d"].to_numpy(), atol=1e-6)
    np.testing.assert_array_equal(got.sparse[:, 0], ref["s"].to_numpy())
    np.testing.assert_array_equal(got.seq[:, 0, :], ref[[f"hist:{i}" for i in range(3)]].to_numpy())
    # lists of ids are the same as joined strings; a user-level sequence broadcasts
    as_list = enc.encode({"hist": [1, 2, 3, 4, 5]}, [{}, {}])
    np.testing.assert_array_equal(as_list.seq[1, 0], got.seq[0, 0])
    spec = feature_spec(enc, "v")
    assert spec["properties"]["hist"]["x-adsim"] == {"kind": "sequence", "vocab_size": len(pre.vocab_["hist"]) + 2,
                                                     "max_len": 3, "sep": "^", "oov_id": 1, "group": None}
    assert spec["properties"]["d"]["x-adsim"]["log1p"] is True
