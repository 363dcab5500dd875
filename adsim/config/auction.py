"""Scenario section ``auction``: mechanism, market, campaigns, conversions and traffic."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from adsim.config.base import MAX_MONEY, Label, StrictModel
from adsim.config.policies import BidderPolicyConfig, TruthfulBidderPolicyConfig
from adsim.config.world import WorldConfig

# ================================================================ auction world (issue 3) ====
# Everything an auction scenario can say: mechanism, market, campaigns and traffic. Used by
# adsim.env.auction_world, adsim.env.envs and adsim.experiments.auction_runner.

__all__ = [
    "DEFAULT_DIURNAL",
    "LogNormalMarketConfig",
    "TruthfulMarketConfig",
    "MarketConfig",
    "BidderConfig",
    "CampaignConfig",
    "ConversionConfig",
    "TrafficConfig",
    "AuctionConfig",
]


DEFAULT_DIURNAL: tuple[float, ...] = (
    0.35, 0.25, 0.2, 0.18, 0.2, 0.3, 0.55, 0.8, 0.95, 1.0, 1.0, 1.05,
    1.1, 1.05, 1.0, 1.0, 1.05, 1.15, 1.3, 1.45, 1.5, 1.35, 1.0, 0.6,
)  # relative request rate per hour of the day (a typical two-hump web traffic day)


class LogNormalMarketConfig(StrictModel):
    """Competing demand as i.i.d. log-normal rank scores: each of ``n_competitors`` bids
    ``exp(N(mu, sigma²))`` on every request (1 competitor = the classic "market price" model)."""

    type: Literal["lognormal"] = "lognormal"
    mu: float = Field(default=-1.0, ge=-20.0, le=20.0, description="Mean of the log score.")
    sigma: float = Field(default=0.5, ge=0.0, le=5.0, description="Std of the log score.")
    n_competitors: int = Field(
        default=1, ge=0, le=1000, description="Competing bidders per auction (0 = none)."
    )


class TruthfulMarketConfig(StrictModel):
    """``n_bidders`` competing value bidders with their own ads: each bids its value per click
    (log-normal) × its true CTR for the request (a world ad it owns), i.e. its eCPM."""

    type: Literal["bidders"]
    n_bidders: int = Field(default=5, ge=1, le=1000, description="Competing bidders.")
    value_mu: float = Field(default=0.0, ge=-20.0, le=20.0, description="Mean log value per click.")
    value_sigma: float = Field(default=0.5, ge=0.0, le=5.0, description="Std of log value per click.")


MarketConfig = Annotated[
    Union[LogNormalMarketConfig, TruthfulMarketConfig], Field(discriminator="type")
]


BidderConfig = BidderPolicyConfig
"""A campaign's bidder: the same vocabulary as ``bidding.candidates`` (one list of bidder types,
:data:`adsim.config.policies.BidderPolicyConfig`; ``truthful``, ``constant_pacing`` and ``fixed``
are the reference bidders, the pacing suite and RL agents work here too)."""


class CampaignConfig(StrictModel):
    """An advertiser's campaign: one ad, what a click/conversion is worth, a budget, targeting."""

    name: Label = Field(min_length=1, description="Campaign label in results.")
    ad: int | None = Field(
        default=None, ge=0, description="World ad the campaign shows (default: its list position)."
    )
    budget: float | None = Field(
        default=None, gt=0.0, le=MAX_MONEY, description="Daily budget; omit for unlimited."
    )
    value_per_click: float = Field(default=1.0, ge=0.0, le=MAX_MONEY, description="Value of one click.")
    value_per_conversion: float = Field(default=0.0, ge=0.0, le=MAX_MONEY, description="Value of one conversion.")
    targeting: dict[str, list[int]] = Field(
        default_factory=dict,
        description="Sparse field -> allowed values; the campaign only bids on matching users.",
    )
    bidder: BidderPolicyConfig = Field(
        default_factory=lambda: TruthfulBidderPolicyConfig(type="truthful"),
        description="The campaign's bidding policy (default: truthful).",
    )


class ConversionConfig(StrictModel):
    """Post-click conversions: logistic CVR model (like the click model) with an optional delay."""

    base_cvr: float = Field(default=0.0, ge=0.0, lt=1.0, description="Typical CVR (0 = off).")
    delay_mean_hours: float = Field(
        default=0.0, ge=0.0, le=24 * 30,
        description="Mean exponential delay from click to conversion (0 = immediate).",
    )


