"""A Markdown report of a run: scenario, leaderboard, figure, reproduction command."""

from __future__ import annotations

import os

from adsim._io import write_text

__all__ = ["write_report"]


def write_report(
    path: str | os.PathLike[str],
    *,
    name: str,
    description: str,
    seed: int,
    table: str,
    figures: list[str],
    facts: dict[str, object],
    command: str,
    sections: list[tuple[str, str, list[str]]] | None = None,
) -> None:
    """``sections``: extra (title, preformatted table, figures) after the leaderboard."""
    lines = [f"# adsim run: {name}", ""]
    if description:
        lines += [description.strip(), ""]
    lines += [f"Reproduce: `{command}`", "", "## Setting", ""]
    lines += [f"- **{k}**: {v}" for k, v in facts.items()]
    lines += ["", "## Leaderboard", "", "```", table, "```", ""]
    for fig in figures:
        lines += [f"![{fig}]({fig})", ""]
    for title, text, figs in sections or []:
        lines += [f"## {title}", "", "```", text, "```", ""]
        lines += [f"![{fig}]({fig})" for fig in figs] + [""]
    lines += [f"seed: {seed}", ""]
    write_text(path, "\n".join(lines))
