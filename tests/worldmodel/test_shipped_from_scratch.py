"""The shipped trained-world scenarios run from a fresh clone with `adsim run FILE` alone: the
world model is trained into an empty build cache on the way (slow: minutes)."""

from __future__ import annotations

import pytest

from adsim.cli import main


@pytest.mark.slow
@pytest.mark.parametrize("name", ["world_model", "trained_world_bidding"])
def test_shipped_scenario_runs_from_an_empty_cache(repo_root, tmp_path, monkeypatch, name):
    monkeypatch.setenv("ADSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(repo_root)
    out = tmp_path / name
    assert main(["run", f"scenarios/{name}.yaml", "--quiet", "--out", str(out)]) == 0
    assert (out / "results.json").exists() and (out / "report.md").exists()
    assert any((tmp_path / "cache" / "world_model").iterdir())