class TrafficConfig(StrictModel):
    """Requests over one simulated day, split into decision steps."""

    n_requests: int = Field(default=100_000, ge=1, le=100_000_000, description="Requests per day.")
    n_steps: int = Field(default=96, ge=1, le=100_000, description="Decision steps per day.")
    diurnal: list[float] = Field(
        default_factory=lambda: list(DEFAULT_DIURNAL), min_length=1, max_length=1440,
        description="Relative request rate over the day (equal-width bins, e.g. 24 hours).",
    )

    @field_validator("diurnal")
    @classmethod
    def _positive_curve(cls, v: list[float]) -> list[float]:
        if any(not (0.0 <= x <= MAX_MONEY) for x in v) or sum(v) <= 0:
            raise ValueError(f"rates must be >= 0 with a positive sum (each at most {MAX_MONEY:g})")
        return v


class AuctionConfig(StrictModel):
    """The auction: mechanism, slots, reserve, ranking, the market, campaigns and traffic."""

    mechanism: Literal["second_price", "first_price", "gsp", "vcg"] = Field(
        default="second_price", description="Payment rule (see adsim.env.auction)."
    )
    n_slots: int = Field(default=1, ge=1, le=20, description="Ad slots per request.")
    examination: list[float] | None = Field(
        default=None,
        description="Examination probability per slot, non-increasing in (0, 1] (default 0.7^k).",
    )
    reserve: float = Field(default=0.0, ge=0.0, le=MAX_MONEY, description="Reserve price in rank-score units.")
    reserve_sigma: float = Field(
        default=0.0, ge=0.0, le=5.0,
        description="> 0: per-request reserve = reserve × log-normal(0, reserve_sigma).",
    )
    ranking: Literal["bid", "ecpm"] = Field(
        default="bid",
        description="bid: bids per impression, ranked by bid; ecpm: bids per click, ranked by "
        "bid × pCTR and charged per click.",
    )
    market: MarketConfig = Field(default_factory=LogNormalMarketConfig)
    campaigns: list[CampaignConfig] = Field(min_length=1, description="Campaigns in the auction.")
    traffic: TrafficConfig = Field(default_factory=TrafficConfig)
    conversion: ConversionConfig = Field(default_factory=ConversionConfig)

    @model_validator(mode="after")
    def _consistent(self) -> AuctionConfig:
        if self.mechanism == "second_price" and self.n_slots != 1:
            raise ValueError(
                "mechanism 'second_price' sells one slot; set n_slots: 1 or use gsp or vcg"
            )
        if self.examination is not None:
            e = self.examination
            if len(e) != self.n_slots:
                raise ValueError(f"examination needs {self.n_slots} entries (one per slot), got {len(e)}")
            if any(not (0.0 < x <= 1.0) for x in e) or any(b > a for a, b in zip(e, e[1:])):
                raise ValueError("examination probabilities must be in (0, 1] and non-increasing")
        names = [c.name for c in self.campaigns]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"two campaigns are named {dup[0]!r}; give each its own name")
        return self

    def examination_probs(self) -> list[float]:
        """θ_k per slot (the configured list, or 0.7^k)."""
        if self.examination is not None:
            return list(self.examination)
        return [0.7**k for k in range(self.n_slots)]


def _check_auction_against_world(auction: AuctionConfig, world: WorldConfig) -> None:
    """Campaign ads and targeting must refer to things the world has."""
    fields = {f.name: f.vocab_size for f in world.sparse_fields}
    trained = world.truth.type == "trained"  # its fields are the run's: checked when it is built
    for i, c in enumerate(auction.campaigns):
        ad = c.ad if c.ad is not None else i
        if ad >= world.n_ads:
            raise ValueError(
                f"campaigns[{i}].ad is {ad} but world.n_ads is {world.n_ads}; use an ad in"
                f" [0, {world.n_ads}) or raise world.n_ads"
            )
        for name, values in {} if trained else c.targeting.items():
            if name not in fields:
                raise ValueError(
                    f"campaigns[{i}].targeting: unknown field {name!r}; world fields are"
                    f" {sorted(fields)}"
                )
            bad = [v for v in values if not 0 <= v < fields[name]]
            if bad or not values:
                raise ValueError(
                    f"campaigns[{i}].targeting.{name}: values must be a non-empty list in"
                    f" [0, {fields[name]}), got {values}"
                )
    if auction.market.type == "bidders":
        n_own = len(auction.campaigns)
        if n_own + auction.market.n_bidders > world.n_ads:
            raise ValueError(
                f"market.n_bidders ({auction.market.n_bidders}) + campaigns ({n_own}) need that"
                f" many world ads, but world.n_ads is {world.n_ads}; raise world.n_ads"
            )


# ============================================================ end of auction world (issue 3) ==
