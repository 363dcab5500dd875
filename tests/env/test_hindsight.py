"""Hindsight-optimal budget: knapsack = LP (HiGHS) = Lagrangian dual; it bounds every policy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adsim.env.oracle import hindsight_optimal


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60), n_slots=st.integers(1, 3),
       budget=st.floats(0.0, 30.0))
def test_solvers_agree(seed: int, n: int, n_slots: int, budget: float) -> None:
    rng = np.random.default_rng(seed)
    v = rng.random((n, n_slots)) * (rng.random((n, n_slots)) > 0.2)
    c = rng.random((n, n_slots)) * 2
    c[rng.random((n, n_slots)) < 0.1] = np.inf  # unavailable options
    lp = hindsight_optimal(v, c, budget, method="linprog")
    dual = hindsight_optimal(v, c, budget, method="dual")
    assert dual.value == pytest.approx(lp.value, rel=1e-7, abs=1e-9)
    for r in (lp, dual):
        assert r.cost <= budget * (1 + 1e-9) + 1e-12
        assert np.all(r.x >= -1e-9) and np.all(r.x.sum(axis=1) <= 1 + 1e-9)
    if n_slots == 1:
        ks = hindsight_optimal(v, c, budget, method="knapsack")
        assert ks.value == pytest.approx(lp.value, rel=1e-7, abs=1e-9)


def test_hindsight_bounds_any_feasible_policy() -> None:
    rng = np.random.default_rng(1)
    v, c = rng.random(2000), rng.random(2000)
    best = hindsight_optimal(v, c, 50.0)
    for _ in range(20):  # random feasible selections never beat it
        take = rng.permutation(2000)
        keep = take[np.cumsum(c[take]) <= 50.0]
        assert v[keep].sum() <= best.value + 1e-9
    assert best.cost == pytest.approx(50.0)


def test_unlimited_budget_takes_everything_with_value() -> None:
    v = np.array([1.0, 0.0, 2.0])
    r = hindsight_optimal(v, np.array([5.0, 1.0, np.inf]), np.inf)
    assert r.value == 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.ones(3), np.ones(4), 1.0), "same shape"),
        ((np.ones(3), -np.ones(3), 1.0), "costs must be >= 0"),
        ((np.ones(3), np.ones(3), -1.0), "budget must be >= 0"),
        ((np.ones((3, 2)), np.ones((3, 2)), 1.0, "knapsack"), "one slot"),
    ],
)
def test_invalid_inputs(args, message) -> None:
    with pytest.raises(ValueError, match=message):
        hindsight_optimal(*args)
