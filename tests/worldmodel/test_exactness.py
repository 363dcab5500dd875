"""Expected clicks and conversions per impression in a trained world equal a direct, calibrated
forward pass of the network (to 1e-5) — in the bandit world, the auction world and the budgeted
day (BudgetBidding env) — so the oracles (exact values, hindsight optimum) are exact with respect
to the network."""

from __future__ import annotations

import numpy as np
import pytest

from adsim.config import Scenario, parse_config
from adsim.errors import ConfigError

AD_FIELDS = ["item_id", "item_cat", "item_price"]
TOL = 1e-5


def _truth(run, **extra):
    return {"type": "trained", "run": str(run), "ad_fields": AD_FIELDS, **extra}


def test_bandit_world_expected_clicks_and_conversions(world_run, direct_probs):
    from adsim.config import WorldConfig
    from adsim.policies.bandits import UniformPolicy
    from adsim.worldmodel import build_world

    cfg = parse_config({"n_users": 150, "n_ads": 5, "truth": _truth(world_run)}, WorldConfig)
    world = build_world(cfg, np.random.default_rng(0))
    log = world.collect(UniformPolicy(world.n_actions), 300, np.random.default_rng(1))
    uid = log.context["user_id"].to_numpy()
    ctr, cvr = direct_probs(world, uid, log.action)
    # the log's q(x, a) of the shown ad is the network's P(click)
    np.testing.assert_allclose(log.expected_reward[np.arange(300), log.action], ctr, atol=TOL)
    users = world.population.users.take(uid)
    np.testing.assert_allclose(world.truth.cvr(users)[np.arange(300), log.action], cvr, atol=TOL)
    np.testing.assert_allclose(world.truth.ctcvr(users)[np.arange(300), log.action], ctr * cvr,
                               atol=TOL)
    # the same without the precomputed table (batched inference on the fly)
    fresh = build_world(cfg.model_copy(update={"truth": cfg.truth.model_copy(
        update={"cache": "never", "batch_size": 64})}), np.random.default_rng(0))
    np.testing.assert_allclose(fresh.truth.probabilities(users)[np.arange(300), log.action],
                               np.stack([ctr, cvr], 1), atol=TOL)


class _Recorder:
    """Wraps a bidder; keeps every request it is asked to bid on."""

    def __init__(self, inner):
        self.inner, self.name, self.seen = inner, "recorder", []

    def bid(self, requests, state):
        self.seen.append(requests)
        return self.inner.bid(requests, state)

    def __getattr__(self, item):
        return getattr(self.inner, item)


VPC, VPCONV = 0.5, 4.0


def _auction_scenario(run, mechanism="second_price", n_slots=1):
    return parse_config({
        "name": "exact", "seed": 2,
        "world": {"n_users": 150, "n_ads": 6, "truth": _truth(run)},
        "auction": {
            "mechanism": mechanism, "n_slots": n_slots,
            "campaigns": [{"name": "a", "ad": 2, "budget": 40.0, "value_per_click": VPC,
                           "value_per_conversion": VPCONV},
                          {"name": "b", "ad": 4, "value_per_conversion": 2.0}],
            "conversion": {"delay_mean_hours": 0.0},
            "traffic": {"n_requests": 8000, "n_steps": 4},
        },
    }, Scenario)


def _check_requests(world, seen, ad, direct_probs, theta0):
    uid = np.concatenate([r.contexts.user_id for r in seen])
    ctr_seen = np.concatenate([r.ctr for r in seen]) / theta0
    vals = np.concatenate([r.values for r in seen])
    ctr, cvr = direct_probs(world, uid, np.full(uid.size, ad))
    np.testing.assert_allclose(ctr_seen, ctr, atol=TOL)  # expected clicks per impression
    # value = θ₀·P(click)·(value per click + P(conv | click)·value per conversion)
    np.testing.assert_allclose(vals, theta0 * ctr * (VPC + cvr * VPCONV), atol=TOL)
    conv_seen = (vals / (theta0 * ctr_seen) - VPC) / VPCONV
    np.testing.assert_allclose(ctr_seen * conv_seen, ctr * cvr, atol=TOL)  # expected conversions
    return uid, ctr, cvr


