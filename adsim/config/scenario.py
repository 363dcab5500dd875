"""The scenario file: evaluation settings, the top-level :class:`Scenario`, loading and JSON Schema."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from adsim.config.auction import AuctionConfig, _check_auction_against_world
from adsim.config.base import SafeName, StrictModel, load_config, unique_candidate_names
from adsim.config.bid_ope import BidOPEConfig
from adsim.config.memory import check_memory, scenario_memory
from adsim.config.policies import (
    LEARNING_POLICY_CONFIGS,
    BiddingConfig,
    PolicyConfig,
    RLBanditPolicyConfig,
    SoftmaxPolicyConfig,
    ThompsonPolicyConfig,
)
from adsim.config.world import WorldConfig

__all__ = [
    "EstimatorName",
    "EvaluationConfig",
    "Scenario",
    "load_scenario",
    "scenario_json_schema",
]


# ---------------------------------------------------------------------------------- evaluation
EstimatorName = Literal[
    "dm", "ips", "snips", "dr", "sndr", "switch_dr", "dr_os", "switch_dr_slope", "dr_os_slope"
]


class EvaluationConfig(StrictModel):
    """How candidates are evaluated offline (estimators on the log) and exactly (the oracle)."""

    n_rounds: int = Field(
        default=20_000, ge=100, le=100_000_000, description="Logged rounds used for estimation."
    )
    n_train_rounds: int = Field(
        default=20_000, ge=100, le=100_000_000,
        description="Separate logged rounds on which 'fitted' models and Thompson sampling learn.",
    )
    estimators: list[EstimatorName] = Field(
        default_factory=lambda: ["ips", "snips", "dr"], min_length=1,
        description="Off-policy estimators to run.",
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="Interval coverage.")
    n_online_rounds: int = Field(
        default=0, ge=0, le=100_000_000,
        description="If > 0, also simulate each candidate on-policy for this many rounds.",
    )
    # ---- candidates with learn: online (adsim.experiments.regret)
    online_rounds: int = Field(
        default=20_000, ge=10, le=100_000_000,
        description="Horizon T of the candidates that learn online (requests each one plays).",
    )
    online_batch: int = Field(
        default=500, ge=1, le=10_000_000,
        description="Requests per batch between a learner's updates (a candidate's own"
        " online_batch overrides it).",
    )
    online_delay: int = Field(
        default=0, ge=0, le=1_000_000,
        description="Feedback of a batch reaches the learner this many batches late.",
    )
    n_seeds: int = Field(
        default=3, ge=1, le=1000,
        description="Independent runs (traffic and learner seeds) per online learner; regret"
        " curves show the mean and a confidence band over them.",
    )
    slope_decades: float = Field(
        default=2.0, gt=0.0, le=10.0,
        description="The regret's log-log slope is fitted over the last this-many decades of"
        " rounds (from T/10^slope_decades to T).",
    )



class Scenario(StrictModel):
    """One experiment: ``adsim run scenario.yaml``."""

    name: SafeName = Field(
        min_length=1, description="Scenario name (used in reports and as the default output folder"
        " runs/<name>: no '/', '..' or control characters).",
    )
    description: str = Field(default="", description="Free text shown in the report.")
    seed: int = Field(default=0, ge=0, le=2**63 - 1, description="Master seed of every random draw.")
    world: WorldConfig = Field(default_factory=WorldConfig)
    auction: AuctionConfig | None = Field(
        default=None, description="An auction day (mechanism, market, campaigns, traffic)."
    )
    logging_policy: PolicyConfig = Field(
        default_factory=lambda: SoftmaxPolicyConfig(
            type="softmax", temperature=0.5, model="noisy_truth"
        ),
        description="The policy that produced the log (its propensities are recorded).",
    )
    candidates: list[PolicyConfig] = Field(
        default_factory=list, validate_default=True, description="Policies to evaluate."
    )
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    bidding: BiddingConfig | None = Field(
        default=None, description="Bidding leaderboard and RL training (needs 'auction')."
    )
    bid_ope: BidOPEConfig | None = Field(
        default=None,
        description="Off-policy evaluation of bid rules from an exploring logger (needs 'auction').",
    )

    @field_validator("logging_policy")
    @classmethod
    def _logger_needs_no_training(cls, v: Any) -> Any:
        if isinstance(v, RLBanditPolicyConfig):
            raise ValueError(
                "type 'rl' is trained in the scenario's env by `adsim run`, after the log is"
                " collected, so it cannot be the logging policy; use softmax, epsilon_greedy or"
                " uniform"
            )
        if isinstance(v, (ThompsonPolicyConfig, *LEARNING_POLICY_CONFIGS)):
            raise ValueError(
                f"type {v.type!r} learns from a training log, which the logging policy does not"
                " have; use softmax, epsilon_greedy or uniform"
            )
        if getattr(v, "model", None) == "fitted":
            raise ValueError(
                "model 'fitted' learns from a training log, which the logging policy does not"
                " have; use model: noisy_truth or truth"
            )
        return v

    @field_validator("candidates")
    @classmethod
    def _unique_names(cls, v: list[Any], info: ValidationInfo) -> list[Any]:
        logger = info.data.get("logging_policy")
        if logger is not None:  # the leaderboard also lists the logger as "logger (<label>)"
            reserved = f"logger ({logger.name or logger.type})"
            for i, c in enumerate(v):
                if (c.name or c.type) == reserved:
                    raise ValueError(
                        f"candidate {i} is named {reserved!r}, the leaderboard's label of the"
                        " logging policy; give it another name"
                    )
        return unique_candidate_names(v)

    @field_validator("auction")
    @classmethod
    def _auction_fits_world(cls, v: AuctionConfig | None, info: ValidationInfo) -> Any:
        world = info.data.get("world")
        if v is not None and world is not None:
            _check_auction_against_world(v, world)
        return v

    @field_validator("bidding")
    @classmethod
    def _bidding_needs_auction(cls, v: BiddingConfig | None, info: ValidationInfo) -> Any:
        if v is None or "auction" not in info.data:
            return v
        auction = info.data["auction"]
        if auction is None:
            raise ValueError("needs an 'auction' section (the campaigns the candidates bid for)")
        names = [c.name for c in auction.campaigns]
        if v.agent is not None and v.agent not in names:
            raise ValueError(f"agent {v.agent!r} is not a campaign; campaigns are {names}")
        return v

    @field_validator("bid_ope")
    @classmethod
    def _bid_ope_needs_auction(cls, v: BidOPEConfig | None, info: ValidationInfo) -> Any:
        if v is None or "auction" not in info.data:
            return v
        from adsim.config.bid_ope import check_bid_ope_against_auction

        check_bid_ope_against_auction(v, info.data["auction"])
        return v

    @field_validator("candidates")
    @classmethod
    def _candidates_unless_auction(cls, v: list[Any], info: ValidationInfo) -> list[Any]:
        if not v and "auction" in info.data and info.data["auction"] is None:
            raise ValueError(
                "must have at least 1 item(s): list the policies to evaluate (only auction"
                " scenarios, with an 'auction' section, may leave it out)"
            )
        return v

    @model_validator(mode="after")
    def _fits_in_memory(self) -> Scenario:
        """The sizes together must fit under the memory ceiling (ADSIM_MAX_MEMORY_GB)."""
        check_memory(scenario_memory(self))
        return self


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load and validate a scenario YAML file."""
    return load_config(path, Scenario)


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema of scenario files (for editors: ``adsim schema > scenario.schema.json``)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "adsim scenario"
    return schema
