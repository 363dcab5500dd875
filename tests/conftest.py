"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real CTR/CVR samples in ``../shared/data`` beside the repository (as on CI)."""
    path = (REPO / ".." / "shared" / "data").resolve()
    if not path.is_dir():
        if os.environ.get("CI"):  # CI clones the repo with shared/ beside it: a miss there is a failure
            pytest.fail(f"real data samples not found at {path} on CI (expected ../shared/data beside the clone)")
        pytest.skip(f"real data samples not found at {path} (expected ../shared/data beside the repo)")
    return path


# Property tests: on CI (CI=true) hypothesis draws the same examples every run, so a red CI is
# reproducible; locally it explores new examples (and remembers failures in .hypothesis/).
from hypothesis import settings as _hyp_settings  # noqa: E402

_hyp_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if __import__("os").environ.get("CI"):
    _hyp_settings.load_profile("ci")
