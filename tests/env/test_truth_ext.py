"""Truth extensions: position bias, conversions, and the TrainedTruth hook."""

from __future__ import annotations

import numpy as np
import pytest

from adsim.config import WorldConfig
from adsim.env.truth import PositionModel, TrainedTruth, TruthModel, ad_logits
from adsim.env.world import World


@pytest.fixture(scope="module")
def world() -> World:
    return World.from_config(WorldConfig(n_users=300, n_ads=6), np.random.default_rng(0))


def test_trained_truth_hook_drives_the_world(world: World) -> None:
    hooked = TrainedTruth(world.truth.logits, n_ads=world.n_actions)
    assert isinstance(hooked, TruthModel)
    ctx = world.sample_contexts(50, np.random.default_rng(1))
    assert np.allclose(hooked.ctr(ctx), world.truth.ctr(ctx))
    ads = np.array([4, 1])
    assert np.allclose(ad_logits(hooked, ctx, ads), ad_logits(world.truth, ctx, ads))
    w2 = World(world.population, world.catalog, hooked)  # a world whose truth is "trained"
    r1, q1 = w2.simulate(ctx, np.zeros(50, np.int64), np.random.default_rng(2))
    r0, q0 = world.simulate(ctx, np.zeros(50, np.int64), np.random.default_rng(2))
    assert np.array_equal(r1, r0) and np.allclose(q1, q0)
    bad = TrainedTruth(lambda c: np.zeros((len(c), 2)), n_ads=6)
    with pytest.raises(ValueError, match="expected"):
        bad.ctr(ctx)


def test_position_model() -> None:
    pm = PositionModel(np.array([1.0, 0.5]))
    assert pm.click_prob(np.array([0.2, 0.2, 0.2]), np.array([0, 1, -1])).tolist() == [
        0.2, 0.1, 0.0
    ]
    with pytest.raises(ValueError, match="non-increasing"):
        PositionModel(np.array([0.5, 1.0]))
