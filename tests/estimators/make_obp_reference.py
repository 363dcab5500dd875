"""Regenerate ``tests/estimators/data/obp_reference.json`` with Open Bandit Pipeline 0.5.7.

obp is not an adsim dependency (it no longer installs cleanly on current Python). The fixture holds
the random inputs *and* obp's outputs, so the default test suite checks adsim against obp to 1e-12
without obp installed. To regenerate (Python 3.11, a scratch venv outside the repository):

    python3.11 -m venv /tmp/obp-venv
    /tmp/obp-venv/bin/pip install torch==2.13.0
    /tmp/obp-venv/bin/pip install --no-deps --ignore-requires-python obp==0.5.7
    /tmp/obp-venv/bin/pip install 'numpy<2' scipy scikit-learn pandas matplotlib seaborn tqdm \
        pyyaml mypy-extensions
    /tmp/obp-venv/bin/python tests/estimators/make_obp_reference.py

(``pip install obp`` itself fails: its pinned PyYAML 6.0.0 does not build on this Python.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import obp
from obp.ope import (
    DirectMethod,
    DoublyRobust,
    DoublyRobustWithShrinkage,
    DoublyRobustWithShrinkageTuning,
    InverseProbabilityWeighting,
    SelfNormalizedDoublyRobust,
    SelfNormalizedInverseProbabilityWeighting,
    SlateIndependentIPS,
    SlateRewardInteractionIPS,
    SwitchDoublyRobust,
    SwitchDoublyRobustTuning,
)

OUT = Path(__file__).resolve().parent / "data" / "obp_reference.json"
SWITCH_LAMBDAS = [0.0, 0.5, 1.0, 2.0, 5.0, float("inf")]
DROS_LAMBDAS = [0.0, 0.1, 1.0, 10.0, 100.0, float("inf")]
SLOPE_SWITCH = [float("inf"), 100.0, 10.0, 5.0, 2.0, 1.0, 0.5]
SLOPE_DROS = [0.1, 1.0, 10.0, 100.0, 1000.0, float("inf")]


def _num(x: float) -> float | str:
    return "inf" if np.isinf(x) else float(x)


def bandit_case(seed: int, n: int, k: int, n_pos: int, with_position: bool) -> dict:
    rng = np.random.default_rng(seed)
    pi0 = rng.dirichlet(np.ones(k) * 0.7, size=(n, n_pos)).transpose(0, 2, 1)  # (n, K, P)
    pi0 = np.clip(pi0, 1e-3, None)
    pi0 /= pi0.sum(axis=1, keepdims=True)
    pi_e = rng.dirichlet(np.ones(k) * 0.5, size=(n, n_pos)).transpose(0, 2, 1)
    position = rng.integers(0, n_pos, size=n) if with_position else np.zeros(n, dtype=int)
    u = rng.random(n)
    cdf = np.cumsum(pi0[np.arange(n), :, position], axis=1)
    action = np.minimum((cdf < u[:, None]).sum(axis=1), k - 1)
    pscore = pi0[np.arange(n), action, position]
    q_hat = rng.uniform(0.0, 0.6, size=(n, k, n_pos))
    reward = (rng.random(n) < 0.3).astype(float) * rng.uniform(0.5, 2.0, size=n)
    kw = dict(reward=reward, action=action, pscore=pscore, action_dist=pi_e,
              position=position if with_position else None)
    kwq = dict(kw, estimated_rewards_by_reg_model=q_hat)
    values: dict[str, float] = {}
    values["ips"] = InverseProbabilityWeighting().estimate_policy_value(**kw)
    values["ips_clip3"] = InverseProbabilityWeighting(lambda_=3.0).estimate_policy_value(**kw)
    values["snips"] = SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**kw)
    values["dm"] = DirectMethod().estimate_policy_value(**kwq)
    values["dr"] = DoublyRobust().estimate_policy_value(**kwq)
    values["dr_clip3"] = DoublyRobust(lambda_=3.0).estimate_policy_value(**kwq)
    values["sndr"] = SelfNormalizedDoublyRobust().estimate_policy_value(**kwq)
    for lam in SWITCH_LAMBDAS:
        values[f"switch_dr@{lam}"] = SwitchDoublyRobust(lambda_=lam).estimate_policy_value(**kwq)
    for lam in DROS_LAMBDAS:
        values[f"dr_os@{lam}"] = DoublyRobustWithShrinkage(lambda_=lam).estimate_policy_value(**kwq)
    sw = SwitchDoublyRobustTuning(lambdas=list(SLOPE_SWITCH), tuning_method="slope")
    values["switch_dr_slope"] = sw.estimate_policy_value(**kwq)
    ds = DoublyRobustWithShrinkageTuning(lambdas=list(SLOPE_DROS), tuning_method="slope")
    values["dr_os_slope"] = ds.estimate_policy_value(**kwq)
    return {
        "inputs": {
            "action": action.tolist(), "reward": reward.tolist(), "pscore": pscore.tolist(),
            "position": position.tolist() if with_position else None,
            "action_dist": pi_e.tolist(), "q_hat": q_hat.tolist(), "n_actions": k,
        },
        "values": {k_: float(v) for k_, v in values.items()},
        "selected": {"switch_dr_slope": _num(sw.best_hyperparam),
                     "dr_os_slope": _num(ds.best_hyperparam)},
    }


def slate_case(seed: int, n_slates: int, k: int, length: int) -> dict:
    rng = np.random.default_rng(seed)
    n = n_slates * length
    pi0 = rng.dirichlet(np.ones(k), size=(n_slates, length)).transpose(0, 2, 1)  # (S, K, L)
    pi_e = rng.dirichlet(np.ones(k) * 0.5, size=(n_slates, length)).transpose(0, 2, 1)
    slate_id = np.repeat(np.arange(n_slates), length)
    position = np.tile(np.arange(length), n_slates)
    u = rng.random(n)
    cdf = np.cumsum(pi0[slate_id, :, position], axis=1)
    action = np.minimum((cdf < u[:, None]).sum(axis=1), k - 1)
    pscore = pi0[slate_id, action, position]
    pe = pi_e[slate_id, action, position]
    reward = (rng.random(n) < 0.4 / (1 + position)).astype(float)
    casc0 = np.cumprod(pscore.reshape(n_slates, length), axis=1).ravel()
    casce = np.cumprod(pe.reshape(n_slates, length), axis=1).ravel()
    iips = SlateIndependentIPS(len_list=length).estimate_policy_value(
        slate_id=slate_id, reward=reward, position=position, pscore_item_position=pscore,
        evaluation_policy_pscore_item_position=pe)
    rips = SlateRewardInteractionIPS(len_list=length).estimate_policy_value(
        slate_id=slate_id, reward=reward, position=position, pscore_cascade=casc0,
        evaluation_policy_pscore_cascade=casce)
    return {
        "inputs": {
            "action": action.tolist(), "reward": reward.tolist(), "pscore": pscore.tolist(),
            "position": position.tolist(), "n_actions": k,
            "action_dist": pi_e[slate_id].tolist(),  # (n_rows, K, L)
        },
        "values": {"slate_iips": float(iips), "slate_rips": float(rips)},
    }


def bandit_feedback_case(seed: int, n: int, k: int) -> dict:
    """obp's own synthetic ``bandit_feedback`` dict, for BanditLog.from_obp."""
    from obp.dataset import SyntheticBanditDataset

    ds = SyntheticBanditDataset(n_actions=k, dim_context=3, reward_type="binary",
                                random_state=seed)
    fb = ds.obtain_batch_bandit_feedback(n_rounds=n)
    rng = np.random.default_rng(seed)
    pi_e = rng.dirichlet(np.ones(k), size=n)[:, :, None]
    kw = dict(reward=fb["reward"], action=fb["action"], pscore=fb["pscore"], action_dist=pi_e,
              position=fb["position"])
    q = fb["expected_reward"][:, :, None]
    values = {
        "ips": InverseProbabilityWeighting().estimate_policy_value(**kw),
        "snips": SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**kw),
        "dr": DoublyRobust().estimate_policy_value(**kw, estimated_rewards_by_reg_model=q),
        "ground_truth": ds.calc_ground_truth_policy_value(
            expected_reward=fb["expected_reward"], action_dist=pi_e),
    }
    return {
        "bandit_feedback": {
            "n_rounds": int(fb["n_rounds"]), "n_actions": int(fb["n_actions"]),
            "context": fb["context"].tolist(), "action": fb["action"].tolist(),
            "reward": fb["reward"].tolist(), "pscore": fb["pscore"].tolist(),
            "position": None if fb["position"] is None else fb["position"].tolist(),
            "expected_reward": fb["expected_reward"].tolist(),
        },
        "action_dist": pi_e[:, :, 0].tolist(),
        "values": {k_: float(v) for k_, v in values.items()},
    }


def main() -> None:
    ref = {
        "obp_version": obp.__version__,
        "python": sys.version.split()[0],
        "command": "/tmp/obp-venv/bin/python tests/estimators/make_obp_reference.py",
        "lambdas": {"switch_dr": SWITCH_LAMBDAS, "dr_os": DROS_LAMBDAS,
                    "switch_dr_slope": SLOPE_SWITCH, "dr_os_slope": SLOPE_DROS},
        "bandit": [bandit_case(1, 250, 5, 3, True), bandit_case(2, 200, 4, 1, False),
                   bandit_case(3, 500, 8, 1, False)],
        "slate": [slate_case(4, 100, 6, 3)],
        "obp_feedback": bandit_feedback_case(5, 300, 5),
    }
    text = json.dumps(ref, indent=None, allow_nan=True).replace("Infinity", '"inf"')
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text + "\n")
    print(f"wrote {OUT} ({len(text) / 1e6:.2f} MB) with obp {obp.__version__}")


if __name__ == "__main__":
    main()
