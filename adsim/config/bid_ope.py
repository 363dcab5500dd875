"""Scenario section ``bid_ope``: an exploring logging bidder, target bid rules, estimators, a
budget to pace and the validation grid (off-policy evaluation of bidding, issue 15).

Used by :mod:`adsim.experiments.bid_ope` (logging days, exact truth, validation) and
``adsim ope`` on bid logs (target files are one :data:`BidTargetConfig`).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import ConfigDict, Field, field_validator, model_validator

from adsim.config.base import StrictModel
from adsim.config.policies import BidderPolicyConfig

__all__ = [
    "BidBudgetConfig",
    "BidOPEConfig",
    "BidTargetConfig",
    "BidValidationConfig",
    "BidderTargetConfig",
    "ExplorationConfig",
    "ExplorationLoggerConfig",
    "GridExplorationConfig",
    "LagrangianTargetConfig",
    "LogNormalExplorationConfig",
    "ShadedTargetConfig",
    "TruthfulTargetConfig",
]


class LogNormalExplorationConfig(StrictModel):
    """Bid = base × M with log M ~ N(mu, sigma²); the log records the bid's density."""

    type: Literal["lognormal"]
    sigma: float = Field(gt=0.0, le=3.0, description="Std of the log multiplier (exploration width).")
    mu: float = Field(default=0.0, ge=-5.0, le=5.0, description="Mean of the log multiplier.")


class GridExplorationConfig(StrictModel):
    """Bid = base × m_k with probability p_k; the log records p_k."""

    type: Literal["grid"]
    multipliers: list[float] = Field(min_length=1, description="Distinct multipliers m_k > 0.")
    probs: list[float] | None = Field(
        default=None, description="Probabilities p_k > 0 summing to 1 (default: uniform)."
    )

    @model_validator(mode="after")
    def _check(self) -> GridExplorationConfig:
        m = self.multipliers
        if any(not x > 0 for x in m) or len(set(m)) != len(m):
            raise ValueError("multipliers must be distinct and > 0")
        if self.probs is not None:
            if len(self.probs) != len(m):
                raise ValueError(f"probs needs {len(m)} entries (one per multiplier), got {len(self.probs)}")
            if any(not p > 0 for p in self.probs) or abs(sum(self.probs) - 1.0) > 1e-6:
                raise ValueError("probs must be > 0 and sum to 1")
        return self

    def prob_list(self) -> list[float]:
        return list(self.probs) if self.probs is not None else [1.0 / len(self.multipliers)] * len(self.multipliers)


ExplorationConfig = Annotated[
    Union[LogNormalExplorationConfig, GridExplorationConfig], Field(discriminator="type")
]


class ExplorationLoggerConfig(StrictModel):
    """The logging bidder: base rule ``base_scale × value`` randomised by ``exploration``."""

    base_scale: float = Field(default=1.0, gt=0.0, le=100.0, description="Base bid = base_scale × value.")
    exploration: ExplorationConfig = Field(description="How the base bid is randomised.")


class TruthfulTargetConfig(StrictModel):
    """bid = scale × value."""

    type: Literal["truthful"]
    name: str | None = Field(default=None, min_length=1, description="Label in results.")
    scale: float = Field(default=1.0, gt=0.0, le=100.0, description="Multiplier on value.")


class ShadedTargetConfig(StrictModel):
    """bid = factor × value (a fixed shading factor)."""

    type: Literal["shaded"]
    name: str | None = Field(default=None, min_length=1, description="Label in results.")
    factor: float = Field(gt=0.0, le=1.0, description="Shading factor b/v.")


