"""The world of a scenario: a trained world model built through the build cache when the scenario
names its training config, and checked against what the scenario needs from it.

``world.truth.train: CONFIG`` (an ``adsim train`` YAML) is trained once by
:func:`adsim.worldmodel.train_world_model` into ``$ADSIM_CACHE_DIR/world_model/<key>/run``
(:func:`adsim.experiments.cache.cached_build`; ``key`` = hash of the config's content and its
``train.seed``, so ``--seed`` does not retrain it); ``no_train`` (``adsim run --no-train``) turns a
miss into a ConfigError. Every runner builds its world with :func:`scenario_world`. Importing
this module also lets :meth:`adsim.env.world.World.from_config` (and so the Gymnasium envs) build
worlds named by ``world.truth.train`` from the same cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from adsim.errors import ConfigError
from adsim.worldmodel import NetworkTruth, build_world
from adsim.worldmodel.build import register_train_resolver

if TYPE_CHECKING:
    from adsim.config import Scenario
    from adsim.env.world import World

__all__ = ["scenario_world", "cached_world_model", "conversion_needs", "CACHE_KIND"]

CACHE_KIND = "world_model"


def cached_world_model(config: str | Path, *, no_train: bool = False, progress: bool = True) -> Path:
    """The run folder of the world model trained from the training config file ``config``
    (from the build cache; trained into it on a miss unless ``no_train``)."""
    from adsim.config import load_config
    from adsim.experiments.cache import cached_build
    from adsim.models.config import RunConfig
    from adsim.worldmodel import train_world_model

    path = Path(config)
    if not path.is_file():
        raise ConfigError(
            f"world.truth.train: training config {str(path)!r} not found (paths are relative to"
            " the working directory)"
        )
    cfg = load_config(path, RunConfig)
    folder = cached_build(
        CACHE_KIND, path, cfg.train.seed,
        lambda tmp: train_world_model(cfg, tmp, progress=progress),
        what="world.truth.train", no_train=no_train,
        hint=f"train it by hand with `adsim train {path} --out FOLDER` and set world.truth.run",
    )
    return folder / "run"


def conversion_needs(scenario: Scenario) -> list[str]:
    """The scenario fields that make conversions matter (empty: clicks are enough)."""
    needs: list[str] = []
    if scenario.auction is not None:
        for i, c in enumerate(scenario.auction.campaigns):
            if c.value_per_conversion > 0:
                needs.append(f"auction.campaigns[{i}].value_per_conversion")
    if scenario.bidding is not None:
        for i, b in enumerate(scenario.bidding.candidates):
            if b.type == "cpa_pacing":
                needs.append(f"bidding.candidates[{i}] (type cpa_pacing)")
    return needs


def scenario_world(
    scenario: Scenario, rng: np.random.Generator, *, no_train: bool = False,
    progress: bool = False,
) -> World:
    """The world of ``scenario`` (:func:`adsim.worldmodel.build_world`), its world model taken
    from (or trained into) the build cache when it is named by ``world.truth.train``; a trained
    world that cannot make conversions in a scenario that needs them is a ConfigError naming the
    field."""
    truth = scenario.world.truth
    run_dir = None
    if truth.type == "trained" and truth.train is not None:
        run_dir = cached_world_model(truth.train, no_train=no_train, progress=progress)
    world = build_world(scenario.world, rng, run_dir)
    truth = world.truth
    if isinstance(truth, NetworkTruth) and not truth.has_conversions:
        needs = conversion_needs(scenario)
        if needs:
            tasks = ", ".join(truth.run.schema.tasks)
            raise ConfigError(
                f"{needs[0]} needs conversions, but the world model is a click-only run (tasks:"
                f" {tasks}); set world.truth.cvr_run to a CVR run (P(conversion | click)), or"
                " train a multi-task run with a conversion task (esmm, mmoe, ple, shared_bottom)"
                " and use it as world.truth.run / world.truth.train"
            )
    return world


# World.from_config (e.g. inside the Gymnasium envs) reaches trained worlds named by their training
# config through this cache; a run with --no-train has already failed in scenario_world on a miss.
register_train_resolver(lambda config: cached_world_model(config, progress=False))
