"""The oracle's exact value agrees with a large on-policy simulation within Monte Carlo error."""

from __future__ import annotations

import numpy as np
import pytest

from adsim.config import WorldConfig
from adsim.env.oracle import conditional_value, policy_value
from adsim.env.world import World
from adsim.policies.bandits import EpsilonGreedyPolicy, SoftmaxPolicy, UniformPolicy


@pytest.fixture(scope="module")
def world() -> World:
    return World.from_config(WorldConfig(n_users=2000, n_ads=6), np.random.default_rng(0))


@pytest.mark.parametrize("reward", ["click", "value"])
@pytest.mark.parametrize("kind", ["uniform", "softmax", "greedy"])
def test_exact_value_matches_simulation(reward: str, kind: str) -> None:
    w = World.from_config(WorldConfig(n_users=2000, n_ads=6, reward=reward), np.random.default_rng(0))
    policy = {
        "uniform": UniformPolicy(w.n_actions),
        "softmax": SoftmaxPolicy(w.scorer(), w.n_actions, temperature=0.7),
        "greedy": EpsilonGreedyPolicy(w.scorer(), w.n_actions, epsilon=0.05),
    }[kind]
    exact = policy_value(w, policy)
    log = w.collect(policy, 400_000, np.random.default_rng(1))
    se = log.reward.std(ddof=1) / np.sqrt(log.n_rounds)
    assert abs(log.reward.mean() - exact) < 4 * se, (log.reward.mean(), exact, se)
    # and it is not trivially satisfied: the simulated mean is far from other policies' values
    other = policy_value(w, UniformPolicy(w.n_actions)) if kind != "uniform" else policy_value(
        w, EpsilonGreedyPolicy(w.scorer(), w.n_actions, 0.0))
    assert abs(log.reward.mean() - other) > 10 * se


def test_conditional_value_is_mean_of_expected_rewards(world: World) -> None:
    ctx = world.sample_contexts(1000, np.random.default_rng(2))
    pi = UniformPolicy(world.n_actions).action_dist(ctx)
    q = world.expected_reward(ctx)
    assert conditional_value(pi, q) == pytest.approx(q.mean())


def test_greedy_on_truth_is_best_deterministic_policy(world: World) -> None:
    best = policy_value(world, EpsilonGreedyPolicy(world.scorer(), world.n_actions, 0.0))
    q = world.expected_reward(world.population.users)
    assert best == pytest.approx(float(q.max(axis=1).mean()))
    assert best > policy_value(world, SoftmaxPolicy(world.scorer(), world.n_actions, 0.5))
