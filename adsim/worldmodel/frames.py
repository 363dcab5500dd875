"""A world-model log as a CTR training table in the run's own column names."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from adsim.worldmodel.network import NetworkTruth

if TYPE_CHECKING:
    from adsim.env.logs import BanditLog
    from adsim.env.world import World

__all__ = ["impressions_frame"]


def impressions_frame(world: World, log: BanditLog) -> pd.DataFrame:
    """A logged world-model log as a CTR training table in the run's own column names.

    Columns: the user's dense and sparse columns, the shown ad's ``ad_fields`` columns, ``click``
    (the logged reward > 0) and ``p_click`` (the true click probability of the shown ad).
    """
    truth = world.truth
    if not isinstance(truth, NetworkTruth) or log.context is None or log.expected_reward is None:
        raise ValueError("impressions_frame needs a trained world and a log with contexts and q")
    ctx = log.context
    cols = truth.user_columns
    out: dict[str, np.ndarray] = {"user_id": ctx["user_id"].to_numpy()}
    for i, c in enumerate(cols["dense"]):
        out[c] = ctx[f"x{i}"].to_numpy()
    for c in cols["sparse"]:
        out[c] = ctx[c].to_numpy()
    ads = truth.ad_table.iloc[log.action].reset_index(drop=True)
    for c in ads.columns:
        out[c] = ads[c].to_numpy()
    out["click"] = (log.reward > 0).astype(np.int64)
    q = log.expected_reward.reshape(log.n_rounds, -1)
    p = q[np.arange(log.n_rounds), log.action]
    if world.reward == "value":
        p = p / world.catalog.values[log.action]
    out["p_click"] = p
    return pd.DataFrame(out)
