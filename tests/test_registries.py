"""Each registry is the single source of its names: what a config accepts is what the registry has.

* estimators: the scenario type :data:`adsim.config.EstimatorName` (``evaluation.estimators``)
  lists exactly the single-slot estimators of :data:`adsim.estimators.registry.BANDIT_ESTIMATORS`
  (the config layer cannot import the estimators, so this test is what ties them);
* models: every file of ``adsim/models/zoo`` registers the names :data:`MODULES` gives it, and
  ``@register`` refuses a name that is not in :data:`MODULES`;
* bidders: one vocabulary, :data:`adsim.config.BidderPolicyConfig`, for a campaign's ``bidder``
  and for ``bidding.candidates``, and one builder that builds every type of it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, get_args, get_origin

import pytest

from adsim.config import AuctionConfig, BidderPolicyConfig, CampaignConfig, EstimatorName

ZOO = Path(__file__).resolve().parents[1] / "adsim" / "models" / "zoo"


def _union_types(t: object) -> dict[str, type]:
    """``type`` tag → config class of a (possibly Annotated) discriminated union."""
    if get_origin(t) is Annotated:
        return _union_types(get_args(t)[0])
    return {get_args(c.model_fields["type"].annotation)[0]: c for c in get_args(t)}


def test_scenario_estimator_names_are_the_registry():
    from adsim.estimators.registry import BANDIT_ESTIMATORS, ESTIMATORS

    assert sorted(get_args(EstimatorName)) == sorted(BANDIT_ESTIMATORS)
    assert set(BANDIT_ESTIMATORS) <= set(ESTIMATORS)
    assert all(cls.name == name for name, cls in ESTIMATORS.items())


def test_every_zoo_module_registers_the_names_modules_lists():
    from adsim.models import zoo

    files = {f"adsim.models.zoo.{p.stem}" for p in ZOO.glob("*.py") if not p.stem.startswith("_")}
    files.discard("adsim.models.zoo.__init__")
    assert files == set(zoo.MODULES.values())
    for module in sorted(files):
        importlib.import_module(module)
    assert {n: cls.__module__ for n, (cls, _) in zoo._REGISTRY.items()} == zoo.MODULES


def test_register_refuses_a_name_that_modules_does_not_list():
    from adsim.models import zoo

    with pytest.raises(RuntimeError, match="add it to adsim.models.zoo.MODULES"):
        zoo.register("not_listed", object)(type("M", (), {}))
    assert "not_listed" not in zoo._REGISTRY


def test_training_config_accepts_exactly_the_registered_models():
    from pydantic import ValidationError

    from adsim.models.config import ModelSection
    from adsim.models.zoo import MODULES

    for name in MODULES:
        assert ModelSection(name=name).name == name
    with pytest.raises(ValidationError, match="unknown model 'deepfmm'; available: autoint"):
        ModelSection(name="deepfmm")


def test_one_bidder_vocabulary_and_one_builder(tmp_path):
    """A campaign's bidder and a bidding candidate take the same types, and
    make_bidding_policy builds each (rl: given a model file, so it is checked by name only)."""
    from adsim.policies.factory import make_bidding_policy

    types = _union_types(BidderPolicyConfig)
    campaign_types = _union_types(CampaignConfig.model_fields["bidder"].annotation)
    assert campaign_types == types
    assert {"truthful", "constant_pacing", "fixed", "dual_pacing", "rl"} <= set(types)
    auction = AuctionConfig(campaigns=[{"name": "c"}])
    assert auction.campaigns[0].bidder.type == "truthful"  # the default bidder
    required = {"cpa_pacing": {"target_cpa": 5.0}}
    for name, cls in types.items():
        if name == "rl":
            continue
        cfg = cls(type=name, **required.get(name, {}))
        pol = make_bidding_policy(cfg, auction, dim=4, seed=0)
        assert pol.name == name


SMALL_AUCTION = """\
name: vocabulary
seed: 3
world: {n_users: 200, n_ads: 4}
auction:
  campaigns:
    - {name: paced, budget: 2.0, bidder: {type: dual_pacing, step_size: 0.5}}
    - {name: fixed, bidder: {type: fixed, amount: 0.05}}
  traffic: {n_requests: 2000, n_steps: 8}
"""


def test_a_campaign_may_use_any_bidder_of_the_vocabulary(tmp_path, monkeypatch):
    """The auction runner builds a campaign's pacing bidder (once only the three baselines could
    be); the Gymnasium env builds the baselines itself and any type with ``make_bidder``."""
    from adsim.config import load_scenario
    from adsim.env.envs import BudgetBiddingEnv
    from adsim.experiments.auction_runner import run_auction_scenario
    from adsim.policies.bidding import DualPacingBidder
    from adsim.policies.factory import make_bidding_policy

    monkeypatch.setenv("ADSIM_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "s.yaml"
    path.write_text(SMALL_AUCTION)
    scn = load_scenario(path)
    res = run_auction_scenario(scn, tmp_path / "out", progress=False)
    board = res.campaigns.set_index("campaign")
    assert board.loc["paced", "bidder"] == "dual_pacing"
    assert 0 < board.loc["paced", "spend"] <= 2.0 + 1e-9  # a budget-respecting pacer that bid
    with pytest.raises(ValueError, match="build it with adsim.policies.factory.make_bidding_policy"):
        BudgetBiddingEnv(scenario=scn, agent=1)
    env = BudgetBiddingEnv(scenario=scn, agent=1, make_bidder=make_bidding_policy)
    assert isinstance(env.bidders[0], DualPacingBidder)
