"""Estimator formulas on hand-computed cases, limits of the hyperparameters, and unbiasedness."""

from __future__ import annotations

import numpy as np
import pytest

from adsim.env.logs import BanditLog
from adsim.estimators.registry import ESTIMATORS, make_estimator
from tests.estimators.conftest import make_log

pytestmark = pytest.mark.filterwarnings("ignore::adsim.estimators.diagnostics.OverlapWarning")

# 3 rounds, 2 actions, hand-computed below
LOG = BanditLog(action=np.array([0, 1, 1]), reward=np.array([1.0, 0.0, 2.0]),
                pscore=np.array([0.5, 0.25, 0.5]), n_actions=2)
PI = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
Q = np.array([[0.8, 0.2], [0.4, 0.6], [0.1, 1.5]])
# weights w = [1/0.5, 0.5/0.25, 1/0.5] = [2, 2, 2]; q̂(x,π) = [0.8, 0.5, 1.5]; q̂(x,a) = [0.8, 0.6, 1.5]
HAND = {
    "ips": (2 * 1 + 2 * 0 + 2 * 2) / 3,                                       # 2
    "snips": (2 * 1 + 0 + 2 * 2) / 6,                                          # 1
    "dm": (0.8 + 0.5 + 1.5) / 3,
    "dr": ((0.8 + 2 * 0.2) + (0.5 + 2 * -0.6) + (1.5 + 2 * 0.5)) / 3,
    "sndr": (0.8 + 0.5 + 1.5) / 3 + (2 * 0.2 + 2 * -0.6 + 2 * 0.5) / 6,
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_hand_computed(name):
    est = make_estimator(name).estimate(LOG, PI, Q)
    assert est.value == pytest.approx(HAND[name], abs=1e-12)
    assert est.n_rounds == 3
    assert est.ci_low <= est.value <= est.ci_high


def test_hand_computed_clip_switch_shrinkage():
    # clip at 1.5 → weights 1.5
    assert make_estimator("ips", clip=1.5).estimate(LOG, PI).value == pytest.approx(1.5 * 3 / 3)
    # switch at λ=1: every w=2 > 1 → DM; DR-OS λ=4: ŵ = 4·2/(4+4) = 1
    assert make_estimator("switch_dr", lambda_=1.0).estimate(LOG, PI, Q).value == pytest.approx(HAND["dm"])
    dros = ((0.8 + 0.2) + (0.5 - 0.6) + (1.5 + 0.5)) / 3
    assert make_estimator("dr_os", lambda_=4.0).estimate(LOG, PI, Q).value == pytest.approx(dros)


def test_snips_std_err_is_delta_method():
    w, r = np.array([2.0, 2, 2]), LOG.reward
    v = (w * r).sum() / w.sum()
    psi = v + w * (r - v) / w.mean()
    est = make_estimator("snips").estimate(LOG, PI)
    assert est.std_err == pytest.approx(psi.std(ddof=1) / np.sqrt(3))


@pytest.mark.parametrize("seed", range(5))
def test_switch_and_dros_reduce_to_dr_and_dm(seed):
    rng = np.random.default_rng(seed)
    log, _, pi, _ = make_log(500, 6, rng)
    q = rng.random((500, 6))
    dr = make_estimator("dr").estimate(log, pi, q).value
    dm = make_estimator("dm").estimate(log, pi, q).value
    assert make_estimator("switch_dr", lambda_=np.inf).estimate(log, pi, q).value == pytest.approx(dr, abs=1e-14)
    assert make_estimator("switch_dr", lambda_=0.0).estimate(log, pi, q).value == pytest.approx(dm, abs=1e-14)
    assert make_estimator("dr_os", lambda_=np.inf).estimate(log, pi, q).value == pytest.approx(dr, abs=1e-14)
    assert make_estimator("dr_os", lambda_=0.0).estimate(log, pi, q).value == pytest.approx(dm, abs=1e-14)
    # a huge finite λ is close to DR, a tiny one close to DM
    assert make_estimator("dr_os", lambda_=1e12).estimate(log, pi, q).value == pytest.approx(dr, abs=1e-8)
    assert make_estimator("dr_os", lambda_=1e-12).estimate(log, pi, q).value == pytest.approx(dm, abs=1e-8)


@pytest.mark.parametrize("seed", range(20))
def test_snips_between_min_and_max_reward(seed):
    rng = np.random.default_rng(seed)
    n, k = 50, 4
    a = rng.integers(0, k, n)
    log = BanditLog(a, rng.normal(size=n) * 3, rng.uniform(0.01, 1, n), k)
    pi = rng.dirichlet(np.ones(k) * 0.3, n)
    v = make_estimator("snips").estimate(log, pi).value
    assert log.reward.min() - 1e-12 <= v <= log.reward.max() + 1e-12


def test_ips_and_dr_unbiased_in_simulation():
    """Mean over 400 independent logs is within 4 Monte-Carlo SEs of the exact value."""
    rng = np.random.default_rng(7)
    vals = {"ips": [], "dr": [], "snips": []}
    truth = None
    for _ in range(400):
        log, _, pi, ctr = make_log(400, 5, rng, ctr=[0.1, 0.2, 0.3, 0.4, 0.5],
                                   pi0_row=[0.4, 0.3, 0.15, 0.1, 0.05],
                                   pi_row=[0.05, 0.1, 0.15, 0.3, 0.4])
        truth = float(pi[0] @ ctr)
        q = np.tile(np.array(ctr) + 0.1, (400, 1))  # wrong reward model: DR must still be unbiased
        vals["ips"].append(make_estimator("ips").estimate(log, pi).value)
        vals["dr"].append(make_estimator("dr").estimate(log, pi, q).value)
        vals["snips"].append(make_estimator("snips").estimate(log, pi).value)
    for name in ("ips", "dr"):
        v = np.array(vals[name])
        assert abs(v.mean() - truth) < 4 * v.std(ddof=1) / np.sqrt(v.size), name
    # and a biased estimator is caught by the same test: DM with the wrong model
    dm = make_estimator("dm").estimate(log, pi, q).value
    assert abs(dm - truth) > 0.09


@pytest.mark.parametrize("interval", ["clt", "bootstrap", "bernstein"])
def test_interval_methods(rng, interval):
    log, _, pi, _ = make_log(5000, 5, rng)
    q = rng.random((5000, 5))
    for name in ("ips", "snips", "dr", "sndr"):
        e = make_estimator(name, interval=interval).estimate(log, pi, q)
        assert e.interval == interval and e.ci_low < e.value < e.ci_high
        clt = make_estimator(name).estimate(log, pi, q)
        width, clt_width = e.ci_high - e.ci_low, clt.ci_high - clt.ci_low
        if interval == "bootstrap":  # Efron's bootstrap ≈ delta method at n = 5000
            assert width == pytest.approx(clt_width, rel=0.15)
        if interval == "bernstein":
            assert width > clt_width


def test_bootstrap_renormalises_inside_resamples(rng):
    """For SNIPS the bootstrap spread matches the delta-method SE (normaliser re-estimated in
    every resample), for both the multinomial and the double-or-nothing scheme."""
    from adsim.estimators.intervals import bootstrap_values

    log, _, pi, _ = make_log(4000, 5, rng)
    est = make_estimator("snips")
    comp = est._components(log, pi, None)
    reps = bootstrap_values(comp.stacked(), 2000, np.random.default_rng(0))
    assert reps.std() == pytest.approx(est.estimate(log, pi).std_err, rel=0.1)
    half = bootstrap_values(comp.stacked(), 2000, np.random.default_rng(0), scheme="half")
    assert half.std() == pytest.approx(est.estimate(log, pi).std_err, rel=0.1)


def test_bootstrap_is_reproducible(rng):
    log, _, pi, _ = make_log(1000, 5, rng)
    a = make_estimator("snips", interval="bootstrap", random_state=3).estimate(log, pi)
    b = make_estimator("snips", interval="bootstrap", random_state=3).estimate(log, pi)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)


