"""Request and response bodies of the prediction API (pydantic; they make the OpenAPI spec).

Feature values are strict JSON scalars (number, string, boolean, null) or, for sequence features,
a list of ids. What each feature means, its type and its default are in ``GET /v1/feature-spec``.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

__all__ = [
    "FeatureValue",
    "Candidate",
    "Bidding",
    "PredictRequest",
    "BatchPredictRequest",
    "CandidateScore",
    "PredictResponse",
    "BatchPredictResponse",
]

#: largest advertiser value / bid cap a request may carry (bids are then at most this, and finite)
MAX_VALUE = 1e9

FeatureValue = Union[StrictInt, StrictFloat, StrictStr, StrictBool, None, list[Union[StrictInt, StrictStr]]]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Candidate(_Body):
    """One candidate ad."""

    id: StrictStr | StrictInt | None = Field(default=None, description="Echoed back with its scores.")
    features: dict[str, FeatureValue] = Field(
        default_factory=dict, description="Ad-level features; override the user's value of the same name."
    )
    value: float | None = Field(
        default=None, ge=0.0, le=MAX_VALUE, allow_inf_nan=False,
        description="Advertiser value per click (or per conversion) for bidding (finite, at most 1e9).",
    )


class Bidding(_Body):
    """Ask for the bid a named policy would place on each candidate."""

    policy: Literal["truthful_cpc", "truthful_cpa", "shaded_cpc"] = Field(
        description="truthful_cpc: v·pCTR; truthful_cpa: v·pCTR·pCVR; shaded_cpc: shading·v·pCTR."
    )
    value: float | None = Field(
        default=None, ge=0.0, le=MAX_VALUE, allow_inf_nan=False,
        description="Value v for candidates without their own `value` (finite, at most 1e9).",
    )
    shading: float = Field(default=1.0, gt=0.0, le=1.0, allow_inf_nan=False, description="Factor of shaded_cpc.")
    max_bid: float | None = Field(default=None, gt=0.0, le=MAX_VALUE, allow_inf_nan=False,
                                  description="Cap on every bid (finite, at most 1e9).")


class PredictRequest(_Body):
    """One user scored against a list of candidate ads."""

    user_id: StrictStr | StrictInt = Field(description="Routes the request (stable A/B hash); looked up"
                                           " in the user feature store when one is configured.")
    user: dict[str, FeatureValue] = Field(
        default_factory=dict, description="User/context features, applied to every candidate."
    )
    candidates: list[Candidate] = Field(min_length=1, description="Candidate ads to score.")
    version: str | None = Field(default=None, description="Pin a model version (else A/B routing).")
    bidding: Bidding | None = Field(default=None, description="Also return each candidate's bid.")


class BatchPredictRequest(_Body):
    requests: list[PredictRequest] = Field(min_length=1, description="Independent predict requests.")


class CandidateScore(BaseModel):
    id: str | int | None = Field(description="The candidate's id as sent.")
    pctr: float = Field(description="Calibrated probability of the first task (click).")
    pcvr: float | None = Field(description="Calibrated probability of the second task, if the model has one.")
    scores: dict[str, float] = Field(description="Calibrated probability per task name.")
    bid: float | None = Field(default=None, description="Bid of the requested bidding policy.")


class PredictResponse(BaseModel):
    model_version: str = Field(description="The version that produced the scores.")
    routed_by: Literal["ab", "pinned", "fallback"] = Field(description="How the version was chosen.")
    fallback_reason: str | None = Field(default=None, description="Why the default model served, if it did.")
    tasks: list[str] = Field(description="Task names of the model.")
    candidates: list[CandidateScore]


class BatchPredictResponse(BaseModel):
    responses: list[PredictResponse]
