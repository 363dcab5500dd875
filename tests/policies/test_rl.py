"""RL bidders: SB3 agents train on the scenario's env, reproducibly, and bid on the leaderboard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adsim.cli import main
from adsim.config import Scenario, parse_config
from adsim.errors import ConfigError

pytest.importorskip("stable_baselines3")

from adsim.policies.rl import RLBidder, bidder_observation, make_bidding_env, train_rl  # noqa: E402


def tiny(tmp_path: Path, candidates: list[dict] | None = None, algo: str = "ppo") -> Scenario:
    return parse_config({
        "name": "tiny-rl", "seed": 2,
        "world": {"n_users": 200, "n_ads": 3, "n_dense": 2},
        "auction": {
            "market": {"type": "lognormal", "mu": -3.4, "sigma": 0.6},
            "campaigns": [{"name": "agent", "budget": 3.0}],
            "traffic": {"n_requests": 1200, "n_steps": 12},
        },
        "bidding": {
            "n_seeds": 2,
            "rl": {"algo": algo, "total_timesteps": 128, "action_type": "dual",
                   "out": str(tmp_path / f"{algo}.pt")},
            "candidates": candidates or [{"type": "dual_pacing"}],
        },
    }, Scenario)


def test_training_is_reproducible_with_a_seed(tmp_path: Path) -> None:
    import torch

    a = train_rl(tiny(tmp_path), out=tmp_path / "a.pt", seed=3)
    b = train_rl(tiny(tmp_path), out=tmp_path / "b.pt", seed=3)
    c = train_rl(tiny(tmp_path), out=tmp_path / "c.pt", seed=4)
    sa, sb, sc = (torch.load(r.path, weights_only=True) for r in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.path.with_suffix(".json").is_file()


@pytest.mark.parametrize("algo", ["sac", "dqn"])
def test_sac_and_dqn_train_and_load(tmp_path: Path, algo: str) -> None:
    res = train_rl(tiny(tmp_path, algo=algo), total_timesteps=100)
    bidder = RLBidder.load(res.path)
    assert bidder.meta["algo"] == algo


def test_observation_matches_the_env(tmp_path: Path) -> None:
    scn = tiny(tmp_path)
    assert scn.bidding is not None
    env = make_bidding_env(scn, scn.bidding.rl)
    obs, _ = env.reset(seed=0)
    for a in (-1.0, 0.3, 1.0, 0.0):
        assert np.allclose(obs, bidder_observation(env.auction.state(env.agent)))
        obs, *_ = env.step(np.array([a], np.float32))


def test_rl_agent_on_the_bidding_leaderboard(tmp_path: Path) -> None:
    from adsim.experiments.bidding import METRICS, run_bidding

    res = train_rl(tiny(tmp_path), out=tmp_path / "agent.pt")
    scn = tiny(tmp_path, [{"type": "dual_pacing"}, {"name": "ppo", "type": "rl", "model": str(res.path)}])
    run = run_bidding(scn, tmp_path / "out", progress=False)
    row = run.leaderboard.set_index("policy").loc["ppo"]
    for m in ("value", "spend", "budget_use", "pct_optimal", "regret", "hindsight_value"):
        assert np.isfinite(row[m]), m
    assert set(METRICS) <= set(run.leaderboard.columns)
    assert row["spend"] <= 3.0 + 1e-9


def test_train_rl_command(tmp_path: Path) -> None:
    import yaml

    scn = tiny(tmp_path)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scn.model_dump(mode="json")))
    out = tmp_path / "m.pt"
    assert main(["train-rl", str(path), "--steps", "64", "--out", str(out), "--quiet"]) == 0
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert main(["train-rl", str(path), "--steps", "0"]) == 2


def test_missing_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="train-rl"):
        RLBidder.load(tmp_path / "nope.pt")
