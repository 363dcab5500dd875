"""The world-model bridge (layer 3): a trained CTR/CVR run as the truth of a simulated world.

The only package that imports both the simulator core (:mod:`adsim.env`) and the CTR models
(:mod:`adsim.models`); neither of those imports the other. Importing it registers the trained
world with :meth:`adsim.env.world.World.from_config` (``world.truth.type: trained``).

* :mod:`adsim.worldmodel.network` — :class:`NetworkTruth`, the network's calibrated pCTR / pCVR;
* :mod:`adsim.worldmodel.build` — run folder → world (:func:`build_world`, :func:`trained_world`);
  a run config → a self-contained world-model run folder (:func:`train_world_model`, which the
  experiments layer's build cache runs: :mod:`adsim.experiments.world_models`);
* :mod:`adsim.worldmodel.features` — the users' feature distribution saved in the run folder;
* :mod:`adsim.worldmodel.frames` — a world-model log as a CTR training table.
"""

from __future__ import annotations

from adsim.env.world import register_truth_builder
from adsim.worldmodel.build import build_world, resolve_run, train_world_model, trained_world
from adsim.worldmodel.features import load_feature_distribution, save_feature_distribution
from adsim.worldmodel.frames import impressions_frame
from adsim.worldmodel.network import FixedPopulation, NetworkTruth

__all__ = [
    "FixedPopulation",
    "NetworkTruth",
    "build_world",
    "impressions_frame",
    "load_feature_distribution",
    "resolve_run",
    "save_feature_distribution",
    "train_world_model",
    "trained_world",
]

register_truth_builder("trained", lambda cfg, rng: build_world(cfg, rng))
