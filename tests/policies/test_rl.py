"""RL candidates: declared in the scenario, trained by `adsim run` into the build cache (once),
reproducible, acting on the leaderboard exactly as in their env; bidding and bandit scenarios."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from adsim.cli import main
from adsim.config import RLBanditPolicyConfig, RLPolicyConfig, Scenario, parse_config
from adsim.errors import ConfigError

pytest.importorskip("stable_baselines3")

from adsim.experiments import rl_train  # noqa: E402
from adsim.experiments.rl_train import train_bidding_candidate  # noqa: E402
from adsim.policies.rl import RLBidder, load_agent  # noqa: E402


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("ADSIM_CACHE_DIR", str(path))
    return path


def tiny(rl: dict[str, Any] | None = None, *, extra: list[dict] | None = None) -> Scenario:
    """A 12-step day of 1200 requests; ``rl``: the RL candidate's fields (tiny step budget)."""
    cand = {"name": "agent-rl", "type": "rl", "algo": "ppo", "steps": 128, "n_envs": 2,
            "eval_days": 1, **(rl or {})}
    return parse_config({
        "name": "tiny-rl", "seed": 2,
        "world": {"n_users": 200, "n_ads": 3, "n_dense": 2},
        "auction": {
            "market": {"type": "lognormal", "mu": -3.4, "sigma": 0.6},
            "campaigns": [{"name": "agent", "budget": 3.0}],
            "traffic": {"n_requests": 1200, "n_steps": 12},
        },
        "bidding": {"n_seeds": 2, "candidates": [{"type": "dual_pacing"}, cand, *(extra or [])]},
    }, Scenario)


def tiny_bandit(*cands: dict[str, Any]) -> Scenario:
    return parse_config({
        "name": "tiny-bandit-rl", "seed": 4,
        "world": {"n_users": 300, "n_ads": 3, "n_dense": 3},
        "evaluation": {"n_rounds": 2000, "n_train_rounds": 1000, "estimators": ["ips", "dr"]},
        "candidates": [{"type": "uniform"}, *cands],
    }, Scenario)


def rl_cfg(scn: Scenario) -> Any:
    assert scn.bidding is not None
    return next(c for c in scn.bidding.candidates if c.type == "rl")


@pytest.mark.parametrize(
    ("action_type", "a", "lam_prev", "expected"),
    [
        ("scale", 0.0, 5.0, 0.0),  # truthful
        ("scale", 1.0, 0.0, 1 / 16 - 1),  # bid 16 × value
        ("dual", 1.0, 0.0, 30.0),
        ("log_dual", -1.0, 9.0, 0.0),
        ("log_dual", 0.0, 0.0, np.sqrt(31.0) - 1),
        ("dual_step", 0.0, 9.0, 9.0),  # keep λ
        ("dual_step", 1.0, 9.0, 10 * 31.0**0.1 - 1),  # (1+λ) × 31^0.1
        ("dual_step", -1.0, 0.0, 0.0),  # clipped at λ = 0
        ("dual_step", 1.0, 30.0, 30.0),  # clipped at max_dual
    ],
)
def test_bid_action_map(action_type: str, a: float, lam_prev: float, expected: float) -> None:
    from adsim.env.envs import BidActionMap

    amap = BidActionMap(action_type, max_scale=16.0, max_dual=30.0, max_step=0.1)
    assert amap(a, lam_prev) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_pacing_observation_reads_pace_and_spend_against_target() -> None:
    from adsim.env.envs import PacingObservation
    from adsim.policies.base import BidderState, BidOutcome

    obs = PacingObservation(max_dual=30.0, lambda0=1.0)
    st = BidderState(step=2, n_steps=4, budget=100.0, spent=50.0, traffic_share=0.25,
                     elapsed_share=0.5)
    x = obs.observe(st)  # on the ideal line: pace 1 → 0.5
    assert x[:4].tolist() == pytest.approx([0.5, 0.5, 0.5, 0.5])
    assert x[8] == pytest.approx(np.log(2.0) / np.log(31.0))
    out = BidOutcome(step=2, n_requests=10, bids=10, impressions=4, clicks=1, conversions=0,
                     cost=50.0, value=1.0, expected_value=100.0, won=np.zeros(10, bool),
                     price=np.zeros(10))
    obs.update(out, lam=3.0)  # spent 2× the target of 25, won 4 of 10, value/cost − 1 = 1
    st2 = BidderState(step=3, n_steps=4, budget=100.0, spent=100.0, traffic_share=0.25,
                      elapsed_share=0.75)
    x = obs.observe(st2)
    assert x[4] == pytest.approx(2 / 3) and x[5] == pytest.approx(0.4)
    assert x[7] == pytest.approx(np.log(2.0) / np.log(31.0))
    assert x[8] == pytest.approx(np.log(4.0) / np.log(31.0))
    assert x[1] == 0.0 and x[3] == 0.0  # the budget is spent: nothing left for the last quarter


