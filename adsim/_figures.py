"""Figures without pyplot: new figures, stable policy colours, atomic PNG + SVG saving.

Plot functions in adsim follow one contract (the matplotlib "axes-level function" convention):

* they take an optional ``ax`` (or ``axes``) to draw into, and otherwise make their own figure
  with :func:`new_figure`;
* they return the :class:`matplotlib.figure.Figure`;
* they never call ``matplotlib.use`` or ``pyplot``: a :class:`~matplotlib.figure.Figure` built
  directly renders with the Agg canvas and leaves a notebook user's backend and pyplot state
  alone;
* saving is separate: :func:`save_figure` writes PNG and SVG, each atomically.

Colours: :func:`policy_colors` maps names to colours once per run, so the same policy has the same
colour in every figure of that run.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from adsim._io import write_with

__all__ = ["new_figure", "figure_of", "policy_colors", "save_figure", "figure_bytes"]

#: matplotlib's tab10 (colour-blind-friendlier than the old default), then tab20's light shades
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
)


def new_figure(figsize: tuple[float, float] = (7.0, 4.2), nrows: int = 1, ncols: int = 1,
               **subplot_kw: Any) -> tuple[Any, Any]:
    """A fresh ``Figure`` (Agg canvas, no pyplot) and its axes (one, or an array)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="tight")
    axes = fig.subplots(nrows, ncols, **subplot_kw)
    return fig, axes


def figure_of(ax: Any) -> Any:
    """The top-level ``Figure`` an axes belongs to (also for axes in a sub-figure)."""
    fig = ax.figure
    while getattr(fig, "figure", fig) is not fig:  # SubFigure.figure is its parent
        fig = fig.figure
    return fig


def policy_colors(names: Iterable[str]) -> dict[str, str]:
    """A stable name → colour mapping: the i-th distinct name gets the i-th palette colour.

    Build it once per run from every policy (or campaign) name, in the run's order, and pass it to
    each plot function, so one policy has one colour across all figures of the run.
    """
    out: dict[str, str] = {}
    for name in names:
        if name not in out:
            out[name] = _PALETTE[len(out) % len(_PALETTE)]
    return out


def _colors_for(names: Sequence[str], colors: dict[str, str] | None) -> dict[str, str]:
    """``colors`` completed for any name it lacks (new names get the next free colours)."""
    full = dict(colors or {})
    extra = policy_colors([n for n in names if n not in full])
    used = len(full)
    for i, n in enumerate(extra):
        full[n] = _PALETTE[(used + i) % len(_PALETTE)]
    return full


def figure_bytes(fig: Any, fmt: str = "png", dpi: int = 110) -> bytes:
    """The figure rendered to ``fmt`` ("png" or "svg"), deterministic for the same figure.

    PNG without the "Software" text chunk; SVG with no date and a fixed id salt (matplotlib's
    ``svg.hashsalt``), so reruns give byte-identical files.
    """
    import matplotlib

    buf = io.BytesIO()
    if fmt == "svg":
        with matplotlib.rc_context({"svg.hashsalt": "adsim", "svg.fonttype": "path"}):
            fig.savefig(buf, format="svg", metadata={"Date": None})
    else:
        fig.savefig(buf, format=fmt, dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 110,
                formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Write ``fig`` as ``path`` with each suffix in ``formats`` (default PNG and SVG), each
    atomically (:func:`adsim._io.write_with`); returns the paths written."""
    base = Path(path)
    paths = []
    for fmt in formats:
        p = base.with_suffix("." + fmt)
        data = figure_bytes(fig, fmt, dpi)
        write_with(p, lambda tmp, d=data: tmp.write_bytes(d))
        paths.append(p)
    return paths
