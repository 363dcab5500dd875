"""Regret curves of online learners: takes optional ``axes``, returns the Figure (no pyplot)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from adsim._figures import _colors_for, figure_of, new_figure

__all__ = ["plot_regret_curves"]


def plot_regret_curves(
    curves: pd.DataFrame,
    title: str = "",
    xlabel: str = "rounds t",
    band_label: str = "95% band over seeds",
    log_decades: float = 3.0,
    axes: Any = None,
    colors: dict[str, str] | None = None,
) -> Any:
    """Cumulative regret, mean and band over seeds, one colour per policy (``colors``); left
    panel linear axes, right panel log–log (where a slope of 1 is linear regret and 0.5 is √t).

    ``curves`` has columns ``policy, round, regret_mean, regret_low, regret_high`` (as written
    by :func:`adsim.experiments.regret.regret_curves`). ``axes``: a pair (linear, log) to draw
    into. Returns the Figure.
    """
    if axes is None:
        _, axes = new_figure((11.5, 4.4), 1, 2)
    lin, log = axes
    names = [str(n) for n in dict.fromkeys(curves["policy"])]
    cmap = _colors_for(names, colors)
    t1 = float(curves["round"].max())
    t0 = max(1.0, t1 / 10.0**log_decades)  # the log panel shows the last log_decades decades
    for name, g in curves.groupby("policy", sort=False):
        c = cmap[str(name)]
        t = g["round"].to_numpy(dtype=np.float64)
        lo, mean, hi = (g[k].to_numpy() for k in ("regret_low", "regret_mean", "regret_high"))
        lin.plot(t, mean, color=c, label=str(name), linewidth=1.6)
        lin.fill_between(t, lo, hi, color=c, alpha=0.18, linewidth=0)
        keep = (t >= t0) & (mean > 0)
        log.plot(t[keep], mean[keep], color=c, label=str(name), linewidth=1.6)
        log.fill_between(t[keep], np.maximum(lo[keep], mean[keep] / 10), hi[keep], color=c,
                         alpha=0.18, linewidth=0)
    if (curves["regret_mean"] > 0).any():  # reference slopes through the smallest final regret
        r1 = float(curves.loc[curves["round"] == t1, "regret_mean"].min())
        if r1 > 0:
            for s, style, what in ((1.0, ":", "linear regret"), (0.5, "--", "√t regret")):
                log.plot([t0, t1], [r1 * (t0 / t1) ** s, r1], color="grey", linestyle=style,
                         linewidth=1,
                         label=f"∝ t^{s:g} ({what}), through the smallest final regret")
    log.set_xscale("log")
    log.set_yscale("log")
    log.set_title(f"log–log, last {log_decades:g} decades (dotted: slope 1, dashed: slope ½)")
    log.title.set_fontsize(9)
    lin.set_title(title or f"Cumulative regret vs the exact per-round oracle ({band_label})")
    lin.title.set_fontsize(9)
    for ax in (lin, log):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("cumulative regret")
        ax.grid(alpha=0.3, which="both")
    lin.legend(fontsize=7, loc="upper left", title=band_label, title_fontsize=7)
    log.legend(fontsize=7, loc="upper left")
    return figure_of(lin)
