"""Plots of a bidding run: spend against the ideal pacing line, λ over the day, regret vs √t."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from adsim._io import write_with

__all__ = ["plot_spend", "plot_lambda", "plot_regret_curves", "plot_regret_horizons"]


class DayResult(Protocol):
    """What the plots read of a day (:class:`adsim.experiments.bidding.DayResult` has it); a
    protocol, so that the plots do not import the runner that imports them."""

    spend_curve: np.ndarray
    ideal_curve: np.ndarray
    regret_curve: np.ndarray
    lambdas: list[float]


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike[str]) -> None:  # type: ignore[no-untyped-def]
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    _plt().close(fig)


def plot_spend(days: Mapping[str, Sequence[DayResult]], path: str | os.PathLike[str]) -> None:
    """Cumulative spend / budget through the first day of each candidate vs the ideal line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ideal = None
    for name, ds in days.items():
        d = ds[0]
        t = np.arange(1, d.spend_curve.size + 1) / d.spend_curve.size
        ax.plot(t, d.spend_curve, label=name)
        ideal = (t, d.ideal_curve)
    if ideal is not None and np.isfinite(ideal[1]).all():
        ax.plot(*ideal, "k--", linewidth=2, label="ideal pacing (traffic share)")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xlabel("time of day (share)")
    ax.set_ylabel("cumulative spend / budget")
    ax.set_title("Spend through the day (day 0)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_lambda(days: Mapping[str, Sequence[DayResult]], path: str | os.PathLike[str]) -> None:
    """The pacing multiplier λ per step (policies without one are skipped)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, ds in days.items():
        lam = ds[0].lambdas
        if lam:
            ax.plot(np.arange(len(lam)), lam, label=name)
    ax.set_xlabel("decision step")
    ax.set_ylabel("λ  (bid = value / (1 + λ))")
    ax.set_title("Budget multiplier over the day (day 0)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    _save(fig, path)


def plot_regret_curves(
    days: Mapping[str, Sequence[DayResult]], path: str | os.PathLike[str]
) -> None:
    """Cumulative regret against the hindsight allocation through the day, mean over days, with
    a c·√t reference through the best final value."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    best = np.inf
    n = 1
    for name, ds in days.items():
        r = np.mean([d.regret_curve for d in ds], axis=0)
        n = r.size
        ax.plot(np.arange(1, n + 1), r, label=name)
        best = min(best, abs(r[-1]))
    t = np.arange(1, n + 1)
    if np.isfinite(best) and best > 0:
        ax.plot(t, best * np.sqrt(t / n), "k:", label="c·√t")
    ax.set_xlabel("decision step t")
    ax.set_ylabel("cumulative regret (OPT − value)")
    ax.set_title("Cumulative regret vs the hindsight optimum")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_regret_horizons(
    horizons: np.ndarray, regrets: Mapping[str, np.ndarray], path: str | os.PathLike[str],
    xlabel: str = "horizon T",
) -> None:
    """Log–log regret against the horizon, with fitted slopes and a √T reference."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    h = np.asarray(horizons, dtype=np.float64)
    for name, r in regrets.items():
        r = np.asarray(r, dtype=np.float64)
        ok = r > 0
        slope = np.polyfit(np.log(h[ok]), np.log(r[ok]), 1)[0] if ok.sum() >= 2 else np.nan
        ax.loglog(h, np.maximum(r, 1e-12), "o-", label=f"{name} (slope {slope:.2f})")
    first = next(iter(regrets.values()))
    ax.loglog(h, max(float(np.asarray(first)[0]), 1e-12) * np.sqrt(h / h[0]), "k:", label="√T")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("regret")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, path)
