"""Fixtures for the CTR pipeline tests (``shared_data`` comes from tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


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
