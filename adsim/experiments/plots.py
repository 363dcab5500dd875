"""Plots of experiment results, and the figure helpers every adsim plot uses.

Plot functions take an optional ``ax`` (or ``axes``) and return the Figure; they never call pyplot
or ``matplotlib.use``. The helpers (from :mod:`adsim._figures`, re-exported here):
:func:`new_figure` (a Figure and its axes, no pyplot), :func:`policy_colors` (one colour per
policy for every figure of a run), :func:`save_figure` (PNG and SVG, atomically). The other
plots: :mod:`adsim.experiments.bidding_plots`, :mod:`adsim.experiments.regret_plots`,
:func:`adsim.experiments.auction_runner.plot_auction_day`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from adsim._figures import _colors_for, figure_of, new_figure, policy_colors, save_figure

__all__ = ["plot_estimates", "plot_error_vs_n", "new_figure", "policy_colors", "save_figure"]


def plot_estimates(board: pd.DataFrame, title: str = "", ax: Any = None,
                   colors: dict[str, str] | None = None) -> Any:
    """Estimates with confidence intervals next to each policy's exact value.

    ``colors`` maps estimator names (upper-cased labels) to colours; the exact value of each
    policy is the black bar behind its estimates. Returns the Figure.
    """
    policies = list(dict.fromkeys(board.sort_values("rank")["policy"]))
    estimators = list(dict.fromkeys(board["estimator"]))
    if ax is None:
        _, ax = new_figure(figsize=(max(6.0, 1.4 * len(policies) + 2), 4.2))
    cmap = _colors_for([e.upper() for e in estimators], colors)
    x = np.arange(len(policies))
    width = 0.8 / max(len(estimators), 1)
    truth = board.groupby("policy")["true_value"].first().reindex(policies).to_numpy()
    ax.hlines(truth, x - 0.45, x + 0.45, colors="black", linewidth=2.5,
              label="exact value V(π) (oracle)", zorder=3)
    for j, est in enumerate(estimators):
        g = board[board["estimator"] == est].set_index("policy").reindex(policies)
        xs = x - 0.4 + width * (j + 0.5)
        yerr = np.vstack([g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]])
        ax.errorbar(xs, g["estimate"], yerr=yerr, fmt="o", capsize=3, label=est.upper(),
                    color=cmap[est.upper()], zorder=4)
    ax.set_xticks(x, policies, rotation=20, ha="right")
    ax.set_ylabel("policy value (expected reward per request)")
    conf = board.attrs.get("confidence")
    default = f"Offline estimates ({conf:.0%} CI) vs exact value" if conf else "Estimates vs truth"
    ax.set_title(title or default)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(len(estimators) + 1, 5))
    return figure_of(ax)


def plot_error_vs_n(summary: pd.DataFrame, xlabel: str, ylabel: str, axes: Any = None) -> Any:
    """Relative RMSE (%) of each estimator against the sample size, one panel per target (log–log).

    ``summary`` has columns ``target``, ``estimator``, ``n_rounds`` and ``rel_rmse`` (the
    validation summaries of :mod:`adsim.experiments.ope_validation` and
    :mod:`adsim.experiments.bid_ope_validation`). Returns the Figure.
    """
    targets = list(dict.fromkeys(summary["target"]))
    if axes is None:
        fig, axes = new_figure((4.2 * len(targets), 3.6), 1, len(targets), squeeze=False)
        axes = axes[0]
    else:
        axes = list(np.ravel(axes))
        fig = figure_of(axes[0])
    for ax, t in zip(axes, targets):
        for name, g in summary[summary["target"] == t].groupby("estimator", sort=False):
            ax.plot(g["n_rounds"], 100 * g["rel_rmse"], marker="o", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"target: {t}", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(ylabel)
    axes[-1].legend(fontsize=7)
    return fig