@pytest.mark.parametrize(("mechanism", "n_slots"), [("second_price", 1), ("gsp", 2)])
def test_auction_world_expected_clicks_conversions_and_hindsight(
    world_run, direct_probs, mechanism, n_slots
):
    from adsim.env.auction_world import AuctionWorld
    from adsim.experiments.world_models import scenario_world
    from adsim.policies.simple_bidders import make_bidder

    scn = _auction_scenario(world_run, mechanism, n_slots)
    w_rng, a_rng = AuctionWorld.seed_streams(scn.seed)
    world = scenario_world(scn, w_rng)
    aw = AuctionWorld(world, scn.auction, a_rng)
    assert aw.conversion is not None  # conversions come from the network's pCVR
    bidders = [_Recorder(make_bidder(c.bidder)) for c in scn.auction.campaigns]
    aw.reset(np.random.default_rng(5), bidders)
    reports = []
    while not aw.done:
        reports.append(aw.run_step(bidders))
    theta = aw.theta
    uid, ctr, cvr = _check_requests(world, bidders[0].seen, 2, direct_probs, theta[0])
    # the hindsight oracle's slot values are θ_k · P(click) · value per click
    hv = np.concatenate([r.hindsight_values[0] for r in reports])
    np.testing.assert_allclose(hv, theta[None, :] * (ctr * (VPC + cvr * VPCONV))[:, None], atol=TOL)
    # realised conversions are drawn from the network's pCVR: among the clicked impressions,
    # Σ conversions ≈ Σ pCVR (within 4 standard deviations; delay 0, so none is censored)
    # (campaign b: no budget, so it takes part all day)
    uid_b = np.concatenate([r.contexts.user_id for r in bidders[1].seen])
    _, cvr_b = direct_probs(world, uid_b, np.full(uid_b.size, 4))
    clicked = np.concatenate([r.outcomes[1].clicked for r in reports])
    conv = sum(r.outcomes[1].conversions for r in reports)
    mean, var = cvr_b[clicked].sum(), (cvr_b[clicked] * (1 - cvr_b[clicked])).sum()
    assert clicked.sum() > 50 and abs(conv - mean) < 4 * np.sqrt(var) + 1, (conv, mean, var)


def test_budget_bidding_env_expected_clicks_and_conversions(world_run, direct_probs):
    import adsim.worldmodel  # noqa: F401  (registers the trained world with World.from_config)
    from adsim.env.envs import BudgetBiddingEnv

    scn = _auction_scenario(world_run)
    env = BudgetBiddingEnv(scenario=scn, hindsight=True)
    rec = _Recorder(env._agent_bidder)
    env.bidders[env.agent] = rec
    env.reset(seed=0)
    done, infos = False, []
    while not done:
        _, _, done, _, info = env.step(np.array([0.0]))
        infos.append(info)
    world = env.auction.world
    _check_requests(world, rec.seen, 2, direct_probs, env.auction.theta[0])
    assert "pct_of_optimal" in infos[-1] and 0 < infos[-1]["pct_of_optimal"] <= 100 + 1e-6


def test_separate_cvr_run_scores_decoded_rows(world_run, direct_probs):
    """``cvr_run``: P(conversion | click) is the CVR run's first output on the world's (user, ad)
    rows, decoded to raw values and re-encoded by that run. Using the same network as the "CVR
    run" its first output is pCTR, so the world's cvr must equal the direct pCTR."""
    from adsim.config import WorldConfig
    from adsim.worldmodel import build_world

    cfg = parse_config({"n_users": 120, "n_ads": 5, "truth": _truth(
        world_run, click_task="click", cvr_run=str(world_run))}, WorldConfig)
    world = build_world(cfg, np.random.default_rng(0))
    uid = np.arange(120)
    ads = np.arange(120) % 5
    ctr, _ = direct_probs(world, uid, ads)
    users = world.population.users.take(uid)
    np.testing.assert_allclose(world.truth.cvr(users)[uid, ads], ctr, atol=TOL)
    np.testing.assert_allclose(world.truth.ctcvr(users)[uid, ads], ctr * ctr, atol=TOL)
    missing = cfg.model_copy(update={"truth": cfg.truth.model_copy(update={"cvr_run": "/no/such"})})
    with pytest.raises(ConfigError, match="world.truth.cvr_run: run folder '/no/such' not found"):
        build_world(missing, np.random.default_rng(0))
