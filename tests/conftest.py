"""Shared fixtures."""

from __future__ import annotations

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
        pytest.skip(f"real data samples not found at {path} (expected ../shared/data beside the repo)")
    return path
