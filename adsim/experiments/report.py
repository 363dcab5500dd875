"""A Markdown report of a run: scenario, leaderboard, figure, reproduction command; and the
run folder's copy of the resolved scenario that the command reruns."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from adsim._io import write_text

__all__ = ["write_report", "write_scenario", "reproduce_command", "SCENARIO_FILE"]

#: the resolved scenario (every default filled in) saved in each run folder
SCENARIO_FILE = "scenario.yaml"


def write_scenario(out: str | os.PathLike[str], scenario: Any) -> Path:
    """Save the resolved ``scenario`` (a pydantic model) as ``out/scenario.yaml``.

    Loading the file back gives an equal scenario (tested for every shipped scenario), so
    :func:`reproduce_command` reruns exactly this run. Relative paths in it (trained models)
    are relative to the working folder, as in the original file."""
    import yaml

    head = ("# The resolved scenario of this run (every default filled in).\n"
            "# Rerun it with the command in report.md.\n")
    body = yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    path = Path(out) / SCENARIO_FILE
    write_text(path, head + body)
    return path


def reproduce_command(out: str | os.PathLike[str], seed: int) -> str:
    """``adsim run <out>/scenario.yaml --seed N --out <out>``: the shell command that rebuilds
    the run folder ``out`` (byte-identical results) from its saved scenario."""
    folder = Path(out)
    scn = (folder / SCENARIO_FILE).as_posix()
    return f"adsim run {shlex.quote(scn)} --seed {int(seed)} --out {shlex.quote(folder.as_posix())}"


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
