"""The trained network as the world's truth: exactness, the Gymnasium checker, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adsim.config import WorldConfig, parse_config
from adsim.errors import ConfigError

AD_FIELDS = ["item_id", "item_cat", "item_price"]


def _world_cfg(run: Path, **truth) -> WorldConfig:
    t = {"type": "trained", "run": str(run), "ad_fields": AD_FIELDS, **truth}
    return parse_config({"n_users": 200, "n_ads": 6, "truth": t}, WorldConfig)


def _world(run: Path, seed: int = 0, **truth):
    import adsim.worldmodel  # noqa: F401  (registers the trained world)
    from adsim.env.world import World

    return World.from_config(_world_cfg(run, **truth), np.random.default_rng(seed))


def test_probabilities_are_the_calibrated_network_on_decoded_rows(world_run):
    """Independent check: decode users/ads back to raw rows, score them with the run folder's
    own predict_frame (preprocessor → model → calibrator)."""
    from adsim.models.checkpoint import load_run

    world = _world(world_run)
    run = load_run(world_run)
    pre = run.preprocessor
    users = world.population.users.take(np.arange(5))
    p_world = world.truth.probabilities(users)  # (5, K, 2)
    rows = []
    for u in range(5):
        for k in range(world.n_actions):
            raw = {}
            for i, c in enumerate(world.truth.user_columns["dense"]):
                j = pre.dense.index(c)
                raw[c] = users.dense[u, i] * pre.scale_[j] + pre.mean_[j]
            for i, c in enumerate(world.truth.user_columns["sparse"]):
                raw[c] = pre.vocab_[c][users.sparse[u, i] - 2]
            for c in AD_FIELDS:
                v = world.truth.ad_table.iloc[k][c]
                raw[c] = (v * pre.scale_[pre.dense.index(c)] + pre.mean_[pre.dense.index(c)]
                          if c in pre.dense else pre.vocab_[c][int(v) - 2])
            rows.append(raw)
    p_ref = np.clip(run.predict_frame(pd.DataFrame(rows)).reshape(5, world.n_actions, 2), 1e-6, 1 - 1e-6)
    np.testing.assert_allclose(p_world[..., 0], p_ref[..., 0], rtol=1e-4, atol=1e-6)
    cvr_ref = np.clip(p_ref[..., 1] / p_ref[..., 0], 1e-6, 1 - 1e-6)  # ESMM: pCTCVR / pCTR
    np.testing.assert_allclose(p_world[..., 1], cvr_ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(world.truth.ctcvr(users), p_world[..., 0] * p_world[..., 1], rtol=1e-12)


def test_cache_equals_batched_inference(world_run):
    cached = _world(world_run)
    fresh = _world(world_run, cache="never", batch_size=64)
    ctx = cached.sample_contexts(50, np.random.default_rng(3))
    np.testing.assert_allclose(cached.truth.ctr(ctx), fresh.truth.ctr(ctx), rtol=1e-5)
    np.testing.assert_allclose(cached.truth.predict(ctx), cached.truth.ctr(ctx), rtol=1e-5)
    np.testing.assert_allclose(cached.truth.logits_for(ctx, np.array([4, 1])),
                               fresh.truth.logits(ctx)[:, [4, 1]], rtol=1e-4)


def test_same_seed_same_world_and_copula_users(world_run):
    a, b = _world(world_run, seed=5), _world(world_run, seed=5)
    np.testing.assert_array_equal(a.population.users.sparse, b.population.users.sparse)
    c = _world(world_run, seed=5, users="copula")
    assert c.population.users.sparse.shape == a.population.users.sparse.shape
    assert np.isfinite(c.truth.ctr(c.population.users)).all()


def test_exact_values_match_simulation(world_run):
    from adsim.env.oracle import policy_value
    from adsim.policies.bandits import SoftmaxPolicy, UniformPolicy

    world = _world(world_run)
    rng = np.random.default_rng(11)
    policies = [UniformPolicy(world.n_actions),
                SoftmaxPolicy(world.scorer(world.truth.perturbed(0.3, rng)), world.n_actions, 0.2)]
    for policy in policies:
        exact = policy_value(world, policy)
        log = world.collect(policy, 200_000, rng)
        se = log.reward.std(ddof=1) / np.sqrt(log.n_rounds)
        assert abs(log.reward.mean() - exact) < 4 * se, (policy, exact, log.reward.mean(), se)
        # the log's q(x, a) are the truth's probabilities
        assert np.allclose(log.expected_reward[:5], world.truth.ctr(
            world.population.users.take(log.context["user_id"].to_numpy()[:5])))


def test_gymnasium_env_checker(world_run):
    from gymnasium.utils.env_checker import check_env

    from adsim.env.envs import AdSelectionEnv

    env = AdSelectionEnv(world=_world_cfg(world_run))
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert info["expected_reward"].shape == (6,)
    np.testing.assert_allclose(info["expected_reward"], env.world.truth.ctr(env._ctx)[0])
    sb3 = pytest.importorskip("stable_baselines3.common.env_checker")
    sb3.check_env(AdSelectionEnv(world=_world_cfg(world_run)), warn=False)


def test_scenario_with_trained_world_runs(world_run):
    from adsim.config import Scenario
    from adsim.experiments.runner import run_scenario

    scn = parse_config({
        "name": "trained", "world": {"n_users": 200, "n_ads": 6, "truth": {
            "type": "trained", "run": str(world_run), "ad_fields": AD_FIELDS}},
        "candidates": [{"type": "epsilon_greedy", "model": "fitted"}, {"type": "uniform"}],
        "evaluation": {"n_rounds": 2000, "n_train_rounds": 2000},
    }, Scenario)
    res = run_scenario(scn, progress=False)
    board = res.leaderboard
    assert board["policy"].nunique() == 3  # logger + 2 candidates (one row per estimator)
    assert np.isfinite(board["true_value"].to_numpy(np.float64)).all()


def test_impressions_frame_round_trip(world_run):
    from adsim.policies.bandits import UniformPolicy
    from adsim.worldmodel import impressions_frame

    world = _world(world_run)
    log = world.collect(UniformPolicy(world.n_actions), 500, np.random.default_rng(0))
    df = impressions_frame(world, log)
    assert {"click", "p_click", *AD_FIELDS, "u_age", "u_x0"} <= set(df.columns)
    assert df["click"].sum() == int(log.reward.sum())
    np.testing.assert_allclose(df["p_click"], log.expected_reward[np.arange(500), log.action])


@pytest.mark.parametrize(
    ("truth", "world", "message"),
    [
        ({"ad_fields": ["nope"]}, {}, "ad_fields: 'nope' is not a feature of the run"),
        ({}, {"n_ads": 100}, "world.n_ads is 100 but the run's training rows have only"),
        ({"click_task": "purchase"}, {}, "click_task: 'purchase' is not a task"),
        ({"run": "/nonexistent/run"}, {}, "run folder '/nonexistent/run' not found"),
    ],
)
def test_config_errors(world_run, truth, world, message):
    from adsim.worldmodel import build_world

    t = {"type": "trained", "run": str(world_run), "ad_fields": AD_FIELDS, **truth}
    cfg = parse_config({"n_users": 50, "n_ads": 6, **world, "truth": t}, WorldConfig)
    with pytest.raises(ConfigError, match=message):
        build_world(cfg, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("truth", "message"),
    [
        ({"type": "trained", "ad_fields": ["a"]}, "give world.truth.run .* or world.truth.train"),
        ({"type": "trained", "run": "x", "train": "y", "ad_fields": ["a"]}, "both given"),
        ({"type": "trained", "run": "x", "ad_fields": []}, "must have at least 1 item"),
        ({"type": "trained", "run": "x", "ad_fields": ["a"], "users": "gan"}, "must be one of"),
        ({"type": "learned"}, "unknown type 'learned'"),
    ],
)
def test_yaml_validation(truth, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"truth": truth}, WorldConfig)


def test_copula_keeps_marginals_and_correlation():
    from adsim.env.feature_dist import FeatureDistribution

    rng = np.random.default_rng(0)
    n = 20_000
    x = rng.standard_normal(n)
    y = 0.8 * x + 0.6 * rng.standard_normal(n)
    cat = np.where(x > 0.5, 3, np.where(x > -0.5, 2, 1)) + (rng.random(n) < 0.1)
    frame = pd.DataFrame({"x": x.astype(np.float32), "y": np.exp(y), "c": cat.astype(np.int64)})
    dist = FeatureDistribution.fit(frame, ["x", "y"], ["c"], [6])
    s = dist.sample_copula(n, np.random.default_rng(1))
    assert abs(np.median(s["y"]) - np.median(frame["y"])) < 0.05
    from scipy.stats import spearmanr

    for a, b in (("x", "y"), ("x", "c")):
        r0, r1 = spearmanr(frame[a], frame[b])[0], spearmanr(s[a], s[b])[0]
        assert abs(r0 - r1) < 0.05, (a, b, r0, r1)
    freq0 = np.bincount(frame["c"], minlength=6) / n
    freq1 = np.bincount(s["c"], minlength=6) / n
    assert np.abs(freq0 - freq1).max() < 0.02
    rows = dist.sample_rows(100, np.random.default_rng(2))
    assert list(rows.columns) == ["x", "y", "c"]


def test_feature_distribution_saves_as_data(world_run, tmp_path):
    from adsim.env.feature_dist import FeatureDistribution
    from adsim.worldmodel.features import fit_distribution as _fit_distribution

    dist = _fit_distribution(world_run, None, 1000, 0)
    dist.save(tmp_path)
    back = FeatureDistribution.load(tmp_path)
    np.testing.assert_allclose(back.corr, dist.corr)
    pd.testing.assert_frame_equal(back.rows, dist.rows)


@pytest.mark.skipif("not __import__('torch').cuda.is_available()",
                    reason="needs a CUDA device; CI and the dev machines have none (run it on a GPU machine)")
def test_cuda_inference_matches_cpu(world_run):
    cpu, gpu = _world(world_run), _world(world_run, device="cuda")
    np.testing.assert_allclose(cpu.truth.ctr(cpu.population.users),
                               gpu.truth.ctr(gpu.population.users), rtol=1e-4, atol=1e-6)


def test_auction_day_in_a_trained_world_with_network_conversions(world_run):
    """The auction world runs on the trained truth; conversions can come from the network."""
    from adsim.config import Scenario
    from adsim.env.auction_world import AuctionWorld
    from adsim.env.world import World
    from adsim.policies.simple_bidders import make_bidder

    scn = parse_config({
        "name": "auction", "world": {"n_users": 200, "n_ads": 6, "truth": {
            "type": "trained", "run": str(world_run), "ad_fields": AD_FIELDS}},
        "auction": {"campaigns": [{"name": "a", "budget": 5.0}, {"name": "b", "value_per_conversion": 3.0}],
                    "traffic": {"n_requests": 3000, "n_steps": 4}},
    }, Scenario)
    world = World.from_config(scn.world, np.random.default_rng(0))
    aw = AuctionWorld(world, scn.auction, np.random.default_rng(1))
    aw.conversion = world.truth.conversion_model()
    ctx = world.population.users.take(np.arange(4))
    np.testing.assert_allclose(aw.conversion.cvr(ctx, np.array([0, 1])), world.truth.cvr(ctx)[:, :2],
                               rtol=1e-5)
    bidders = [make_bidder(c.bidder) for c in scn.auction.campaigns]
    aw.reset(np.random.default_rng(2), bidders)
    outcomes = []
    while not aw.done:
        outcomes += aw.run_step(bidders).outcomes
    spent_a = sum(o.cost for o in outcomes[0::2])
    assert spent_a <= 5.0 + 1e-9 and sum(o.clicks for o in outcomes) > 0


def test_world_model_as_dm_reward_model(world_run):
    """With the network itself as q̂, DM is the exact value up to the sampled contexts."""
    from adsim.env.features import Contexts
    from adsim.env.oracle import policy_value
    from adsim.estimators.registry import make_estimator
    from adsim.policies.bandits import UniformPolicy

    world = _world(world_run)
    logger = UniformPolicy(world.n_actions)
    log = world.collect(logger, 20_000, np.random.default_rng(4))
    ctx = Contexts.from_frame(log.context, world.spec)
    target = UniformPolicy(world.n_actions)
    q_hat = world.truth.predict(ctx)
    est = make_estimator("dm").estimate(log, target.action_dist(ctx), reward_model=q_hat)
    exact = policy_value(world, target)
    assert abs(est.value - exact) < 4 * q_hat.mean(1).std() / np.sqrt(log.n_rounds) + 1e-9


def test_auction_targeting_uses_the_runs_user_fields(world_run):
    from adsim.config import Scenario
    from adsim.env.auction_world import AuctionWorld
    from adsim.worldmodel import build_world

    def scn(targeting):
        return parse_config({
            "name": "t", "world": {"n_users": 100, "n_ads": 6, "truth": {
                "type": "trained", "run": str(world_run), "ad_fields": AD_FIELDS}},
            "auction": {"campaigns": [{"name": "a", "targeting": targeting}],
                        "traffic": {"n_requests": 100, "n_steps": 2}},
        }, Scenario)

    ok = scn({"u_age": [2, 3]})
    world = build_world(ok.world, np.random.default_rng(0))
    aw = AuctionWorld(world, ok.auction, np.random.default_rng(1))
    users = world.population.users
    j = list(world.spec.sparse_names).index("u_age")
    np.testing.assert_array_equal(aw.campaigns.eligible(users)[:, 0],
                                  np.isin(users.sparse[:, j], [2, 3]))
    bad = scn({"region": [0]})
    with pytest.raises(ConfigError, match=r"campaign 'a': targeting.region: the world's user fields are u_age"):
        AuctionWorld(world, bad.auction, np.random.default_rng(1))
