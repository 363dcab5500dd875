"""Every ```python block of the README runs as written (in a copy of the repo's scenarios/configs)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)


def test_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.timeout(600)
def test_readme_python_blocks_run(tmp_path: Path) -> None:
    """The blocks run in order in one folder (the OPE example reads the scenario run's log)."""
    work = tmp_path / "repo"
    work.mkdir()
    for d in ("scenarios", "configs"):
        shutil.copytree(ROOT / d, work / d)
    shared = ROOT.parent / "shared"
    if (shared / "data").is_dir():
        (tmp_path / "shared").symlink_to(shared)
    elif os.environ.get("CI"):
        pytest.fail("../shared/data is not beside the checkout on CI (the training example reads it)")
    else:
        pytest.skip("../shared/data is not beside the checkout (the training example reads it)")
    env = {**os.environ, "ADSIM_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    for i, code in enumerate(BLOCKS):
        out = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, f"README python block {i + 1} failed:\n{code}\n{out.stderr[-3000:]}"
        assert "Traceback" not in out.stderr
