"""Market models: closed forms vs simulation (exact value within Monte Carlo error), fitting."""

from __future__ import annotations

import numpy as np
import pytest

from adsim.env.auction import run_auction
from adsim.env.market import LogNormalMarket, fit_lognormal_market


@pytest.mark.parametrize("reserve", [0.0, 0.3])
def test_exact_bidding_value_matches_large_simulation(reserve: float) -> None:
    """A bidding policy's exact expected surplus vs 400k simulated second-price auctions."""
    rng = np.random.default_rng(3)
    market = LogNormalMarket(mu=-0.5, sigma=0.7)
    n = 400_000
    values = rng.lognormal(-0.3, 0.5, n)
    bids = 0.8 * values  # a shaded policy
    exact = float(np.mean(values * market.win_prob(bids, reserve)
                          - market.expected_payment(bids, reserve)))
    d = market.sample(n, rng)[:, 0]
    out = run_auction(np.stack([bids, d], 1), "second_price", reserve=reserve)
    won = out.winners[:, 0] == 0
    surplus = np.where(won, values - out.price[:, 0], 0.0)
    se = surplus.std(ddof=1) / np.sqrt(n)
    assert abs(surplus.mean() - exact) < 4 * se, (surplus.mean(), exact, se)
    # and it can fail: a wrong closed form (no reserve) is detected when a reserve binds
    if reserve > 0:
        wrong = float(np.mean(values * market.win_prob(bids) - market.expected_payment(bids)))
        assert abs(surplus.mean() - wrong) > 4 * se


def test_fit_lognormal_recovers_parameters() -> None:
    rng = np.random.default_rng(0)
    m = fit_lognormal_market(LogNormalMarket(-2.0, 0.4).sample(100_000, rng)[:, 0])
    assert m.mu == pytest.approx(-2.0, abs=0.01) and m.sigma == pytest.approx(0.4, abs=0.01)
    with pytest.raises(ValueError, match="at least two"):
        fit_lognormal_market(np.array([1.0]))


def test_closed_forms_need_a_single_competitor() -> None:
    with pytest.raises(ValueError, match="single competitor"):
        LogNormalMarket(n_competitors=3).win_prob(np.ones(2))
