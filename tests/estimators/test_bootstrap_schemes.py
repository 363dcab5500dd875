"""Efron's multinomial bootstrap with zero rows skipped has the right resampling distribution."""

from __future__ import annotations

import numpy as np
import pytest

from adsim.estimators.intervals import bootstrap_values


@pytest.mark.parametrize("zero_share", [0.0, 0.9, 0.999])
def test_multinomial_replicates_have_efron_mean_and_variance(zero_share):
    rng = np.random.default_rng(0)
    n, b = 5000, 4000
    u = rng.exponential(size=n) * (rng.random(n) >= zero_share)
    u[0] = 1.0  # at least one non-zero row
    z = np.column_stack([u, np.zeros(n), np.ones(n)])
    v = bootstrap_values(z, b, np.random.default_rng(1), "multinomial")
    # E[mean*] = mean(u); Var[mean*] = var_pop(u) / n (n draws with replacement)
    sd = np.sqrt(u.var() / n)
    assert abs(v.mean() - u.mean()) < 4 * sd / np.sqrt(b)
    assert abs(v.std() / sd - 1) < 0.06
    # the number of draws is n: the ratio statistic of a constant column is exactly 1
    ones = np.column_stack([np.zeros(n), np.ones(n), np.ones(n)])
    assert np.all(bootstrap_values(ones, 50, np.random.default_rng(2), "multinomial") == 1.0)


def test_multinomial_is_seeded_and_chunking_free_of_bias():
    rng = np.random.default_rng(3)
    n = 3000
    z = np.column_stack([rng.random(n) * (rng.random(n) < 0.2), np.zeros(n), np.ones(n)])
    a = bootstrap_values(z, 300, np.random.default_rng(7), "multinomial")
    b = bootstrap_values(z, 300, np.random.default_rng(7), "multinomial")
    assert np.array_equal(a, b)
    c = bootstrap_values(z, 3000, np.random.default_rng(8), "multinomial", chunk_elems=700)
    assert abs(c.std() / np.sqrt(z[:, 0].var() / n) - 1) < 0.08
