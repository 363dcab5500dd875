"""The world of a scenario, built and checked against what the scenario needs from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from adsim.errors import ConfigError
from adsim.worldmodel.build import build_world
from adsim.worldmodel.network import NetworkTruth

if TYPE_CHECKING:
    from adsim.config import Scenario
    from adsim.env.world import World

__all__ = ["scenario_world", "conversion_needs"]


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
    """:func:`~adsim.worldmodel.build.build_world` for ``scenario.world``; a trained world that
    cannot make conversions in a scenario that needs them is a ConfigError naming the field."""
    world = build_world(scenario.world, rng, no_train=no_train, progress=progress)
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
