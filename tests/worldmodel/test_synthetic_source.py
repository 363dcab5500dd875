"""The models' synthetic CTR source (numpy only, no simulator import) draws exactly the users
and probabilities of the simulator's parametric world of the same size and seed."""

from __future__ import annotations

import numpy as np

from adsim.config import ParametricTruthConfig, WorldConfig, parse_config


def test_synthetic_source_is_the_parametric_world():
    from adsim.env.world import World
    from adsim.models.config import SyntheticSource
    from adsim.models.readers import generate_synthetic

    src = parse_config({"type": "synthetic", "n_rows": 3000, "n_users": 400, "n_ads": 7,
                        "n_dense": 3, "base_ctr": 0.1, "effect_scale": 1.3, "seed": 9},
                       SyntheticSource)
    df, defaults = generate_synthetic(src)
    rng = np.random.default_rng(src.seed)
    world = World.from_config(WorldConfig(
        n_users=src.n_users, n_ads=src.n_ads, n_dense=src.n_dense, sparse_fields=src.sparse_fields,
        truth=ParametricTruthConfig(base_ctr=src.base_ctr, effect_scale=src.effect_scale,
                                    ad_bias_sd=src.ad_bias_sd, sparse_effect_sd=src.sparse_effect_sd),
    ), rng)
    ctx = world.population.sample(src.n_rows, rng)
    ads = rng.integers(0, src.n_ads, size=src.n_rows)
    np.testing.assert_array_equal(df["user_id"], ctx.user_id)
    np.testing.assert_array_equal(df["ad_id"], ads)
    np.testing.assert_allclose(df["p_click"], world.truth.ctr(ctx)[np.arange(src.n_rows), ads],
                               rtol=1e-12)
    np.testing.assert_array_equal(df[list(world.spec.sparse_names)].to_numpy(), ctx.sparse)
    np.testing.assert_array_equal(df["click"], rng.random(src.n_rows) < df["p_click"])
    assert defaults.truth_column == "p_click" and defaults.labels == ("click",)
