"""Fixtures for the model-zoo tests."""

from __future__ import annotations

import numpy as np
import pytest
from _zoo_helpers import Synthetic, make_interaction_data

# ``shared_data`` (the real samples in ../shared/data) comes from tests/models/conftest.py


@pytest.fixture(scope="session")
def interaction_data() -> Synthetic:
    """20k rows (first 10k for training) from a truth with pairwise field interactions."""
    return make_interaction_data(20_000, np.random.default_rng(7))


@pytest.fixture(autouse=True)
def _one_thread():
    """The machine is small and shared: one torch thread per test, restored afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
