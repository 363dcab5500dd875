"""The SP_Oracle throughput kernel simulates the same process as a plain reference."""

from __future__ import annotations

import numpy as np

from adsim.env.auction import run_auction
from adsim.env.fastpath import SecondPriceOracleSim


def reference(sim: SecondPriceOracleSim, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-round simulation the obvious way: pick 2 agents, each bids max_j v_j σ(x·e_j)."""
    x = rng.standard_normal((n, sim.dim))
    parts = np.stack([rng.choice(sim.n_agents, 2, replace=False) for _ in range(n)])
    ctr = 1 / (1 + np.exp(-np.einsum("nd,npid->npi", x, sim.emb[parts])))  # (n, 2, items)
    val = ctr * sim.values[parts]
    item = val.argmax(axis=2)
    bids = val.max(axis=2)
    out = run_auction(bids, "second_price")
    w = out.winners[:, 0]
    rows = np.arange(n)
    click = rng.random(n) < ctr[rows, w, item[rows, w]]
    return {"price": out.price[:, 0], "click": click.astype(float)}


def test_fast_kernel_matches_reference_within_mc_error() -> None:
    sim = SecondPriceOracleSim(np.random.default_rng(5), chunk=8192)
    n_fast, n_ref = 400_000, 40_000
    tot = sim.simulate(n_fast, np.random.default_rng(1))
    ref = reference(sim, n_ref, np.random.default_rng(2))
    for key, fast_mean in (("price", tot.revenue / n_fast), ("click", tot.clicks / n_fast)):
        x = ref[key]
        se = x.std(ddof=1) * np.sqrt(1 / n_ref + 1 / n_fast)
        assert abs(fast_mean - x.mean()) < 4 * se, (key, fast_mean, x.mean(), se)
    assert tot.wins.sum() == n_fast
    assert np.isclose(tot.spend.sum(), tot.revenue)
    # every agent takes part in about a third of the rounds and wins some
    assert np.all(tot.wins > 0.05 * n_fast)


def test_same_seed_same_totals() -> None:
    sim = SecondPriceOracleSim(np.random.default_rng(0))
    a = sim.simulate(50_000, np.random.default_rng(9))
    b = sim.simulate(50_000, np.random.default_rng(9))
    assert a.revenue == b.revenue and a.clicks == b.clicks
