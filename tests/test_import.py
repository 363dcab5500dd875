"""`import adsim` and `adsim --help` stay light: no torch, matplotlib or gymnasium."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "matplotlib", "gymnasium", "sklearn", "stable_baselines3", "pandas")


def test_import_and_help_do_not_load_heavy_libraries() -> None:
    code = (
        "import sys, adsim, adsim.cli\n"
        "from adsim.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print('LOADED=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = out.stdout.strip().splitlines()[-1].removeprefix('LOADED=')
    assert loaded == "", f"imported eagerly: {loaded}"
