"""Mechanism properties (hypothesis) and a brute-force VCG check."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from adsim.env.auction import run_auction, second_price_top2

bid_values = st.floats(0.0, 100.0, allow_nan=False, allow_infinity=False)


def bids_strategy(max_n: int = 8) -> st.SearchStrategy[np.ndarray]:
    return st.tuples(st.integers(1, 6), st.integers(1, max_n)).flatmap(
        lambda s: arrays(np.float64, s, elements=bid_values)
    )


def theta_strategy(n: int) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float64, n, elements=st.floats(0.05, 1.0)).map(lambda a: -np.sort(-a))


@settings(max_examples=150, deadline=None)
@given(bids=bids_strategy(), reserve=st.floats(0.0, 50.0), ecpm=st.booleans(), data=st.data())
def test_second_price_pays_between_reserve_and_bid(bids, reserve, ecpm, data) -> None:
    q = data.draw(arrays(np.float64, bids.shape, elements=st.floats(0.01, 1.0))) if ecpm else None
    out = run_auction(bids, "second_price", quality=q, reserve=reserve)
    w = q if q is not None else np.ones_like(bids)
    sold = out.winners[:, 0] >= 0
    rows = np.flatnonzero(sold)
    win = out.winners[rows, 0]
    # in bid units: price <= own bid; in rank-score units: price >= reserve
    assert np.all(out.price[rows, 0] <= bids[rows, win] * (1 + 1e-12))
    assert np.all(out.rank_price[rows, 0] >= reserve * (1 - 1e-12))
    # the winner has the highest rank score, and it clears the reserve
    scores = bids * w
    assert np.allclose(scores[rows, win], scores[rows].max(axis=1))
    assert np.all(scores[rows, win] >= reserve)
    # unsold iff nobody clears the reserve (or every bid is zero)
    unsold = np.flatnonzero(~sold)
    assert np.all((scores[unsold] < reserve) | (scores[unsold] <= 0))
    # second-price price is the second-highest eligible score (or the reserve)
    for i in rows:
        others = np.delete(scores[i], out.winners[i, 0])
        others = others[(others >= reserve) & (others > 0)]
        expect = max(others.max() if others.size else 0.0, reserve)
        assert out.rank_price[i, 0] == pytest.approx(expect)


@settings(max_examples=80, deadline=None)
@given(bids=bids_strategy(10), n_slots=st.integers(1, 5), reserve=st.floats(0.0, 30.0),
       data=st.data())
def test_gsp_prices_fall_down_the_slots_and_vcg_pays_no_more(bids, n_slots, reserve, data) -> None:
    theta = data.draw(theta_strategy(n_slots))
    q = data.draw(arrays(np.float64, bids.shape, elements=st.floats(0.01, 1.0)))
    gsp = run_auction(bids, "gsp", n_slots=n_slots, quality=q, reserve=reserve, examination=theta)
    vcg = run_auction(bids, "vcg", n_slots=n_slots, quality=q, reserve=reserve, examination=theta)
    assert np.array_equal(gsp.winners, vcg.winners)
    filled = gsp.winners >= 0
    # slots fill from the top
    assert np.all(filled[:, :-1] >= filled[:, 1:])
    assert np.all(np.diff(gsp.rank_price, axis=1)[filled[:, 1:]] <= 1e-12)
    assert np.all(vcg.rank_price <= gsp.rank_price + 1e-9)
    assert np.all(vcg.rank_price[filled] >= reserve * (1 - 1e-12))
    # nobody pays more than its bid; scores are sorted
    rows, slots = np.nonzero(filled)
    assert np.all(gsp.price[rows, slots] <= bids[rows, gsp.winners[rows, slots]] * (1 + 1e-9))
    assert np.all(np.diff(np.where(filled, gsp.scores, -1), axis=1) <= 0)


def _vcg_brute(scores: np.ndarray, theta: np.ndarray) -> list[float]:
    """Clarke pivot payment (expected, rank-score units) of each slot by brute force."""
    s = len(theta)

    def welfare(sc: np.ndarray, exclude: int | None) -> tuple[float, list[int]]:
        idx = [i for i in np.argsort(-sc, kind="stable") if i != exclude and sc[i] > 0][:s]
        return float(sum(theta[k] * sc[i] for k, i in enumerate(idx))), idx

    total, alloc = welfare(scores, None)
    pays = []
    for k, i in enumerate(alloc):
        without, _ = welfare(scores, i)
        others_with = total - theta[k] * scores[i]
        pays.append(without - others_with)
    return pays


@settings(max_examples=80, deadline=None)
@given(scores=arrays(np.float64, st.integers(1, 7), elements=st.floats(0.01, 10.0), unique=True),
       n_slots=st.integers(1, 4), data=st.data())
def test_vcg_matches_clarke_pivot_by_brute_force(scores, n_slots, data) -> None:
    theta = data.draw(theta_strategy(n_slots))
    out = run_auction(scores[None, :], "vcg", n_slots=n_slots, examination=theta)
    expected = _vcg_brute(scores, theta)
    got = [out.rank_price[0, k] * theta[k] for k in range(len(expected))]
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_first_price_pays_own_bid_and_ties_go_to_lower_index() -> None:
    bids = np.array([[1.0, 3.0, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    out = run_auction(bids, "first_price", n_slots=2, reserve=0.5)
    assert out.winners.tolist() == [[1, 2], [-1, -1]]
    assert out.price.tolist() == [[3.0, 3.0], [0.0, 0.0]]


def test_per_request_reserve_and_ecpm_prices_per_click() -> None:
    bids = np.array([[2.0, 1.0], [2.0, 1.0]])
    q = np.array([[0.1, 0.5], [0.1, 0.5]])  # eCPM 0.2 vs 0.5: bidder 1 wins on quality
    out = run_auction(bids, "second_price", quality=q, reserve=np.array([0.0, 0.3]))
    assert out.winners[:, 0].tolist() == [1, 1]
    # pays the runner-up's eCPM (or the reserve) divided by its own pCTR, per click
    assert out.price[:, 0] == pytest.approx([0.2 / 0.5, 0.3 / 0.5])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mechanism": "second_price", "n_slots": 2}, "second_price sells one slot"),
        ({"mechanism": "dutch"}, "unknown mechanism"),
        ({"mechanism": "gsp", "n_slots": 2, "examination": np.array([0.5, 0.9])}, "non-increasing"),
        ({"mechanism": "gsp", "n_slots": 2, "examination": np.array([1.0])}, "2 entries"),
    ],
)
def test_invalid_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        run_auction(np.ones((2, 3)), **kwargs)


def test_top2_kernel_matches_general_mechanism() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(1000), rng.random(1000)
    a_wins, price = second_price_top2(a, b, reserve=0.3)
    ref = run_auction(np.stack([a, b], 1), "second_price", reserve=0.3)
    sold = ref.winners[:, 0] >= 0
    assert np.array_equal(a_wins[sold], ref.winners[sold, 0] == 0)
    assert np.allclose(price, ref.rank_price[:, 0])


def test_all_mechanisms_agree_with_one_slot_and_one_bidder() -> None:
    for mech in ("second_price", "gsp", "vcg"):
        out = run_auction(np.array([[5.0]]), mech, reserve=1.0)
        assert out.winners[0, 0] == 0 and out.price[0, 0] == 1.0
    assert list(itertools.chain(*run_auction(np.array([[5.0]]), "first_price").price)) == [5.0]
