"""Small synthetic logs for estimator tests."""

from __future__ import annotations

import numpy as np
import pytest

from adsim.env.logs import BanditLog


def make_log(n: int, k: int, rng: np.random.Generator, ctr=None, pi0_row=None, pi_row=None):
    """Contextless bandit: logger π0, target π, Bernoulli rewards with means ``ctr``; returns
    (log, pi0, pi, ctr) with exact target value Σ_a π(a) ctr(a)."""
    ctr = np.linspace(0.05, 0.5, k) if ctr is None else np.asarray(ctr)
    pi0 = np.tile(rng.dirichlet(np.ones(k) * 3) if pi0_row is None else pi0_row, (n, 1))
    pi = np.tile(rng.dirichlet(np.ones(k)) if pi_row is None else pi_row, (n, 1))
    a = (pi0.cumsum(1) < rng.random(n)[:, None]).sum(1).clip(0, k - 1)
    r = (rng.random(n) < ctr[a]).astype(float)
    return BanditLog(a, r, pi0[np.arange(n), a], k), pi0, pi, ctr


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
