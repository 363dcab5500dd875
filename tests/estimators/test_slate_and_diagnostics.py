"""Slate estimators (hand-computed), overlap diagnostics and warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from adsim.env.logs import BanditLog
from adsim.errors import DataError
from adsim.estimators.diagnostics import OverlapWarning, overlap_diagnostics
from adsim.estimators.registry import make_estimator

pytestmark = pytest.mark.filterwarnings("ignore::adsim.estimators.diagnostics.OverlapWarning")

# two slates of two slots; 3 ads
SLATE = BanditLog(action=np.array([0, 1, 2, 0]), reward=np.array([1.0, 1.0, 0.0, 1.0]),
                  pscore=np.array([0.5, 0.25, 0.5, 0.5]), n_actions=3,
                  position=np.array([0, 1, 0, 1]))
# target: slot 0 → [0.5, 0.25, 0.25], slot 1 → [0.25, 0.5, 0.25] for every row
PI = np.tile(np.array([[0.5, 0.25], [0.25, 0.5], [0.25, 0.25]])[None], (4, 1, 1))  # (n, K, P)
# per-row weights: row0 a=0@0 0.5/0.5=1; row1 a=1@1 0.5/0.25=2; row2 a=2@0 0.25/0.5=0.5;
# row3 a=0@1 0.25/0.5=0.5


def test_iips_hand_computed():
    e = make_estimator("slate_iips").estimate(SLATE, PI)
    assert e.value == pytest.approx(((1 * 1 + 2 * 1) + (0.5 * 0 + 0.5 * 1)) / 2)
    assert e.n_rounds == 2


def test_rips_hand_computed():
    # cascade weights: slate 0: [1, 1·2]; slate 1: [0.5, 0.5·0.5]
    e = make_estimator("slate_rips").estimate(SLATE, PI)
    assert e.value == pytest.approx(((1 * 1 + 2 * 1) + (0.5 * 0 + 0.25 * 1)) / 2)


@pytest.mark.parametrize(("position", "message"), [
    (None, "slate estimators need the log column 'position'"),
    (np.array([0, 1, 1, 0]), "row 2 has position 1 after 1"),
    (np.array([1, 0, 0, 1]), "a slate must start at position 0, row 0 has 1"),
    (np.array([0, 2, 0, 1]), "row 1 has position 2 after 0"),
])
def test_slate_bad_positions(position, message):
    log = BanditLog(SLATE.action, SLATE.reward, SLATE.pscore, 3, position=position)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_estimator("slate_iips").estimate(log, PI)


def test_slate_needs_3d_target():
    with pytest.raises(DataError, match=r"must be \(n_rows, n_actions, n_positions\)"):
        make_estimator("slate_rips").estimate(SLATE, PI[:, :, 0])


def test_diagnostics_values():
    log = BanditLog(np.array([0, 0, 1, 1]), np.zeros(4), np.array([0.5, 0.5, 0.5, 0.5]), 3)
    pi = np.array([[1.0, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0.5], [0, 0, 1.0]])
    d = overlap_diagnostics(log, pi)
    w = np.array([2.0, 1.0, 1.0, 0.0])
    assert d.ess == pytest.approx(w.sum() ** 2 / (w**2).sum())
    assert d.max_weight == 2.0 and d.mean_weight == 1.0
    assert d.unsupported_mass == pytest.approx((0 + 0 + 0.5 + 1.0) / 4)
    assert d.n_never_logged_actions == 1
    assert any("never took" in p for p in d.problems())


def test_warning_on_poor_overlap_and_silence_on_good():
    rng = np.random.default_rng(0)
    n, k = 5000, 5
    a = rng.integers(0, k, n)
    log = BanditLog(a, rng.random(n), np.full(n, 1 / k), k)
    good = rng.dirichlet(np.ones(k) * 20, n)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OverlapWarning)
        make_estimator("ips").estimate(log, good)  # no warning
    bad = good.copy()
    bad[7] = np.eye(k)[log.action[7]]  # the target is sure of an action the logger almost never took
    log.pscore[7] = 1e-5                 # → one weight of 1e5 carries the estimate
    with pytest.warns(OverlapWarning, match="effective sample size"):
        make_estimator("ips").estimate(log, bad)
