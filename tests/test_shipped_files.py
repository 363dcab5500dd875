"""Every shipped YAML is understood: `adsim validate` accepts every file under scenarios/ and
configs/, and (slow) every file under scenarios/ runs from scratch with `adsim run FILE` alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adsim.cli import main

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS + CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_yaml_validates(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert ": ok (" in out and " 0 candidates" not in out, out


def test_run_refuses_a_training_config_with_the_right_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(REPO / "configs" / "criteo_sample.yaml")]) == 2
    assert "run it with `adsim train" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(7200)
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_scenario_runs_from_a_fresh_clone_with_adsim_run_alone(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exactly `adsim run scenarios/FILE` in a copy of the repo's scenarios/ and configs/, with an
    empty build cache (trained worlds and RL agents are trained on the way)."""
    for d in ("scenarios", "configs"):
        shutil.copytree(REPO / d, tmp_path / d)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADSIM_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["run", f"scenarios/{path.name}"]) == 0
    runs = [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]
    assert len(runs) == 1 and any(runs[0].iterdir())


def test_a_saved_resolved_scenario_is_a_scenario(tmp_path: Path) -> None:
    """A run folder's scenario.yaml (every field written, ``bid_ope: null`` too) runs as a scenario."""
    from adsim.cli import _file_kind
    from adsim.config import load_scenario
    from adsim.experiments.report import write_scenario

    for name in ("quickstart.yaml", "second_price.yaml", "bid_ope_validation.yaml"):
        scn = load_scenario(REPO / "scenarios" / name)
        path = write_scenario(tmp_path / name.removesuffix(".yaml"), scn)
        want = "bid_validation" if name.startswith("bid_ope") else "scenario"
        assert _file_kind(path) == want, name
