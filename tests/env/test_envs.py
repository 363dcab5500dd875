"""Gymnasium envs: registration, both env checkers, vector envs, seeding, input guards."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import adsim.env.envs  # noqa: F401  (registers the ids)
from adsim.env.envs import ENV_IDS, AdSelectionEnv, BudgetBiddingEnv

SMALL = {
    "adsim/AdSelection-v0": {"world": {"n_users": 200, "n_ads": 5}},
    "adsim/BudgetBidding-v0": {"auction": {
        "campaigns": [{"name": "me", "budget": 5.0, "value_per_click": 2.0},
                      {"name": "rival", "budget": 5.0, "value_per_click": 2.0,
                       "bidder": {"type": "constant_pacing"}}],
        "market": {"type": "lognormal", "mu": -3.0},
        "traffic": {"n_requests": 2000, "n_steps": 8},
    }},
}


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env(env_id: str) -> None:
    env = gym.make(env_id, **SMALL[env_id])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker's warnings count as failures
        check_env(env.unwrapped)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_stable_baselines3_check_env(env_id: str) -> None:
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(env_id, **SMALL[env_id])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env.unwrapped)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sync_vector_env(env_id: str) -> None:
    envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id, **SMALL[env_id])] * 3)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, *envs.single_observation_space.shape)
    for _ in range(12):  # past the end of a budget day: autoreset
        obs, rew, term, trunc, _ = envs.step(envs.action_space.sample())
        assert obs.shape[0] == 3 and rew.shape == (3,) and np.all(np.isfinite(rew))
    envs.close()


def rollout(env: gym.Env, seed: int, n: int = 20) -> list[float]:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    out = []
    for _ in range(n):
        _, r, term, trunc, _ = env.step(env.action_space.sample())
        out.append(r)
        if term or trunc:
            env.reset()
    return out


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_seeded_episodes_repeat(env_id: str) -> None:
    env = gym.make(env_id, **SMALL[env_id])
    assert rollout(env, 3) == rollout(env, 3)


def test_budget_episode_terminates_and_reports_hindsight() -> None:
    env = BudgetBiddingEnv(**SMALL["adsim/BudgetBidding-v0"], hindsight=True)
    obs, _ = env.reset(seed=0)
    assert obs[:3].tolist() == [1.0, 1.0, 1.0]
    steps, term = 0, False
    while not term:
        obs, r, term, trunc, info = env.step(np.array([1.0], np.float32))  # bid 4× value
        steps += 1
        assert not trunc
    assert steps <= 8 and info["spent"] <= 5.0 + 1e-9
    assert 0 < info["pct_of_optimal"] <= 100.0 + 1e-6


def test_dual_action_lowers_bids() -> None:
    env = BudgetBiddingEnv(**SMALL["adsim/BudgetBidding-v0"], action_type="dual")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1.0], np.float32))
    assert info["bid_scale"] == pytest.approx(1 / 11)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: BudgetBiddingEnv(action_type="bid"), "action_type"),
        (lambda: BudgetBiddingEnv(agent=3), "agent must index"),
        (lambda: BudgetBiddingEnv(auction={"campaigns": []}), "campaigns: must have at least 1"),
        (lambda: AdSelectionEnv(world={"n_ads": 1}), "n_ads: must be >= 2"),
    ],
)
def test_invalid_arguments(make, message) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_step_guards_actions() -> None:
    env = AdSelectionEnv(**SMALL["adsim/AdSelection-v0"])
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be an ad"):
        env.step(7)
    benv = BudgetBiddingEnv(**SMALL["adsim/BudgetBidding-v0"])
    benv.reset(seed=0)
    with pytest.raises(ValueError, match="one finite number"):
        benv.step(np.array([np.nan]))


def test_budget_env_from_shipped_scenario(repo_root) -> None:
    path = repo_root / "scenarios" / "gsp_multislot.yaml"
    env = gym.make("adsim/BudgetBidding-v0", scenario=path)
    check_env(env.unwrapped)


def test_import_adsim_does_not_import_gymnasium() -> None:
    code = "import sys, adsim, adsim.env, adsim.config; print('gymnasium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_docstring_examples_run() -> None:
    import doctest

    import adsim.env.envs as envs_module

    result = doctest.testmod(envs_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 6 and result.failed == 0


def test_slate_env_checks_and_pays_position_weighted_clicks() -> None:
    env = gym.make("adsim/AdSelection-v0", world={"n_users": 200, "n_ads": 5}, n_slots=3).unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env)
    _, info = env.reset(seed=0)
    q = info["expected_reward"]
    _, _, _, _, info2 = env.step(np.array([2, 2, 4]))
    theta = env.position.examination
    assert info2["chosen_expected_reward"] == pytest.approx(theta[0] * q[2] + theta[2] * q[4])
    # mean slate reward matches its exact expectation within Monte Carlo error
    env.reset(seed=1)
    rewards, expected = [], []
    for _ in range(4000):
        _, r, _, _, info = env.step(np.array([0, 1, 2]))
        rewards.append(r)
        expected.append(info["chosen_expected_reward"])
    se = np.std(rewards, ddof=1) / np.sqrt(len(rewards))
    assert abs(np.mean(rewards) - np.mean(expected)) < 4 * se
    with pytest.raises(ValueError, match="3 ads in"):
        env.step(np.array([0, 1]))