class LagrangianTargetConfig(StrictModel):
    """bid = value / (1 + λ): the budget's Lagrangian best response at a fixed multiplier λ."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    type: Literal["lagrangian"]
    name: str | None = Field(default=None, min_length=1, description="Label in results.")
    lam: float = Field(alias="lambda", ge=0.0, le=1e4, description="The multiplier λ.")


class BidderTargetConfig(StrictModel):
    """Any configured bidding policy (``bidding.candidates`` types), asked once per log with a
    static state: a pacing policy is evaluated at its initial multiplier."""

    type: Literal["bidder"]
    name: str | None = Field(default=None, min_length=1, description="Label in results.")
    bidder: BidderPolicyConfig


BidTargetConfig = Annotated[
    Union[TruthfulTargetConfig, ShadedTargetConfig, LagrangianTargetConfig, BidderTargetConfig],
    Field(discriminator="type"),
]


class BidBudgetConfig(StrictModel):
    """Pace a daily budget from the log: the λ whose estimated spend meets it."""

    budget: float = Field(gt=0.0, description="Daily budget of the campaign.")
    lambdas: list[float] = Field(
        default_factory=lambda: [round(0.1 * k, 1) for k in range(0, 41)], min_length=2,
        description="λ grid of the value and spend curves (ascending, >= 0).",
    )
    estimator: Literal["dm", "ips", "snips", "dr"] = Field(
        default="dr", description="Estimator of the curves."
    )

    @field_validator("lambdas")
    @classmethod
    def _grid(cls, v: list[float]) -> list[float]:
        if any(x < 0 for x in v) or any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError("lambdas must be >= 0 and strictly ascending")
        return v


class BidValidationConfig(StrictModel):
    """``adsim ope-validate`` on this scenario: estimators vs the exact truth over seeds."""

    n_seeds: int = Field(default=200, ge=2, le=100_000, description="Logging days (seeds).")
    sample_sizes: list[int] = Field(
        default_factory=lambda: [10_000, 30_000, 100_000], min_length=1,
        description="Log lengths n (each day's log cut to its first n requests).",
    )
    sigmas: list[float] = Field(
        default_factory=list,
        description="Extra log-normal exploration widths, evaluated at the largest n.",
    )

    @field_validator("sample_sizes")
    @classmethod
    def _sizes(cls, v: list[int]) -> list[int]:
        if any(n < 100 for n in v):
            raise ValueError(f"every sample size must be >= 100, got {v}")
        return sorted(set(v))


class BidOPEConfig(StrictModel):
    """Off-policy evaluation of bid rules from an exploring logger's auction log."""

    campaign: str | None = Field(default=None, description="Campaign that logs (default: the first).")
    logger: ExplorationLoggerConfig
    reveal_min_bid_on_loss: bool = Field(
        default=False,
        description="First price: the exchange reveals the winning price to losers (the minimum"
        " bid to win is then logged on losses).",
    )
    targets: list[BidTargetConfig] = Field(min_length=1, description="Bid rules to evaluate.")
    estimators: list[Literal["dm", "ips", "snips", "dr"]] = Field(
        default_factory=lambda: ["dm", "ips", "snips", "dr"], min_length=1,
        description="Estimators (kernel versions on log-normal logs).",
    )
    outcomes: list[Literal["value", "spend", "wins", "clicks", "conversions"]] = Field(
        default_factory=lambda: ["value", "spend", "wins", "clicks", "conversions"], min_length=1,
        description="Per-request outcomes to estimate.",
    )
    landscape: Literal["lognormal", "km"] = Field(
        default="lognormal", description="Censored price landscape: log-normal MLE or Kaplan–Meier."
    )
    segment_by: list[str] = Field(default_factory=list, description="Log columns splitting the landscape.")
    bandwidth: Literal["plug_in", "silverman"] | float = Field(
        default="plug_in", description="Kernel bandwidth on the log-bid (continuous logs)."
    )
    kernel: Literal["gaussian", "epanechnikov"] = Field(default="gaussian", description="Kernel.")
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="Interval coverage.")
    interval: Literal["clt", "bootstrap"] = Field(default="clt", description="Interval method.")
    budget: BidBudgetConfig | None = Field(default=None, description="Budget pacing from the log.")
    validation: BidValidationConfig = Field(default_factory=BidValidationConfig)

    @field_validator("bandwidth")
    @classmethod
    def _bw(cls, v: object) -> object:
        if isinstance(v, float) and not v > 0:
            raise ValueError("a numeric bandwidth must be > 0")
        return v

    @field_validator("targets")
    @classmethod
    def _unique(cls, v: list[BidTargetConfig]) -> list[BidTargetConfig]:
        names = [t.name or t.type for t in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"two targets are named {dup[0]!r}; give each a distinct 'name'")
        return v


def check_bid_ope_against_auction(cfg: BidOPEConfig, auction: object) -> None:
    """The logging campaign must exist; mechanism one-slot second or first price, bid ranking."""
    if auction is None:
        raise ValueError("needs an 'auction' section (the auctions the logger bids in)")
    names = [c.name for c in auction.campaigns]  # type: ignore[attr-defined]
    if cfg.campaign is not None and cfg.campaign not in names:
        raise ValueError(f"campaign {cfg.campaign!r} is not a campaign; campaigns are {names}")
    mech = auction.mechanism  # type: ignore[attr-defined]
    if mech not in ("second_price", "first_price") or auction.n_slots != 1:  # type: ignore[attr-defined]
        raise ValueError(
            f"bid OPE needs a one-slot second_price or first_price auction, got {mech} with"
            f" {auction.n_slots} slot(s)"  # type: ignore[attr-defined]
        )
    if auction.ranking != "bid":  # type: ignore[attr-defined]
        raise ValueError("bid OPE needs auction.ranking: bid (bids and prices per impression)")
