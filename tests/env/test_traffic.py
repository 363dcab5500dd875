"""Diurnal traffic and the simpy day clock."""

from __future__ import annotations

import numpy as np
import pytest

from adsim.env.traffic import DayClock, step_request_counts, step_shares


def test_step_shares_integrate_a_piecewise_constant_curve() -> None:
    assert step_shares(4, [1.0, 3.0]).tolist() == [0.125, 0.125, 0.375, 0.375]
    assert step_shares(1, [2.0, 5.0]).tolist() == [1.0]
    s = step_shares(96, np.random.default_rng(0).random(24))
    assert s.sum() == pytest.approx(1.0) and np.all(s > 0)


def test_counts_sum_to_the_day() -> None:
    c = step_request_counts(10_000, 48, [1.0] * 24, np.random.default_rng(0))
    assert c.sum() == 10_000 and c.shape == (48,)


def test_clock_delivers_batches_in_their_step_and_censors_after_midnight() -> None:
    clock = DayClock(4)
    clock.schedule_conversions(np.array([0.5, 7.0, 6.5, 13.0, 30.0]), np.array([0, 1, 1, 0, 1]),
                               np.ones(5))
    landed = [clock.advance() for _ in range(4)]
    assert [[b.campaign.tolist() for b in s] for s in landed] == [[[0]], [[1, 1]], [[0]], []]
    assert clock.censored == 1 and clock.done
    with pytest.raises(RuntimeError, match="day is over"):
        clock.advance()


def test_invalid_curve() -> None:
    with pytest.raises(ValueError, match="positive sum"):
        step_shares(4, [0.0, 0.0])
