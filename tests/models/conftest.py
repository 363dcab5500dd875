"""Fixtures for the CTR pipeline tests: the real data samples and tiny configs."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the repository (skips cleanly when absent)."""
    d = (REPO / ".." / "shared" / "data").resolve()
    if not d.is_dir():
        pytest.skip(f"real data samples not found at {d} (expected ../shared/data next to the repo)")
    return d


@pytest.fixture()
def tiny_run_config(tmp_path: Path) -> dict:
    """A fast synthetic run config (plain dict, edit then validate)."""
    return {
        "name": "tiny",
        "data": {
            "source": {"type": "synthetic", "n_rows": 6000, "n_users": 500, "n_ads": 6, "n_dense": 3,
                       "base_ctr": 0.2, "seed": 3},
            "processed_dir": str(tmp_path / "processed"),
        },
        "model": {"name": "deepfm", "options": {"embed_dim": 4, "hidden": [16]}},
        "train": {"epochs": 2, "batch_size": 256, "lr": 0.01, "progress": False, "num_threads": 1,
                  "checkpoint_every": 5},
        "calibration": {"method": "isotonic"},
    }