def test_slope_picks_from_grid_and_reports_it(rng):
    log, _, pi, _ = make_log(3000, 5, rng)
    q = rng.random((3000, 5))
    for name in ("switch_dr_slope", "dr_os_slope"):
        e = make_estimator(name).estimate(log, pi, q)
        assert e.estimator == name
        assert e.details["lambda_"] in make_estimator(name).lambdas


def test_positions_select_the_row_slot(rng):
    log, _, pi, _ = make_log(300, 4, rng)
    pos_log = BanditLog(log.action, log.reward, log.pscore, 4, position=np.ones(300, dtype=int))
    pi3 = np.stack([np.full((300, 4), 0.25), pi], axis=2)  # slot 0 uniform, slot 1 = pi
    assert make_estimator("ips").estimate(pos_log, pi3).value == pytest.approx(
        make_estimator("ips").estimate(log, pi).value)


def test_every_estimator_is_registered_and_named():
    for name, cls in ESTIMATORS.items():
        assert cls.name == name
        assert cls.__doc__ and len(cls.__doc__) > 40


@pytest.mark.parametrize("scheme", ["multinomial", "half"])
@pytest.mark.parametrize("n", [13, 64, 1001])
def test_bootstrap_schemes_exact_on_constants(scheme, n):
    """A constant u must give exactly that constant in every resample (checks ΣW and padding)."""
    from adsim.estimators.intervals import bootstrap_values

    z = np.column_stack([np.full(n, 0.7), np.zeros(n), np.ones(n)])
    v = bootstrap_values(z, 50, np.random.default_rng(0), scheme=scheme)
    assert np.allclose(v, 0.7, rtol=1e-12)
    z = np.column_stack([np.zeros(n), np.full(n, 0.3), np.full(n, 0.6)])  # ratio c/d = 0.5
    v = bootstrap_values(z, 50, np.random.default_rng(0), scheme=scheme)
    assert np.allclose(v, 0.5, rtol=1e-12)
