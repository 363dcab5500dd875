"""The HTTP API through FastAPI's TestClient: scores, validation, routing, fallback, ops endpoints."""

from __future__ import annotations

import numpy as np
import pytest

USER_GROUP = ["x0", "x1", "x2", "region", "device", "segment"]  # as in conftest.py


def _body(raw_rows, n=20, user_row=0, **extra):
    r = raw_rows.iloc[user_row]
    user = {c: (r[c].item() if hasattr(r[c], "item") else r[c]) for c in USER_GROUP}
    cands = [{"id": f"ad-{i}", "features": {"ad_id": int(a)}} for i, a in enumerate(raw_rows["ad_id"].iloc[:n])]
    return {"user_id": "user-1", "user": user, "candidates": cands, **extra}


def test_predict_matches_offline_scoring(client, runs, raw_rows):
    """The online path (fast encoder) gives the batch path's (Run.predict_frame) probabilities."""
    from adsim.models.checkpoint import load_run

    body = _body(raw_rows, n=30)
    r = client.post("/v1/predict", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model_version"] == "main" and r.headers["x-model-version"] == "main"
    assert out["routed_by"] == "ab" and out["fallback_reason"] is None and out["tasks"] == ["click"]
    assert [c["id"] for c in out["candidates"]] == [f"ad-{i}" for i in range(30)]
    df = raw_rows.iloc[:30].copy()
    for c in USER_GROUP:
        df[c] = raw_rows[c].iloc[0]
    ref = load_run(runs["main"]).predict_frame(df)[:, 0]
    got = np.array([c["pctr"] for c in out["candidates"]])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
    assert all(c["pcvr"] is None and c["scores"]["click"] == c["pctr"] for c in out["candidates"])


def test_missing_optional_features_take_defaults(client, raw_rows):
    body = _body(raw_rows, n=3)
    full = client.post("/v1/predict", json=body).json()
    body["user"].pop("x1")
    body["user"]["region"] = None
    part = client.post("/v1/predict", json=body)
    assert part.status_code == 200 and part.json()["model_version"] == "main"
    body["candidates"][0]["features"]["ad_id"] = 10_000  # unknown → OOV, still scored
    oov = client.post("/v1/predict", json=body)
    assert oov.status_code == 200 and 0 < oov.json()["candidates"][0]["pctr"] < 1
    assert full["candidates"][1]["pctr"] != part.json()["candidates"][1]["pctr"]  # defaults did change x1


def test_bids(client, raw_rows):
    body = _body(raw_rows, n=4, bidding={"policy": "truthful_cpc", "value": 2.0})
    body["candidates"][1]["value"] = 10.0
    out = client.post("/v1/predict", json=body).json()["candidates"]
    assert out[0]["bid"] == pytest.approx(2.0 * out[0]["pctr"])
    assert out[1]["bid"] == pytest.approx(10.0 * out[1]["pctr"])
    body["bidding"] = {"policy": "shaded_cpc", "value": 2.0, "shading": 0.5, "max_bid": 0.01}
    out = client.post("/v1/predict", json=body).json()["candidates"]
    assert all(c["bid"] == pytest.approx(min(0.01, 0.5 * 2.0 * c["pctr"])) for c in out)


INVALID = [
    ({"candidates": [{}]}, "user_id: Field required"),
    ({"user_id": "u", "candidates": []}, "candidates: List should have at least 1 item"),
    ({"user_id": "u", "candidates": [{"features": {"ad_id": {"a": 1}}}]}, "candidates[0].features.ad_id"),
    ({"user_id": "u", "candidates": [{}], "extra": 1}, "extra: Extra inputs are not permitted"),
    ({"user_id": "u", "user": {"x0": "high"}, "candidates": [{}]},
     "feature 'x0' (dense) must be a number or null, got 'high' in the user features"),
    ({"user_id": "u", "user": {"x0": 1}, "candidates": [{}, {"features": {"adid": 3}}]},
     "unknown feature 'adid' in candidates[1].features; known features: ad_id"),
    ({"user_id": "u", "user": {"agee": 1}, "candidates": [{}]}, "unknown feature 'agee' in user"),
    ({"user_id": "u", "user": {"x0": 1}, "candidates": [{"features": {"ad_id": 1}}, {"features": {"ad_id": [1, 2]}}]},
     "feature 'ad_id' (sparse) must be one value (string, number, boolean or null), got [1, 2] in candidate 1"),
    ({"user_id": "u", "user": {"region": [3]}, "candidates": [{}]}, "feature 'region' (sparse) must be one value"),
    ({"user_id": "u", "candidates": [{"value": -1}]}, "candidates[0].value: Input should be greater than or equal to 0"),
    ({"user_id": "u", "user": {"x0": 1}, "candidates": [{}], "bidding": {"policy": "truthful_cpc"}},
     "candidates[0].value is missing and bidding.value is not set"),
    ({"user_id": "u", "user": {"x0": 1}, "candidates": [{}], "bidding": {"policy": "truthful_cpa", "value": 1}},
     "bidding.policy 'truthful_cpa' needs pCVR"),
    ({"user_id": "u", "candidates": [{}], "bidding": {"policy": "bid_high"}}, "bidding.policy: Input should be"),
]


@pytest.mark.parametrize("body, message", INVALID)
def test_invalid_requests_get_422_with_a_clear_message(client, body, message):
    r = client.post("/v1/predict", json=body)
    assert r.status_code == 422, r.text
    assert message in r.json()["message"]


def test_malformed_json_is_422(client):
    r = client.post("/v1/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["message"]


def test_too_many_candidates(runs, serve_config, raw_rows):
    from fastapi.testclient import TestClient

    from adsim.serving.app import create_app

    app = create_app(serve_config.model_copy(update={"max_candidates": 5}))
    r = TestClient(app).post("/v1/predict", json=_body(raw_rows, n=6))
    assert r.status_code == 422 and "candidates has 6 ads; at most 5" in r.json()["message"]


def test_version_pinning_and_cold_start_fallback(client, raw_rows):
    pinned = client.post("/v1/predict", json=_body(raw_rows, n=3, version="cold")).json()
    assert pinned["model_version"] == "cold" and pinned["routed_by"] == "pinned"
    missing = client.post("/v1/predict", json=_body(raw_rows, n=3, version="v999")).json()
    assert missing["model_version"] == "cold" and missing["routed_by"] == "fallback"
    assert "requested version 'v999' is not served" in missing["fallback_reason"]
    body = _body(raw_rows, n=3)
    body["user"] = {}  # a new user: no user features at all
    cold = client.post("/v1/predict", json=body).json()
    assert cold["model_version"] == "cold" and "feature group 'user' is missing" in cold["fallback_reason"]
    # the cold model is the ad-only run: its scores depend on the ad only
    again = client.post("/v1/predict", json={**body, "user_id": "someone-else"}).json()
    assert [c["pctr"] for c in again["candidates"]] == [c["pctr"] for c in cold["candidates"]]


def test_ab_split_proportions_and_stickiness(runs):
    from adsim.serving.registry import ModelRegistry, ServedModel, ab_bucket

    models = [ServedModel.load(runs["main"], v, w, "torch", 1, {}) for v, w in (("a", 0.7), ("b", 0.2), ("c", 0.1))]
    reg = ModelRegistry(models)
    n = 20_000
    counts: dict[str, int] = {"a": 0, "b": 0, "c": 0}
    for i in range(n):
        counts[reg.route(f"user-{i}").version] += 1
    for v, w in (("a", 0.7), ("b", 0.2), ("c", 0.1)):
        tol = 4 * np.sqrt(w * (1 - w) / n)  # 4 standard errors
        assert abs(counts[v] / n - w) < tol, (v, counts)
    assert all(reg.route(f"user-{i}").version == reg.route(f"user-{i}").version for i in range(100))
    assert ab_bucket("user-1") == ab_bucket("user-1") != ab_bucket("user-1", salt="other")
    # the documented formula, pinned: the split must not change between releases or processes
    import hashlib

    want = int.from_bytes(hashlib.sha256(b"adsim-ab:user-1").digest()[:8], "big") / 2.0**64
    assert ab_bucket("user-1") == want


def test_ab_routing_over_http(runs, raw_rows):
    from fastapi.testclient import TestClient

    from adsim.serving.app import create_app
    from adsim.serving.config import ServeConfig

    cfg = ServeConfig(models=[{"path": str(runs["main"]), "version": "A", "weight": 1},
                              {"path": str(runs["main"]), "version": "B", "weight": 1}])
    c = TestClient(create_app(cfg))
    seen = {}
    for i in range(200):
        v = c.post("/v1/predict", json={**_body(raw_rows, n=1), "user_id": i}).json()["model_version"]
        seen[i] = v
    share = sum(v == "A" for v in seen.values()) / len(seen)
    assert 0.35 < share < 0.65
    assert all(c.post("/v1/predict", json={**_body(raw_rows, n=1), "user_id": i}).json()["model_version"] == seen[i]
               for i in range(20))


def test_batch_equals_single_requests(client, raw_rows):
    reqs = [_body(raw_rows, n=5, user_row=k) for k in range(3)]
    reqs[1]["version"] = "cold"
    reqs[2]["user_id"] = "other"
    r = client.post("/v1/predict/batch", json={"requests": reqs})
    assert r.status_code == 200, r.text
    singles = [client.post("/v1/predict", json=q).json() for q in reqs]
    for got, want in zip(r.json()["responses"], singles):
        assert got["model_version"] == want["model_version"]
        np.testing.assert_allclose([c["pctr"] for c in got["candidates"]], [c["pctr"] for c in want["candidates"]],
                                   atol=1e-6)
    bad = client.post("/v1/predict/batch", json={"requests": [reqs[0], {"user_id": "x", "candidates": [{"features": {"nope": 1}}]}]})
    assert bad.status_code == 422 and "requests[1].candidates[0].features" in bad.json()["message"]


def test_feature_spec_endpoint(client):
    spec = client.get("/v1/feature-spec").json()
    assert spec["title"] == "features of model version main"
    assert {"x0", "x1", "x2", "region", "device", "segment", "ad_id"} == set(spec["properties"])
    assert spec["x-adsim-groups"]["user"] == USER_GROUP
    cold = client.get("/v1/feature-spec", params={"version": "cold"}).json()
    assert set(cold["properties"]) == {"ad_id"}
    r = client.get("/v1/feature-spec", params={"version": "nope"})
    assert r.status_code == 422 and "version 'nope' is not served" in r.json()["message"]


def test_ops_endpoints(client, raw_rows):
    assert client.get("/healthz").json() == {"status": "ok", "versions": ["main", "cold"], "default": "cold"}
    models = client.get("/v1/models").json()
    assert models["default"] == "cold" and models["models"][0]["share"] == 1.0
    client.post("/v1/predict", json=_body(raw_rows, n=2))
    text = client.get("/metrics").text
    assert 'adsim_requests_total{path="/v1/predict",status="200"}' in text
    assert 'adsim_request_latency_seconds_bucket{le="0.01",path="/v1/predict"}' in text
    assert 'adsim_stage_latency_seconds_count{stage="model"}' in text
    assert 'adsim_predictions_total{endpoint="/v1/predict",routed_by="ab",version="main"}' in text
    api = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/predict/batch", "/v1/feature-spec", "/healthz", "/metrics"} <= set(api["paths"])
    assert "PredictRequest" in api["components"]["schemas"]


def test_user_feature_store_lookup(runs, serve_config, raw_rows, tmp_path):
    """With a user feature store, a request may carry only the user id; unknown users fall back."""
    from fastapi.testclient import TestClient

    from adsim.serving.app import create_app

    users = raw_rows[["user_id", *USER_GROUP]].drop_duplicates("user_id").head(20)
    users.to_parquet(tmp_path / "users.parquet", index=False)
    c = TestClient(create_app(serve_config.model_copy(update={"user_features": str(tmp_path / "users.parquet")})))
    uid = users["user_id"].iloc[3]
    inline = _body(raw_rows, n=5)
    inline["user"] = {k: (v.item() if hasattr(v, "item") else v) for k, v in users.iloc[3][USER_GROUP].items()}
    want = c.post("/v1/predict", json=inline).json()
    got = c.post("/v1/predict", json={"user_id": int(uid), "candidates": inline["candidates"]}).json()
    assert got["model_version"] == "main" and got["routed_by"] == want["routed_by"] == "ab"
    assert [x["pctr"] for x in got["candidates"]] == [x["pctr"] for x in want["candidates"]]
    unknown = c.post("/v1/predict", json={"user_id": "nobody", "candidates": inline["candidates"]}).json()
    assert unknown["model_version"] == "cold" and "feature group 'user' is missing" in unknown["fallback_reason"]
