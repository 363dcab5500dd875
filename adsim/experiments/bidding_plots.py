"""Plots of a bidding run: spend against the pacing lines, λ over the day, regret vs √t.

Every function takes an optional ``ax``, returns the Figure, and takes ``colors`` (name → colour,
from :func:`adsim._figures.policy_colors`) so a candidate has one colour in every figure of a run.
Spend and λ show the whole day as the mean over all simulated days (seeds) with a Student-t band.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from adsim._figures import _colors_for, figure_of, new_figure

if TYPE_CHECKING:
    import pandas as pd


class DayResult(Protocol):
    """What the plots read of a day (:class:`adsim.experiments.bidding.DayResult` has it); a
    protocol, so that the plots do not import the runner that imports them."""

    spend_curve: np.ndarray
    ideal_curve: np.ndarray
    regret_curve: np.ndarray
    lambdas: list[float]

__all__ = [
    "plot_spend", "plot_lambda", "plot_regret_curves", "plot_regret_horizons", "bidding_figures",
    "draw_pacing_references",
]


def _mean_band(curves: Sequence[np.ndarray], confidence: float) -> tuple[np.ndarray, ...]:
    """Mean and Student-t band over days of curves (ragged curves cut to the shortest)."""
    from adsim.experiments.regret import _band

    n = min(len(c) for c in curves)
    x = np.array([np.asarray(c, dtype=np.float64)[:n] for c in curves])
    mean, half = _band(x, confidence)
    return mean, mean - half, mean + half


def draw_pacing_references(ax: Any, t: np.ndarray, ideal: np.ndarray | None) -> None:
    """The ideal pacing line (spend ∝ traffic) and the even pacing line (spend ∝ time).

    The ideal line is drawn wide and pale at the bottom, the even line thin, dark and dash-dotted
    above it, so neither hides the other when the traffic is flat and the two coincide; the
    policies' curves (zorder 4) go on top of both.
    """
    if ideal is not None and np.isfinite(ideal).all():
        ax.plot(t, ideal, color="black", linewidth=4, alpha=0.25, zorder=2,
                label="ideal pacing: budget × traffic share so far")
    ax.plot(t, np.arange(1, t.size + 1) / t.size, color="black", linewidth=1, linestyle="-.",
            zorder=3, label="even pacing: budget × time share")


def plot_spend(days: Mapping[str, Sequence[DayResult]], ax: Any = None,
               colors: dict[str, str] | None = None, confidence: float = 0.95) -> Any:
    """Cumulative spend / budget through the day: mean over all days with a band, per candidate,
    against the ideal and even pacing lines."""
    if ax is None:
        _, ax = new_figure((7, 4.2))
    cmap = _colors_for(list(days), colors)
    n_days = max((len(ds) for ds in days.values()), default=0)
    t = np.array([])
    ideals = []
    for name, ds in days.items():
        mean, lo, hi = _mean_band([d.spend_curve for d in ds], confidence)
        t = np.arange(1, mean.size + 1) / mean.size
        ax.plot(t, mean, color=cmap[name], label=name, linewidth=1.6, zorder=4)
        ax.fill_between(t, np.maximum(lo, 0.0), hi, color=cmap[name], alpha=0.18, linewidth=0,
                        zorder=3)  # spend is never negative: the band is cut at 0
        ideals += [d.ideal_curve for d in ds]
    if t.size:
        draw_pacing_references(ax, t, np.mean([i[: t.size] for i in ideals], axis=0))
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":", label="budget")
    ax.set_xlabel("time of day (share)")
    ax.set_ylabel("cumulative spend / budget")
    ax.set_title(f"Spend through the day (mean over {n_days} days, {confidence:.0%} band)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return figure_of(ax)


def plot_lambda(days: Mapping[str, Sequence[DayResult]], ax: Any = None,
                colors: dict[str, str] | None = None, confidence: float = 0.95) -> Any:
    """The pacing multiplier λ per step, mean over days with a band (policies without one are
    skipped)."""
    if ax is None:
        _, ax = new_figure((7, 4.2))
    cmap = _colors_for(list(days), colors)
    n_days = 0
    for name, ds in days.items():
        lams = [np.asarray(d.lambdas, dtype=np.float64) for d in ds if d.lambdas]
        if not lams:
            continue
        n_days = max(n_days, len(lams))
        mean, lo, hi = _mean_band(lams, confidence)
        steps = np.arange(mean.size)
        ax.plot(steps, mean, color=cmap[name], label=name, linewidth=1.6)
        ax.fill_between(steps, lo, hi, color=cmap[name], alpha=0.18, linewidth=0)
    ax.set_xlabel("decision step")
    ax.set_ylabel("λ  (bid = value / (1 + λ))")
    ax.set_title(f"Budget multiplier over the day (mean over {n_days} days, {confidence:.0%} band)"
                 if n_days else "Budget multiplier: no candidate has one")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return figure_of(ax)


def plot_regret_curves(days: Mapping[str, Sequence[DayResult]], ax: Any = None,
                       colors: dict[str, str] | None = None) -> Any:
    """Cumulative regret against the hindsight allocation through the day, mean over days, with
    the reference c·√t, c = R(T)/√T of the candidate with the smallest final |regret|."""
    if ax is None:
        _, ax = new_figure((7, 4.2))
    cmap = _colors_for(list(days), colors)
    best = np.inf
    n = 1
    for name, ds in days.items():
        r = np.mean([d.regret_curve for d in ds], axis=0)
        n = r.size
        ax.plot(np.arange(1, n + 1), r, color=cmap[name], label=name)
        best = min(best, abs(r[-1]))
    t = np.arange(1, n + 1)
    if np.isfinite(best) and best > 0:
        c = best / np.sqrt(n)
        ax.plot(t, c * np.sqrt(t), "k:",
                label=f"c·√t, c = {c:.3g} = smallest final |R(T)| / √T (T = {n})")
    ax.set_xlabel("decision step t")
    ax.set_ylabel("cumulative regret (OPT − value)")
    ax.set_title("Cumulative regret vs the hindsight optimum (mean over days)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return figure_of(ax)


def plot_regret_horizons(
    horizons: np.ndarray, regrets: Mapping[str, np.ndarray], xlabel: str = "horizon T",
    ax: Any = None, colors: dict[str, str] | None = None,
) -> Any:
    """Log–log regret against the horizon, with fitted slopes and a √T reference."""
    if ax is None:
        _, ax = new_figure((6.5, 4.2))
    cmap = _colors_for(list(regrets), colors)
    h = np.asarray(horizons, dtype=np.float64)
    for name, r in regrets.items():
        r = np.asarray(r, dtype=np.float64)
        ok = r > 0
        slope = np.polyfit(np.log(h[ok]), np.log(r[ok]), 1)[0] if ok.sum() >= 2 else np.nan
        ax.loglog(h, np.maximum(r, 1e-12), "o-", color=cmap[name],
                  label=f"{name} (fitted slope {slope:.2f})")
    first_name, first = next(iter(regrets.items()))
    r0 = max(float(np.asarray(first)[0]), 1e-12)
    ax.loglog(h, r0 * np.sqrt(h / h[0]), "k:",
              label=f"√T reference (slope ½) through {first_name} at T = {h[0]:g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("regret")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return figure_of(ax)


def bidding_figures(
    days: Mapping[str, Sequence[DayResult]], regret_curves: pd.DataFrame, confidence: float,
    colors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Every figure of a bidding run, by file stem, all with the same candidate colours."""
    from adsim._figures import policy_colors
    from adsim.experiments.regret_plots import plot_regret_curves as plot_regret_bands

    colors = colors if colors is not None else policy_colors(days)
    n_seeds = max((len(ds) for ds in days.values()), default=0)
    return {
        "spend": plot_spend(days, colors=colors, confidence=confidence),
        "lambda": plot_lambda(days, colors=colors, confidence=confidence),
        "regret": plot_regret_curves(days, colors=colors),
        "regret_curves": plot_regret_bands(
            regret_curves, xlabel="decision step", colors=colors,
            band_label=f"{confidence:.0%} band over {n_seeds} days", log_decades=2,
            title="Cumulative regret vs the hindsight allocation, per step "
                  f"({confidence:.0%} band over {n_seeds} days)",
        ),
    }
