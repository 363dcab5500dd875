"""Shared pieces of the artefact/log/serving fuzz suites (not a test module).

* :func:`tiny_run` — one tiny run folder (DeepFM on a synthetic source, isotonic calibration),
  trained once per test session and copied by the tests that tamper with it;
* :func:`cli` — run ``adsim …`` in-process and return ``(exit code, stderr)``; a Python exception
  escaping ``main`` (a traceback) fails the calling test;
* :func:`no_partial` — the names left in a folder that look like an unfinished write.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

SOURCE = {"type": "synthetic", "n_rows": 2000, "n_users": 200, "n_ads": 5, "n_dense": 3, "base_ctr": 0.2,
          "seed": 7}

_RUNS: dict[str, Path] = {}


def run_config(name: str, processed: Path, **train: object) -> dict:
    return {
        "name": name,
        "data": {"source": dict(SOURCE), "processed_dir": str(processed)},
        "model": {"name": "deepfm", "options": {"embed_dim": 4, "hidden": [8]}},
        "train": {"epochs": 1, "batch_size": 256, "lr": 0.01, "progress": False, "num_threads": 1,
                  "checkpoint_every": 1000, "tensorboard": False, "seed": 0, **train},
        "calibration": {"method": "isotonic"},
    }


def tiny_run(root: Path) -> Path:
    """A finished run folder under ``root`` (trained on the first call of the session)."""
    if "run" not in _RUNS:
        from adsim.config import parse_config
        from adsim.models.config import RunConfig
        from adsim.models.run import train_run

        cfg = parse_config(run_config("fuzz", root / "processed"), RunConfig, source="fuzz fixture")
        _RUNS["run"] = train_run(cfg, root / "run")
    return _RUNS["run"]


def cli(*args: str) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``adsim ARGS`` run in-process."""
    from adsim.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def no_partial(folder: Path) -> list[str]:
    """Names under ``folder`` that a half-finished write would leave (temporaries, partial folders)."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or ".partial-" in p.name)
