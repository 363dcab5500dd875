"""Bandit policies: distributions are distributions, samples follow them, learners learn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

from adsim.config import WorldConfig
from adsim.env.world import World
from adsim.experiments.online import loglog_slope, run_online
from adsim.policies.bandits import (
    DelayedFeedback,
    EpsilonGreedyPolicy,
    LinearThompsonPolicy,
    LinUCBPolicy,
    LogisticThompsonPolicy,
    OnlineLogisticScorer,
    SoftmaxPolicy,
    UniformPolicy,
    gaussian_argmax_probs,
)


@pytest.fixture(scope="module")
def world() -> World:
    return World.from_config(WorldConfig(n_users=400, n_ads=5, n_dense=3), np.random.default_rng(0))


@pytest.fixture(scope="module")
def train(world: World):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    return world.collect(UniformPolicy(world.n_actions), 3000, rng)


def _trained(policy, world: World, log) -> object:  # type: ignore[no-untyped-def]
    from adsim.env.features import Contexts

    policy.update(Contexts.from_frame(log.context, world.spec), log.action, log.reward)
    return policy


def _policies(world: World, log) -> dict[str, object]:  # type: ignore[no-untyped-def]
    k, d = world.n_actions, world.spec.design_dim
    pols: dict[str, object] = {
        "uniform": UniformPolicy(k),
        "egreedy": EpsilonGreedyPolicy(world.scorer(), k, 0.2),
        "softmax": SoftmaxPolicy(world.scorer(), k, 0.5),
        "logistic_ts": _trained(LogisticThompsonPolicy(k, d, n_samples=100), world, log),
        "logistic_ts_online": _trained(
            LogisticThompsonPolicy(k, d, n_samples=100, refit="online"), world, log
        ),
        "linucb": _trained(LinUCBPolicy(k, d, 1.0), world, log),
        "lin_ts": _trained(LinearThompsonPolicy(k, d, v=0.5), world, log),
        "online_egreedy": _trained(EpsilonGreedyPolicy(OnlineLogisticScorer(k, d), k, 0.1), world, log),
    }
    try:
        from adsim.policies.ensemble import EnsembleThompsonPolicy

        pols["ensemble_ts"] = _trained(
            EnsembleThompsonPolicy(k, d, n_members=8, steps_per_update=20, seed=0), world, log
        )
    except ImportError:  # pragma: no cover - torch is a core dependency here
        pass
    return pols


def test_action_dists_sum_to_one_and_match_samples(world: World, train) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    ctx = world.sample_contexts(3, rng)
    for name, pol in _policies(world, train).items():
        dist = pol.action_dist(ctx)  # type: ignore[attr-defined]
        assert dist.shape == (3, world.n_actions), name
        assert np.all(dist >= 0) and np.allclose(dist.sum(axis=1), 1.0), name
        # draw many samples for each of the 3 contexts (one batch of repeated rows)
        rep = ctx.take(np.repeat(np.arange(3), 2000))
        acts = pol.sample(rep, rng).reshape(3, 2000)  # type: ignore[attr-defined]
        for i in range(3):
            counts = np.bincount(acts[i], minlength=world.n_actions)
            p = dist[i]
            assert counts[p == 0].sum() == 0, f"{name}: sampled an action of probability 0"
            pos = p > 0
            if pos.sum() > 1:
                stat = chisquare(counts[pos], 2000 * p[pos] / p[pos].sum())
                assert stat.pvalue > 1e-4, f"{name} row {i}: p={stat.pvalue:.2g}"


def test_gaussian_argmax_probs_match_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(20, 6))
    sd = np.abs(rng.normal(size=(20, 6)))
    sd[:5, 0] *= 30  # very different spreads
    sd[5:10] *= 0.01  # nearly deterministic
    p = gaussian_argmax_probs(mu, sd)
    z = rng.standard_normal((200_000, 6))
    mc = np.stack([np.bincount(np.argmax(mu[i] + sd[i] * z, 1), minlength=6) for i in range(20)])
    mc = mc / 200_000
    assert np.allclose(p.sum(axis=1), 1.0)
    assert np.abs(p - mc).max() < 5e-3  # Monte Carlo sd ≈ 1.1e-3


def test_linucb_is_ridge_plus_bonus(world: World, train) -> None:  # type: ignore[no-untyped-def]
    from adsim.env.features import Contexts

    k, d = world.n_actions, world.spec.design_dim
    pol = _trained(LinUCBPolicy(k, d, alpha=0.7, ridge=2.0), world, train)
    ctx = Contexts.from_frame(train.context, world.spec)
    x = np.hstack([np.ones((len(ctx), 1)), ctx.design_matrix()])
    a = 2
    rows = train.action == a
    big_a = 2.0 * np.eye(d + 1) + x[rows].T @ x[rows]
    theta = np.linalg.solve(big_a, x[rows].T @ train.reward[rows])
    x0 = x[:4]
    want = x0 @ theta + 0.7 * np.sqrt(np.einsum("nd,de,ne->n", x0, np.linalg.inv(big_a), x0))
    assert np.allclose(pol.ucb(ctx.take(np.arange(4)))[:, a], want)  # type: ignore[attr-defined]


def test_delayed_feedback_releases_only_arrived_rows(world: World) -> None:
    seen: list[int] = []

    class Spy(UniformPolicy):
        def update(self, contexts, actions, rewards):  # type: ignore[no-untyped-def]
            seen.append(len(actions))

    q = DelayedFeedback(Spy(world.n_actions))
    ctx = world.sample_contexts(10, np.random.default_rng(0))
    q.push(ctx, np.zeros(10, int), np.ones(10), arrival=np.arange(10.0))
    assert q.release(2.5) == 3 and seen == [3] and q.pending == 7
    assert q.release(2.5) == 0 and seen == [3]
    assert q.flush() == 7 and q.pending == 0


def test_thompson_regret_sublinear_and_below_epsilon_greedy() -> None:
    """Quick version of benchmarks/bandit_regret.py (online, same world and traffic)."""
    world = World.from_config(WorldConfig(n_users=2000, n_ads=5, n_dense=3), np.random.default_rng(3))
    k, d = world.n_actions, world.spec.design_dim
    ts = run_online(world, LogisticThompsonPolicy(k, d, n_samples=100, refit="online"), 15_000,
                    np.random.default_rng(9), batch_size=500)
    eg = run_online(world, EpsilonGreedyPolicy(OnlineLogisticScorer(k, d), k, 0.1), 15_000,
                    np.random.default_rng(9), batch_size=500)
    assert ts.cum_regret[-1] < eg.cum_regret[-1]
    assert loglog_slope(ts.rounds, ts.cum_regret) < 0.8


def test_delayed_feedback_still_learns() -> None:
    world = World.from_config(WorldConfig(n_users=2000, n_ads=5, n_dense=3), np.random.default_rng(3))
    k, d = world.n_actions, world.spec.design_dim
    fast = run_online(world, LinearThompsonPolicy(k, d, 0.2), 6000, np.random.default_rng(2), 500)
    late = run_online(world, LinearThompsonPolicy(k, d, 0.2), 6000, np.random.default_rng(2), 500,
                      delay=4)
    uni = run_online(world, UniformPolicy(k), 6000, np.random.default_rng(2), 500)
    assert fast.cum_regret[-1] <= late.cum_regret[-1] < uni.cum_regret[-1]
