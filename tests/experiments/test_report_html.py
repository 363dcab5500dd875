"""``report.html`` of each kind of run: self-contained, complete, and rendered by a real browser.

The browser checks open the page in Debian's headless ``chromium`` (``make install`` installs it
when missing and it can): the page renders, logs nothing to the console (a Content-Security-
Policy in the page turns any external fetch or script into a console error), and its screenshot
is not blank. Without chromium these tests skip locally and fail on CI (``CI`` set).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from adsim.cli import main
from adsim.config import load_scenario

KINDS = {
    "bandit": {
        "name": "html_bandit", "seed": 3, "world": {"n_users": 200, "n_ads": 4, "n_dense": 3},
        "logging_policy": {"type": "softmax", "temperature": 1.0, "model": "noisy_truth"},
        "candidates": [{"type": "uniform"}, {"name": "eg", "type": "epsilon_greedy",
                                             "epsilon": 0.2, "model": "fitted"}],
        "evaluation": {"n_rounds": 800, "n_train_rounds": 500, "estimators": ["ips", "dr"]},
    },
    "auction": {
        "name": "html_auction", "seed": 5, "world": {"n_users": 200, "n_ads": 6},
        "auction": {
            "mechanism": "gsp", "n_slots": 2, "ranking": "ecpm",
            "market": {"type": "bidders", "n_bidders": 3},
            "campaigns": [{"name": "a", "budget": 3.0, "value_per_click": 2.0},
                          {"name": "b", "budget": 3.0, "value_per_click": 2.0,
                           "bidder": {"type": "constant_pacing"}}],
            "traffic": {"n_requests": 800, "n_steps": 8},
        },
    },
    "bidding": {
        "name": "html_bidding", "seed": 4, "world": {"n_users": 200, "n_ads": 3, "n_dense": 3},
        "auction": {"market": {"type": "lognormal", "mu": -3.4, "sigma": 0.6},
                    "campaigns": [{"name": "a", "budget": 5.0}, {"name": "b", "budget": 4.0}],
                    "traffic": {"n_requests": 800, "n_steps": 8}},
        "bidding": {"n_seeds": 2, "candidates": [{"type": "truthful"}, {"type": "dual_pacing"}]},
    },
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("html")
    old = os.environ.get("ADSIM_CACHE_DIR")
    os.environ["ADSIM_CACHE_DIR"] = str(root / "cache")
    try:
        out = {}
        for kind, cfg in KINDS.items():
            scn = root / f"{kind}.yaml"
            scn.write_text(yaml.safe_dump(cfg))
            out[kind] = root / kind
            assert main(["run", str(scn), "--out", str(out[kind]), "--quiet"]) == 0
        yield out
    finally:
        if old is None:
            os.environ.pop("ADSIM_CACHE_DIR", None)
        else:
            os.environ["ADSIM_CACHE_DIR"] = old


def _external_refs(page: str) -> list[str]:
    """src/href attributes and CSS url()s that point anywhere but into the page itself."""
    refs = re.findall(r'\b(?:src|href)\s*=\s*["\']([^"\']*)', page)
    refs += re.findall(r"url\(\s*['\"]?([^'\")]*)", page)
    return [r for r in refs if not (r.startswith("#") or r.startswith("data:"))]


@pytest.mark.parametrize("kind", list(KINDS))
def test_report_html_is_self_contained_and_complete(runs: dict[str, Path], kind: str) -> None:
    folder = runs[kind]
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert _external_refs(page) == []
    assert "<script" not in page.lower() and "@import" not in page
    # every figure of the run is inlined as SVG, and ids stay unique across figures
    svgs = sorted(folder.glob("*.svg"))
    assert svgs and page.count("<svg") == len(svgs)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    for png in folder.glob("*.png"):  # each PNG has its SVG twin, shown on the page
        assert png.with_suffix(".svg").is_file()
        assert f"{png.stem}.svg" in page
    results = json.loads((folder / "results.json").read_text())
    for lib, version in results["versions"].items():
        assert f">{lib}<" in page and f">{version}<" in page
    for csv in folder.glob("*.csv"):  # every table, with its first row
        assert f"<h3>{csv.name}</h3>" in page
        first = csv.read_text().splitlines()[1].split(",")[0]
        assert f">{first}<" in page
    assert "Scenario (resolved, as run)" in page and f"name: {KINDS[kind]['name']}" in page
    # the real reproduce command, in report.md and on the page
    md = (folder / "report.md").read_text()
    cmd = f"adsim run {(folder / 'scenario.yaml').as_posix()} --seed {KINDS[kind]['seed']}" \
          f" --out {folder.as_posix()}"
    assert f"Reproduce: `{cmd}`" in md and cmd in page and "<scenario.yaml>" not in md
    # the saved scenario is the resolved scenario that ran
    assert load_scenario(folder / "scenario.yaml").model_dump(mode="json") == results["scenario"]


def test_the_reproduce_command_rebuilds_the_same_results(runs: dict[str, Path]) -> None:
    folder = runs["auction"]
    before = {n: (folder / n).read_bytes() for n in ("results.json", "campaigns.csv", "steps.csv")}
    line = next(x for x in (folder / "report.md").read_text().splitlines()
                if x.startswith("Reproduce:"))
    argv = shlex.split(line.split("`")[1])
    assert argv[:2] == ["adsim", "run"]
    assert main([*argv[1:], "--quiet"]) == 0
    for name, data in before.items():
        assert (folder / name).read_bytes() == data, name


# ------------------------------------------------------------------------------------------------
# In a real browser
# ------------------------------------------------------------------------------------------------


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        exe = shutil.which(name)
        if exe:
            return exe
    if os.environ.get("CI"):
        pytest.fail("chromium not found on CI: `make install` installs it (apt-get install -y "
                    "chromium); the browser test of report.html must run on CI")
    pytest.skip("chromium not found (install it: `sudo apt-get install -y chromium`, or run "
                "`make install` as root)")


def _render(page: Path, shot: Path, height: int = 2400) -> list[str]:
    """Screenshot ``page`` with headless chromium; returns the console messages it logged."""
    exe = _chromium()
    proc = subprocess.run(
        [exe, "--headless=new", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions", f"--user-data-dir={shot.parent / 'profile'}",
         f"--window-size=1200,{height}", f"--screenshot={shot}", "--enable-logging=stderr",
         "--v=0", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=90,
    )
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def _pixels(png: Path) -> np.ndarray:
    from matplotlib.image import imread

    img = imread(png)  # (H, W, 3|4) floats in [0, 1]
    return np.asarray(img[..., :3], dtype=np.float64)


def test_the_browser_check_catches_console_errors_and_blank_pages(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"  # the same policy as report.html, broken on purpose
    bad.write_text(
        "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" "
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"></head>"
        "<body><img src=\"https://example.invalid/x.png\" alt=\"\"></body></html>")
    console = _render(bad, tmp_path / "bad.png", height=400)
    assert any("Content Security Policy" in m for m in console), console
    assert _pixels(tmp_path / "bad.png").std() < 0.01  # nothing drawn: a blank page


@pytest.mark.parametrize("kind", list(KINDS))
def test_report_html_renders_in_chromium(runs: dict[str, Path], kind: str,
                                         tmp_path: Path) -> None:
    shot = tmp_path / f"{kind}.png"
    console = _render(runs[kind] / "report.html", shot)
    assert console == [], f"console messages while rendering report.html: {console}"
    px = _pixels(shot)
    assert px.shape[0] >= 2000 and px.shape[1] >= 1100
    assert px.std() > 0.05, "the screenshot is blank"
    # the figures were drawn: many distinct colours, and ink on a good part of the page
    assert len(np.unique((px[::4, ::4] * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50
    assert (px.mean(axis=2) < 0.9).mean() > 0.03