@pytest.mark.parametrize("name", ["budget_pacing", "rl_bidding"])
def test_shipped_rl_envs_pass_the_gymnasium_checker(repo_root: Path, name: str) -> None:
    from gymnasium.utils.env_checker import check_env

    from adsim.config import load_scenario
    from adsim.policies.rl import make_bidding_env

    scn = load_scenario(repo_root / "scenarios" / f"{name}.yaml")
    for cfg in (c for c in scn.bidding.candidates if c.type == "rl"):  # type: ignore[union-attr]
        check_env(make_bidding_env(scn, cfg).unwrapped, skip_render_check=True)


@pytest.mark.parametrize(
    ("cls", "algo", "message"),
    [
        (RLPolicyConfig, "bogus", "unknown RL algorithm 'bogus'; stable-baselines3 has a2c, ddpg, dqn, ppo, sac, td3"),
        (RLPolicyConfig, "HER", "unknown RL algorithm 'HER'"),
        (RLBanditPolicyConfig, "sac", "'sac' needs a continuous action; choosing an ad is discrete: use one of a2c, dqn, ppo"),
        (RLBanditPolicyConfig, "td3", "use one of a2c, dqn, ppo"),
    ],
)
def test_algo_names_are_validated(cls: Any, algo: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls.model_validate({"type": "rl", "algo": algo})


def test_algo_names_are_case_insensitive_and_errors_name_the_field(tmp_path: Path) -> None:
    assert RLPolicyConfig.model_validate({"type": "rl", "algo": " SAC"}).algo == "sac"
    scn = tiny().model_dump(mode="json")
    scn["bidding"]["candidates"][1]["algo"] = "Rainbow"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scn))
    assert main(["validate", str(path)]) == 2


def test_training_is_reproducible_with_a_seed(tmp_path: Path) -> None:
    import torch

    scn = tiny()
    cfg = rl_cfg(scn)
    a = train_bidding_candidate(scn, cfg, tmp_path / "a", seed=3)
    b = train_bidding_candidate(scn, cfg, tmp_path / "b", seed=3)
    c = train_bidding_candidate(scn, cfg, tmp_path / "c", seed=4)
    sa, sb, sc = (torch.load(r.path, weights_only=True) for r in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.curve.equals(b.curve)
    assert list(a.curve.columns) == ["steps", "episodes", "mean_episode_reward", "eval_score"]
    assert np.isfinite(a.curve["eval_score"]).all() and (a.curve["eval_score"] > 0).all()


@pytest.mark.parametrize("algo", ["a2c", "sac", "td3", "ddpg", "dqn"])
def test_every_sb3_algorithm_trains_loads_and_bids(tmp_path: Path, algo: str) -> None:
    scn = tiny({"algo": algo, "steps": 96, "eval_days": 0})
    res = train_bidding_candidate(scn, rl_cfg(scn), tmp_path)
    bidder = RLBidder.load(res.path)
    assert bidder.meta["algo"] == algo
    assert (bidder.meta["n_actions"] is not None) == (algo == "dqn")


def test_leaderboard_bidder_acts_as_the_agent_in_its_env(tmp_path: Path) -> None:
    """Same day, same greedy agent: RLBidder on the leaderboard sets the λ sequence the agent
    sets inside adsim/BudgetBidding-v0 (same observation, same action map)."""
    from adsim.experiments.bidding import run_day
    from adsim.policies.rl import make_bidding_env

    scn = tiny()
    cfg = rl_cfg(scn)
    res = train_bidding_candidate(scn, cfg, tmp_path)
    policy, _ = load_agent(res.path, "adsim/BudgetBidding-v0")
    env = make_bidding_env(scn, cfg)
    obs, _ = env.reset(seed=11)
    lams, done = [], False
    while not done:
        act, _ = policy.predict(obs, deterministic=True)
        obs, _, done, _, info = env.step(act)
        lams.append(info["lambda"])
    bidder = RLBidder.load(res.path)
    run_day(env.auction, [bidder], np.random.default_rng(11))
    assert len(set(np.round(lams, 6))) > 1  # the agent moves λ
    np.testing.assert_allclose(bidder.trace["lambda"], lams, rtol=1e-12)


def test_adsim_run_trains_once_then_reuses_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path
) -> None:
    from adsim.experiments.runner import run_scenario

    calls: list[str] = []
    real = rl_train.train_bidding_candidate

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append("train")
        return real(*args, **kwargs)

    monkeypatch.setattr(rl_train, "train_bidding_candidate", counting)
    scn = tiny()
    first = run_scenario(scn, tmp_path / "a", progress=False)
    second = run_scenario(scn, tmp_path / "b", progress=False, no_train=True)
    assert calls == ["train"]
    assert len(list((cache_dir / "rl").iterdir())) >= 1
    for name in ("results.json", "leaderboard.csv", "rl_training.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert {p.name for p in first.files} >= {"rl_training.csv", "rl_training.png"}
    row = second.leaderboard.set_index("policy").loc["agent-rl"]
    assert np.isfinite(row["pct_optimal"]) and row["spend"] <= 3.0 + 1e-9
    # another step budget is another agent
    other = tiny({"steps": 64})
    with pytest.raises(ConfigError, match="not built yet"):
        run_scenario(other, tmp_path / "c", progress=False, no_train=True)


def test_no_train_is_exit_2_with_the_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny().model_dump(mode="json")))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--no-train", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bidding candidate 'agent-rl'" in err and "--no-train" in err and "model: path" in err
    assert "Traceback" not in err


