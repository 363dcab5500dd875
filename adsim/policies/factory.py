"""Build a bidding policy from its config: the one builder of the one bidder vocabulary.

:data:`adsim.config.BidderPolicyConfig` is what a campaign's ``bidder`` and a bidding candidate
(``bidding.candidates``) say; :func:`make_bidding_policy` builds any of its types (the reference
bidders ``truthful``, ``constant_pacing`` and ``fixed`` come from :mod:`adsim.env.bidders`).
Bandit policies need a world and a training log; they are built by
:class:`adsim.experiments.builders.PolicyBuilder`.
"""

from __future__ import annotations

from adsim.config import (
    AuctionConfig,
    BidderPolicyConfig,
    CPAPacingPolicyConfig,
    DualPacingPolicyConfig,
    PIDPacingPolicyConfig,
    RLPolicyConfig,
    ShadedPacingPolicyConfig,
    TSLagrangianPolicyConfig,
)
from adsim.env.bidders import BASELINE_BIDDERS, baseline_bidder
from adsim.errors import ConfigError
from adsim.policies.base import BiddingPolicy

__all__ = ["make_bidding_policy"]


def make_bidding_policy(
    cfg: BidderPolicyConfig, auction: AuctionConfig | None = None, dim: int = 0, seed: int = 0
) -> BiddingPolicy:
    """The bidding policy ``cfg`` for a campaign of ``auction`` (``dim``: design-matrix width,
    needed by ``ts_lagrangian``; ``auction``: its ranking sets the units of ``cpa_pacing``)."""
    from adsim.policies import bidding as b

    per_click = auction is not None and auction.ranking == "ecpm"
    if cfg.type in BASELINE_BIDDERS:
        pol: BiddingPolicy = baseline_bidder(cfg)
    elif isinstance(cfg, DualPacingPolicyConfig):
        pol = b.DualPacingBidder(
            cfg.step_size, cfg.lambda0, cfg.mirror, target=cfg.target, adaptive=cfg.adaptive,
            max_step_spend=cfg.max_step_spend, g_max=cfg.g_max,
        )
    elif isinstance(cfg, PIDPacingPolicyConfig):
        pol = b.PIDPacingBidder(cfg.kp, cfg.ki, cfg.kd, cfg.u0)
    elif isinstance(cfg, ShadedPacingPolicyConfig):
        pol = b.ShadedPacingBidder(
            cfg.step_size, cfg.lambda0, cfg.initial_shade, cfg.pace, seed=seed
        )
    elif isinstance(cfg, CPAPacingPolicyConfig):
        pol = b.CPAPacingBidder(
            cfg.target_cpa, cfg.step_size, cfg.cpa_step_size, cfg.lambda0, per_click=per_click
        )
    elif isinstance(cfg, TSLagrangianPolicyConfig):
        pol = b.TSLagrangianBidder(
            dim, cfg.step_size, cfg.lambda0, cfg.prior_precision, cfg.prior_ctr, seed=seed,
            max_step_spend=cfg.max_step_spend,
        )
    elif isinstance(cfg, RLPolicyConfig):
        from adsim.policies.rl import RLBidder

        pol = RLBidder.load(cfg.model)
    else:  # pragma: no cover - the schema admits no other type
        raise ConfigError(f"unknown bidder type {cfg.type!r}")
    pol.name = cfg.name or cfg.type
    return pol
