"""``adsim predict`` (streaming batch scoring), ``adsim export`` and ``adsim serve`` option errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adsim.cli import main


def test_predict_streams_in_chunks_and_matches_predict_frame(runs, raw_rows, tmp_path, capsys):
    from adsim.models.checkpoint import load_run

    src = tmp_path / "rows.parquet"
    rows = raw_rows.drop(columns=["click", "p_click"])  # labels and truth are not needed
    rows.to_parquet(src, index=False)
    out = tmp_path / "scored.parquet"
    assert main(["predict", str(runs["main"]), "--input", str(src), "--output", str(out), "--chunk-size", "64",
                 "--quiet", "--raw"]) == 0
    got = pd.read_parquet(out)
    assert len(got) == len(rows) and list(got.columns) == [*rows.columns, "pred_click", "pred_click_raw"]
    ref = load_run(runs["main"]).predict_frame(raw_rows)
    np.testing.assert_allclose(got["pred_click"].to_numpy(), ref[:, 0], atol=1e-7)
    assert not list(tmp_path.glob(".scored.parquet.*"))  # no temporary file left behind


@pytest.mark.parametrize("args, message", [
    (["--input", "missing.parquet"], "--input missing.parquet: file not found"),
    (["--input", "{csv}"], "not a readable parquet file"),
    (["--input", "{nofeat}"], "column 'x0' (data.dense) is not in the rows to score"),
    (["--input", "{ok}", "--columns", "nope"], "--columns: 'nope' is not a column"),
    (["--input", "{ok}", "--chunk-size", "0"], "--chunk-size must be >= 1"),
])
def test_predict_errors_exit_2(runs, raw_rows, tmp_path, capsys, args, message):
    files = {"csv": tmp_path / "a.csv", "nofeat": tmp_path / "b.parquet", "ok": tmp_path / "c.parquet"}
    raw_rows.to_csv(files["csv"])
    raw_rows.drop(columns=["x0"]).to_parquet(files["nofeat"])
    raw_rows.to_parquet(files["ok"])
    args = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    out = tmp_path / "out.parquet"
    assert main(["predict", str(runs["main"]), *args, "--output", str(out), "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["{main}", "{cold}", "--weights", "1"], "--weights has 1 numbers but 2 run folders"),
    (["{main}", "--weights", "x"], "--weights must be comma-separated numbers"),
    (["{main}", "--weights", "0"], "--weights must be >= 0 with a positive sum"),
    (["nowhere"], "run folder nowhere not found"),
    (["{main}", "--feature-group", "user"], "--feature-group must look like NAME=col1,col2"),
    (["{main}", "--feature-group", "user=age"], "feature_groups.user: 'age' is not a feature of any served model"),
    (["a={main}", "b={cold}", "--default", "c"], "default version 'c' is not among the served versions"),
    ([], "give at least one RUN_DIR"),
])
@pytest.mark.timeout(120)  # a regression would start the server and block
def test_serve_option_errors_exit_2_before_listening(runs, capsys, args, message):
    args = [a.format(main=runs["main"], cold=runs["cold"]) for a in args]
    assert main(["serve", *args, "--port", "1"]) == 2
    assert message in capsys.readouterr().err


def test_export_command(runs, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(runs["main"]), "--out", str(out)]) == 0
    assert out.exists() and "ONNX Runtime vs PyTorch max |Δp|" in capsys.readouterr().out


@pytest.mark.timeout(120)
def test_serve_incompatible_checkpoint_is_a_clear_error(runs, tmp_path, capsys):
    import shutil

    import torch

    bad = tmp_path / "old_run"
    shutil.copytree(runs["main"], bad)
    payload = torch.load(bad / "checkpoint.pt", weights_only=True)
    payload["state_dict"].pop(next(iter(payload["state_dict"])))  # as if written by older model code
    torch.save(payload, bad / "checkpoint.pt")
    assert main(["serve", str(bad), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert f"run folder {bad}" in err and "retrain it with `adsim train`" in err and "Traceback" not in err


def test_example_serve_config_parses(repo_root):
    from adsim.config import load_config
    from adsim.serving.config import ServeConfig

    cfg = load_config(repo_root / "configs" / "serve_ab.yaml", ServeConfig)
    assert [m.version for m in cfg.models] == ["large", "small", "cold"] and cfg.default == "cold"
