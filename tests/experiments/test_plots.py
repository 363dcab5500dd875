"""Plots as a library: no backend switch, ``ax`` in and Figure out, one colour per policy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from adsim._figures import new_figure, policy_colors, save_figure
from adsim.experiments.auction_runner import plot_auction_day
from adsim.experiments.bidding import DayResult
from adsim.experiments.bidding_plots import (
    bidding_figures,
    plot_lambda,
    plot_regret_curves,
    plot_regret_horizons,
    plot_spend,
)
from adsim.experiments.plots import plot_estimates
from adsim.experiments.regret import band_curves
from adsim.experiments.regret_plots import plot_regret_curves as plot_regret_bands
from adsim.models.calibration import plot_reliability
from adsim.models.compare import plot_compare
from adsim.models.run import plot_learning_curves

ADSIM = Path(__file__).resolve().parents[2] / "adsim"


def _offences(tree: ast.AST) -> list[str]:
    """Calls of ``matplotlib.use`` / ``mpl.use`` and imports of ``matplotlib.pyplot``."""
    bad = []
    aliases = {"matplotlib"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "matplotlib":
                    aliases.add(a.asname or a.name)
                if a.name.startswith("matplotlib.pyplot") or a.name == "pylab":
                    bad.append(f"line {node.lineno}: import {a.name}")
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if mod.startswith("matplotlib.pyplot") or (
                    mod == "matplotlib" and any(a.name in ("pyplot", "use") for a in node.names)):
                bad.append(f"line {node.lineno}: from {mod} import ...")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "use" and isinstance(node.func.value, ast.Name)
                and node.func.value.id in aliases):
            bad.append(f"line {node.lineno}: {node.func.value.id}.use(...)")
    return bad


def test_the_scan_finds_backend_switches() -> None:
    src = ("import matplotlib as mpl\ndef f():\n    mpl.use('Agg')\n"
           "    from matplotlib import pyplot\n    import matplotlib.pyplot as plt\n")
    assert len(_offences(ast.parse(src))) == 3


def test_no_module_switches_the_backend_or_uses_pyplot() -> None:
    bad = {}
    for path in sorted(ADSIM.rglob("*.py")):
        found = _offences(ast.parse(path.read_text(encoding="utf-8")))
        if found:
            bad[str(path.relative_to(ADSIM.parent))] = found
    assert not bad, f"matplotlib.use / pyplot in adsim (use adsim._figures.new_figure): {bad}"


def test_plotting_leaves_the_backend_and_pyplot_alone() -> None:
    code = (
        "import matplotlib, sys\n"
        "matplotlib.use('svg')\n"
        "import numpy as np, pandas as pd\n"
        "from adsim._figures import save_figure\n"
        "from adsim.experiments.regret_plots import plot_regret_curves\n"
        "c = pd.DataFrame({'policy': 'a', 'round': np.arange(1, 50), 'regret_mean': np.arange(1.,"
        " 50), 'regret_low': 0.5, 'regret_high': 60.0})\n"
        "save_figure(plot_regret_curves(c), sys.argv[1])\n"
        "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    out = Path(__file__).parent  # any folder: the files go to a temporary name below
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.run([sys.executable, "-c", code, str(Path(d) / "r")], cwd=out.parents[1],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert (Path(d) / "r.png").stat().st_size > 0 and (Path(d) / "r.svg").stat().st_size > 0


def _days(names: list[str], n_days: int = 3, n_steps: int = 10) -> dict[str, list[DayResult]]:
    rng = np.random.default_rng(0)
    ideal = np.cumsum(np.full(n_steps, 1.0 / n_steps))
    out = {}
    for k, name in enumerate(names):
        out[name] = [DayResult(
            metrics={}, spend_curve=np.minimum(1.0, ideal * (1 + k) + rng.uniform(0, 0.1, n_steps)),
            ideal_curve=ideal, regret_curve=np.cumsum(rng.uniform(0, 1 + k, n_steps)),
            lambdas=list(rng.uniform(0, 2, n_steps)) if k else [],
        ) for _ in range(n_days)]
    return out


def _board() -> pd.DataFrame:
    rows = [{"policy": p, "rank": i, "estimator": e, "true_value": 0.1 * i,
             "estimate": 0.1 * i + 0.01, "ci_low": 0.1 * i - 0.02, "ci_high": 0.1 * i + 0.03}
            for i, p in enumerate(["a", "b"]) for e in ("ips", "dr")]
    return pd.DataFrame(rows)


def _auction() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    camps = pd.DataFrame({"campaign": ["big", "small"], "bidder": ["truthful", "truthful"],
                          "budget": [100.0, 1.0], "expected_value": [5000.0, 3.0],
                          "hindsight_value": [6000.0, 4.0], "pct_of_optimal": [83.3, 75.0]})
    steps = pd.DataFrame({"campaign": ["big"] * 4 + ["small"] * 4, "cost": [25.0] * 4 + [0.2] * 4})
    return camps, steps, np.array([0.25, 0.5, 0.75, 1.0])


def _calls():  # (name, function taking ax/axes → Figure, number of axes it needs)
    hist = [{"epoch": e, "train_loss": 0.5 / e, "val_loss": 0.6 / e, "val_auc": 0.7} for e in (1, 2)]
    rows = [{"name": "m", "model": "m", "auc": 0.7, "logloss": 0.4},
            {"name": "truth", "model": "truth", "auc": 0.75, "logloss": 0.38}]
    y = np.random.default_rng(0).integers(0, 2, 200)
    curves = band_curves({"a": np.random.default_rng(1).uniform(1, 2, (3, 20)).cumsum(1)},
                         np.arange(1, 21))
    return [
        ("plot_estimates", lambda ax: plot_estimates(_board(), ax=ax), 1),
        ("plot_spend", lambda ax: plot_spend(_days(["a", "b"]), ax=ax), 1),
        ("plot_lambda", lambda ax: plot_lambda(_days(["a", "b"]), ax=ax), 1),
        ("plot_regret_curves", lambda ax: plot_regret_curves(_days(["a", "b"]), ax=ax), 1),
        ("plot_regret_horizons", lambda ax: plot_regret_horizons(
            np.array([10, 100, 1000]), {"a": np.array([1.0, 3.0, 10.0])}, ax=ax), 1),
        ("regret_plots.plot_regret_curves", lambda axes: plot_regret_bands(curves, axes=axes), 2),
        ("plot_auction_day", lambda axes: plot_auction_day(*_auction(), axes=axes), 2),
        ("plot_reliability", lambda axes: plot_reliability(y, {"p": np.full(200, 0.5)},
                                                           axes=axes), 2),
        ("plot_learning_curves", lambda axes: plot_learning_curves(hist, axes=axes), 2),
        ("plot_compare", lambda axes: plot_compare(rows, axes=axes), 2),
    ]


@pytest.mark.parametrize("name,call,n_axes", _calls(), ids=[c[0] for c in _calls()])
def test_plot_functions_draw_into_the_given_axes_and_return_the_figure(name, call, n_axes) -> None:
    fig, axes = new_figure((8, 4), 1, n_axes) if n_axes > 1 else new_figure((8, 4))
    got = call(axes)
    assert got is fig, name
    for ax in np.atleast_1d(axes):
        assert ax.lines or ax.patches or ax.collections, f"{name} drew nothing into an axes"
    own = call(None)  # without axes: a fresh Figure of its own
    assert isinstance(own, Figure) and own is not fig


def _line_colors(fig: Figure, names: list[str]) -> dict[str, str]:
    from matplotlib.colors import to_hex

    out = {}
    for ax in fig.axes:
        for line in ax.lines:
            if line.get_label() in names:
                assert out.setdefault(line.get_label(), to_hex(line.get_color())) == \
                    to_hex(line.get_color())
    return out


def test_one_colour_per_policy_across_the_figures_of_a_bidding_run() -> None:
    from adsim.config import Scenario, parse_config
    from adsim.experiments.bidding import _regret_report, run_bidding

    cfg = {
        "name": "colours", "seed": 4, "world": {"n_users": 200, "n_ads": 3, "n_dense": 3},
        "auction": {"market": {"type": "lognormal", "mu": -3.4, "sigma": 0.6},
                    "campaigns": [{"name": "a", "budget": 5.0}, {"name": "b", "budget": 4.0}],
                    "traffic": {"n_requests": 1500, "n_steps": 8}},
        "bidding": {"n_seeds": 2, "candidates": [
            {"type": "truthful"}, {"type": "dual_pacing"},
            {"name": "ts", "type": "ts_lagrangian"}]},
    }
    run = run_bidding(parse_config(cfg, Scenario), None, progress=False)
    names = list(run.days)
    curves, _ = _regret_report(run.days, run.leaderboard, 0.95)
    figs = bidding_figures(run.days, curves, 0.95)  # what the runner saves
    per_fig = {stem: _line_colors(f, names) for stem, f in figs.items()}
    assert set(per_fig["spend"]) == set(names) and set(per_fig["regret_curves"]) == set(names)
    ref = per_fig["spend"]
    assert len(set(ref.values())) == len(names), "two policies share a colour"
    for stem, colors in per_fig.items():
        for name, c in colors.items():
            assert c == ref[name], f"{name} is {c} in {stem}.png but {ref[name]} in spend.png"
    # the mapping is the run's, not the figure's: a figure showing only some candidates
    # (λ: only policies with a multiplier) keeps the same colours
    assert set(per_fig["lambda"]) < set(names)


def test_spend_and_lambda_show_every_day_with_a_band() -> None:
    days = _days(["a", "b"], n_days=4)
    fig = plot_spend(days, colors=policy_colors(days))
    ax = fig.axes[0]
    line = next(ln for ln in ax.lines if ln.get_label() == "b")
    np.testing.assert_allclose(line.get_ydata(), np.mean([d.spend_curve for d in days["b"]], 0))
    assert len(ax.collections) == 2  # one band per candidate
    assert "mean over 4 days" in ax.get_title()
    lam = plot_lambda(days).axes[0]
    assert [ln.get_label() for ln in lam.lines] == ["b"] and len(lam.collections) == 1


def test_even_pacing_is_drawn_above_the_ideal_line_and_every_reference_is_explained() -> None:
    days = _days(["a"])
    ax = plot_spend(days).axes[0]
    ideal = next(ln for ln in ax.lines if ln.get_label().startswith("ideal pacing"))
    even = next(ln for ln in ax.lines if ln.get_label().startswith("even pacing"))
    np.testing.assert_allclose(ideal.get_ydata(), even.get_ydata())  # they coincide here ...
    assert even.get_zorder() > ideal.get_zorder()  # ... and the even line is on top
    policy = next(ln for ln in ax.lines if ln.get_label() == "a")
    assert policy.get_zorder() > even.get_zorder()  # the data above both references
    assert even.get_linestyle() != ideal.get_linestyle()
    assert even.get_linewidth() < ideal.get_linewidth()
    reg = plot_regret_curves(_days(["a", "b"])).axes[0]
    ref = [ln.get_label() for ln in reg.lines if "√t" in ln.get_label()]
    assert len(ref) == 1 and "c = " in ref[0] and "/ √T" in ref[0]
    for fig in (plot_spend(days), plot_auction_day(*_auction())):
        for a in fig.axes:
            legend = a.get_legend()
            labels = [t.get_text() for t in legend.get_texts()] if legend else []
            for ln in a.lines:  # every drawn line is named in its axes' legend
                assert ln.get_label() in labels, ln.get_label()


def test_auction_day_uses_a_log_axis_when_one_campaign_dwarfs_the_others() -> None:
    camps, steps, ideal = _auction()
    fig = plot_auction_day(camps, steps, ideal)
    assert fig.axes[1].get_yscale() == "log"
    camps2 = camps.assign(expected_value=[5.0, 3.0], hindsight_value=[6.0, 4.0])
    assert plot_auction_day(camps2, steps, ideal).axes[1].get_yscale() == "linear"
    # the campaign's colour is the same in both panels
    from matplotlib.colors import to_hex

    line = next(ln for ln in fig.axes[0].lines if ln.get_label().startswith("small"))
    bar = fig.axes[1].patches[1]  # expected value bars come first, in campaign order
    assert to_hex(line.get_color()) == to_hex(bar.get_facecolor())


def test_save_figure_writes_png_and_svg_byte_identically(tmp_path: Path) -> None:
    paths = save_figure(plot_spend(_days(["a"])), tmp_path / "x" / "spend.png")
    assert [p.name for p in paths] == ["spend.png", "spend.svg"]
    again = save_figure(plot_spend(_days(["a"])), tmp_path / "y" / "spend")
    for a, b in zip(paths, again):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths[1].read_bytes()[:2000]
    assert not list(tmp_path.rglob("*.tmp*"))


def test_policy_colors_is_stable_and_distinct() -> None:
    a = policy_colors(["x", "y", "z", "y"])
    assert list(a) == ["x", "y", "z"] and len(set(a.values())) == 3
    assert policy_colors(["x", "y"]) == {k: a[k] for k in ("x", "y")}
