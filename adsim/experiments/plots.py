"""Plots of experiment results (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from adsim._io import write_with

__all__ = ["plot_estimates"]


def plot_estimates(board: pd.DataFrame, path: str | os.PathLike[str], title: str = "") -> None:
    """Estimates with confidence intervals next to each policy's exact value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = list(dict.fromkeys(board.sort_values("rank")["policy"]))
    estimators = list(dict.fromkeys(board["estimator"]))
    x = np.arange(len(policies))
    width = 0.8 / max(len(estimators), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(policies) + 2), 4.2))
    truth = board.groupby("policy")["true_value"].first().reindex(policies).to_numpy()
    ax.hlines(truth, x - 0.45, x + 0.45, colors="black", linewidth=2.5, label="true value", zorder=3)
    for j, est in enumerate(estimators):
        g = board[board["estimator"] == est].set_index("policy").reindex(policies)
        xs = x - 0.4 + width * (j + 0.5)
        yerr = np.vstack([g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]])
        ax.errorbar(xs, g["estimate"], yerr=yerr, fmt="o", capsize=3, label=est.upper(), zorder=4)
    ax.set_xticks(x, policies, rotation=20, ha="right")
    ax.set_ylabel("policy value (expected reward per request)")
    conf = board.attrs.get("confidence")
    default = f"Offline estimates ({conf:.0%} CI) vs exact value" if conf else "Estimates vs truth"
    ax.set_title(title or default)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(len(estimators) + 1, 5))
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