def test_train_rl_command_with_progress_bar_then_model_path(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """`adsim train-rl` as docs/policies.md shows it (progress bar on), then `model: path`."""
    from adsim.experiments.runner import run_scenario

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny().model_dump(mode="json")))
    out = tmp_path / "m.pt"
    assert main(["train-rl", str(path), "--steps", "64", "--out", str(out)]) == 0
    captured = capfd.readouterr()
    assert "64/64" in captured.out + captured.err  # SB3's progress bar (rich) ran
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert out.with_suffix(".training.csv").is_file()
    scn = tiny({"model": str(out)})
    run = run_scenario(scn, tmp_path / "run", progress=False, no_train=True)  # nothing to train
    assert "agent-rl" in set(run.leaderboard["policy"])
    assert main(["train-rl", str(path), "--steps", "0"]) == 2
    assert main(["train-rl", str(path), "--algo", "rainbow", "--steps", "8"]) == 2
    assert main(["train-rl", str(path), "--candidate", "nope", "--steps", "8"]) == 2


def test_legacy_bidding_rl_section_still_trains(tmp_path: Path) -> None:
    scn = tiny().model_dump(mode="json")
    scn["bidding"]["candidates"] = [{"type": "dual_pacing"}]
    scn["bidding"]["rl"] = {"algo": "dqn", "total_timesteps": 64, "out": str(tmp_path / "d.pt")}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scn))
    assert main(["train-rl", str(path), "--quiet"]) == 0
    assert RLBidder.load(tmp_path / "d.pt").meta["algo"] == "dqn"


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_rl_candidate_in_a_bandit_scenario(tmp_path: Path, algo: str) -> None:
    """An agent trained on adsim/AdSelection-v0 is scored by the exact oracle and by OPE."""
    from adsim.experiments.runner import run_scenario
    from adsim.policies.rl import RLBanditPolicy

    scn = tiny_bandit({"name": f"{algo}-ads", "type": "rl", "algo": algo, "steps": 400,
                       "n_envs": 2})
    run = run_scenario(scn, tmp_path / "out", progress=False)
    board = run.leaderboard.set_index("policy")
    assert f"{algo}-ads" in board.index
    assert (tmp_path / "out" / "rl_training.csv").is_file()
    row = next(p for p in run.results["policies"] if p["name"] == f"{algo}-ads")  # type: ignore[union-attr]
    assert 0.0 < row["true_value"] < 1.0
    agent = rl_train.ensure_rl_bandit(scn, _world(scn), scn.candidates[1], no_train=True)
    pol = RLBanditPolicy.load(agent.path)
    w = _world(scn)
    pi = pol.action_dist(w.population.users)
    np.testing.assert_allclose(pi.sum(axis=1), 1.0)
    if algo == "dqn":
        assert set(np.unique(pi)) <= {0.0, 1.0}


def _world(scn: Scenario) -> Any:
    from adsim.env.world import World

    return World.from_config(scn.world, np.random.default_rng(np.random.SeedSequence(scn.seed).spawn(6)[0]))


def test_bandit_rl_cannot_be_the_logging_policy() -> None:
    with pytest.raises(ConfigError, match="cannot be the logging policy"):
        parse_config({"name": "x", "logging_policy": {"type": "rl"},
                      "candidates": [{"type": "uniform"}]}, Scenario)


def test_missing_or_old_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        RLBidder.load(tmp_path / "nope.pt")
    (tmp_path / "old.pt").write_bytes(b"")
    (tmp_path / "old.json").write_text('{"format": "adsim-rl-bidder/1"}')
    with pytest.raises(ConfigError, match="retrain"):
        RLBidder.load(tmp_path / "old.pt")


@pytest.mark.slow
def test_ppo_reaches_90_percent_of_dual_pacing_on_budget_pacing(
    repo_root: Path, tmp_path: Path
) -> None:
    """The shipped scenario, as `adsim run scenarios/budget_pacing.yaml` runs it (~2-5 min)."""
    from adsim.config import load_scenario
    from adsim.experiments.runner import run_scenario

    run = run_scenario(load_scenario(repo_root / "scenarios" / "budget_pacing.yaml"),
                       tmp_path / "out", progress=False)
    board = run.leaderboard.set_index("policy")
    assert board.loc["ppo", "value"] >= 0.9 * board.loc["dual-pacing", "value"], board[["value", "pct_optimal"]]
