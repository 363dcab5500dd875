"""Named bidding policies the prediction service can apply to its calibrated scores.

For an impression with click probability ``pCTR``, post-click conversion probability ``pCVR`` and
the advertiser's value ``v`` (per click or per conversion):

============== ============================== ==================================================
policy         bid                            note
============== ============================== ==================================================
truthful_cpc   ``v · pCTR``                   expected value of the impression; the dominant
                                              strategy in a second-price auction (Vickrey 1961)
truthful_cpa   ``v · pCTR · pCVR``            value per conversion (needs a two-task model)
shaded_cpc     ``shading · v · pCTR``         a first-price bid shaded by a constant factor
============== ============================== ==================================================

Bids are capped at ``max_bid`` when given. Vectorised over the candidates of a request.
"""

from __future__ import annotations

import numpy as np

from adsim.errors import DataError

__all__ = ["POLICIES", "compute_bids"]

POLICIES = ("truthful_cpc", "truthful_cpa", "shaded_cpc")


def compute_bids(policy: str, value: np.ndarray, pctr: np.ndarray, pcvr: np.ndarray | None,
                 shading: float = 1.0, max_bid: float | None = None) -> np.ndarray:
    """Bids ``(n,)`` of ``policy`` for values ``v`` and calibrated probabilities (see the table)."""
    if policy == "truthful_cpc":
        bid = value * pctr
    elif policy == "truthful_cpa":
        if pcvr is None:
            raise DataError("bidding.policy 'truthful_cpa' needs pCVR, but this model predicts one task"
                            " (click); use 'truthful_cpc' or serve a two-task model")
        bid = value * pctr * pcvr
    elif policy == "shaded_cpc":
        bid = shading * value * pctr
    else:  # guarded by the request schema
        raise DataError(f"unknown bidding policy {policy!r}; use one of {', '.join(POLICIES)}")
    return np.minimum(bid, max_bid) if max_bid is not None else bid
