"""ONNX export parity, the ONNX Runtime serving option, INT8 quantisation, distillation."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

USER_GROUP = ["x0", "x1", "x2", "region", "device", "segment"]  # as in conftest.py


@pytest.fixture(scope="module")
def run_copy(runs, tmp_path_factory):
    d = tmp_path_factory.mktemp("export") / "main"
    shutil.copytree(runs["main"], d)
    return d


def test_onnx_export_matches_pytorch(run_copy, runs):
    from adsim.models.checkpoint import load_run
    from adsim.models.export import check_onnx_parity, export_run, load_onnx_for_run, onnx_session

    meta = export_run(run_copy)
    assert (run_copy / "model.onnx").exists()
    assert json.loads((run_copy / "model.onnx.json").read_text())["checkpoint_sha256"] == meta["checkpoint_sha256"]
    assert meta["max_abs_diff_proba"] <= 1e-5 and meta["max_abs_diff_logits"] <= 1e-5
    run = load_run(run_copy)
    data, how = load_onnx_for_run(run)
    assert how == "file"
    again = check_onnx_parity(run.model, run.schema, onnx_session(data), n=4096, seed=7)
    assert again["max_abs_diff_proba"] <= 1e-5
    # a file recorded for another checkpoint is refused, never served
    from adsim.errors import DataError
    from adsim.models.export import export_onnx

    meta_f = run_copy / "model.onnx.json"
    meta_f.write_text(json.dumps({**meta, "checkpoint_sha256": "0" * 64}))
    with pytest.raises(DataError, match="model.onnx was exported from another checkpoint"):
        load_onnx_for_run(run)
    # a model.onnx copied in from another run (its record left as it was) is refused too
    meta_f.write_text(json.dumps(meta))
    other = load_run(runs["cold"])
    (run_copy / "model.onnx").write_bytes(export_onnx(other.model, other.schema))
    with pytest.raises(DataError, match="model.onnx does not match model.onnx.json"):
        load_onnx_for_run(run)
    # an export killed before its record was written: the graph file is ignored, exported afresh
    meta_f.unlink()
    assert load_onnx_for_run(run)[1] == "exported"


def test_onnx_backend_serves_the_same_scores(runs, raw_rows):
    from fastapi.testclient import TestClient

    from adsim.serving.app import create_app
    from adsim.serving.config import ServeConfig

    body = {"user_id": "u", "user": {c: raw_rows[c].iloc[0].item() for c in USER_GROUP},
            "candidates": [{"features": {"ad_id": int(a)}} for a in raw_rows["ad_id"].iloc[:50]]}
    got = {}
    for backend in ("torch", "onnx"):
        cfg = ServeConfig(models=[{"path": str(runs["main"]), "version": "m"}], backend=backend)
        r = TestClient(create_app(cfg)).post("/v1/predict", json=body)
        assert r.status_code == 200
        got[backend] = np.array([c["pctr"] for c in r.json()["candidates"]])
    np.testing.assert_allclose(got["onnx"], got["torch"], rtol=0, atol=1e-5)


def test_int8_embeddings_and_dynamic_mlp(runs):
    from adsim.models.checkpoint import load_run
    from adsim.models.export import Int8FieldEmbedding, compression_report, quantize_embeddings_int8, random_inputs, torch_logits

    run = load_run(runs["main"])
    q = quantize_embeddings_int8(run.model)
    assert isinstance(q.embed, Int8FieldEmbedding) and q.embed.q.dtype == torch.int8
    w = run.model.embed.table.weight.detach()
    deq = q.embed.q.float() * q.embed.scale[:, None]
    assert torch.all((deq - w).abs() <= q.embed.scale[:, None] / 2 + 1e-7)  # rounding error ≤ half a step
    x = random_inputs(run.schema, 256, np.random.default_rng(0))
    assert np.max(np.abs(torch_logits(q, x) - torch_logits(run.model, x))) < 0.05
    rows = {r["variant"]: r for r in compression_report(runs["main"], repeat=3)}
    assert set(rows) == {"fp32", "int8 embeddings", "dynamic int8 MLP", "int8 embeddings + MLP"}
    assert rows["int8 embeddings"]["weights_bytes"] < rows["fp32"]["weights_bytes"]
    assert rows["int8 embeddings + MLP"]["weights_bytes"] < rows["int8 embeddings"]["weights_bytes"]
    for r in rows.values():
        assert abs(r["delta_auc"]) < 0.01, r  # the quantised models rank (almost) like fp32


def test_distillation_writes_a_servable_run(runs, tmp_path):
    from adsim.models.checkpoint import load_run
    from adsim.models.distill import distill

    rep = distill(runs["main"], tmp_path / "small", {"embed_dim": 2, "hidden": [4]}, baseline=False,
                  train_overrides={"epochs": 3, "lr": 0.02})
    small = load_run(tmp_path / "small")
    assert rep["models"]["student (distilled)"]["parameters"] < rep["models"]["teacher"]["parameters"]
    assert small.schema == load_run(runs["main"]).schema
    print(rep["models"])
    assert rep["models"]["student (distilled)"]["test_auc"] > rep["models"]["teacher"]["test_auc"] - 0.05
    assert json.loads((tmp_path / "small" / "distill.json").read_text())["alpha"] == 0.5
