"""Bid OPE in a scenario: exploration days, the exact truth of bid rules, budget pacing from a log.

* :func:`log_day` — one simulated day of an auction scenario in which the ``bid_ope.campaign``
  bids through an :class:`~adsim.policies.exploration_bidders.ExplorationBidder` (the other
  campaigns keep their configured bidders); returns the day's :class:`BidLog` (schema in
  :mod:`adsim.estimators.bids.log`) and the campaign's hindsight options (for OPT).
* :func:`exact_outcomes` — the **exact** expected outcomes per request of a bid rule ``b(x)``:
  requests draw users from a finite population with weights ``w_u``, and against a log-normal
  market price ``D ~ logN(μ, σ²)`` with reserve ``r`` the win rate and payment are closed forms
  (:class:`~adsim.env.market.LogNormalMarket`), so

  .. math::  V_Y = \\frac{\\sum_u w_u e_u\\, g_Y(u)\\, W(b_u)}{\\sum_u w_u e_u},\\qquad
             W(b) = 1\\{b \\ge r\\}\\,\\Phi\\!\\left(\\tfrac{\\log b - \\mu}{\\sigma}\\right)

  with ``e_u`` eligibility and ``g_Y`` = value ``θ₁·ctr·(vpc + cvr·vpa)``, clicks ``θ₁·ctr``,
  conversions ``θ₁·ctr·cvr``, wins 1; spend uses the expected second-price payment
  ``E[max(D, r) 1{max(D, r) <= b}]`` or ``b W(b)`` (first price). It needs the logging campaign
  alone against a one-competitor log-normal market with a fixed reserve.
* :func:`pace_budget` — value and spend curves of the Lagrangian rule ``v/(1+λ)`` over a λ grid,
  estimated from one log; λ̂ is where the (monotone envelope of the) estimated daily spend meets
  the budget (linear interpolation), and the rule at λ̂ is estimated again.

What is identified from the log and what rests on a model: see ``docs/bid_ope.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from adsim.config import Scenario
from adsim.config.bid_ope import BidOPEConfig, BidTargetConfig, LogNormalExplorationConfig
from adsim.env.auction_world import AuctionWorld
from adsim.env.market import LogNormalMarket
from adsim.env.truth import ad_logits
from adsim.errors import ConfigError
from adsim.estimators.bids.log import BidLog
from adsim.estimators.bids.ope import BidOPE
from adsim.policies.base import BidderState, BiddingPolicy, BidRequests
from adsim.policies.exploration_bidders import (
    ExplorationBidder,
    GridExploration,
    LogNormalExploration,
)
from adsim.policies.simple_bidders import TruthfulBidder, make_bidder

__all__ = [
    "DayLog",
    "PacingResult",
    "agent_index",
    "exact_outcomes",
    "exploration_of",
    "log_day",
    "make_target",
    "pace_budget",
]


def _cfg(scn: Scenario) -> BidOPEConfig:
    if scn.auction is None or scn.bid_ope is None:
        raise ConfigError(f"scenario {scn.name!r} needs 'auction' and 'bid_ope' sections for bid OPE")
    return scn.bid_ope


def agent_index(scn: Scenario) -> int:
    """Index of the logging campaign."""
    cfg = _cfg(scn)
    names = [c.name for c in scn.auction.campaigns]  # type: ignore[union-attr]
    return 0 if cfg.campaign is None else names.index(cfg.campaign)


def exploration_of(cfg: BidOPEConfig, sigma: float | None = None) -> LogNormalExploration | GridExploration:
    """The logger's exploration law (``sigma`` overrides a log-normal width)."""
    ex = cfg.logger.exploration
    if isinstance(ex, LogNormalExplorationConfig):
        return LogNormalExploration(sigma if sigma is not None else ex.sigma, ex.mu)
    if sigma is not None:
        raise ConfigError("exploration widths (validation.sigmas) need a lognormal exploration")
    return GridExploration(tuple(ex.multipliers), tuple(ex.prob_list()))


def make_target(cfg: BidTargetConfig, scn: Scenario, dim: int, seed: int = 0) -> BiddingPolicy:
    """A bidder object for a target config (any ``bid(requests, state)`` bidder works)."""
    if cfg.type == "truthful":
        pol: BiddingPolicy = TruthfulBidder(cfg.scale)
    elif cfg.type == "shaded":
        pol = TruthfulBidder(cfg.factor)
    elif cfg.type == "lagrangian":
        pol = TruthfulBidder(1.0 / (1.0 + cfg.lam))
    else:
        from adsim.config import AuctionConfig, CampaignConfig
        from adsim.policies.factory import make_bidding_policy

        auction = scn.auction if scn.auction is not None else AuctionConfig(
            campaigns=[CampaignConfig(name="campaign")]
        )
        pol = make_bidding_policy(cfg.bidder, auction, dim, seed)
    pol.name = cfg.name or cfg.type
    return pol


@dataclass
class DayLog:
    """A logged day: the bid log and the campaign's hindsight options ``(n, 1)`` value/cost."""

    log: BidLog
    hindsight_values: np.ndarray
    hindsight_costs: np.ndarray
    budget: float


def log_day(
    scn: Scenario, aw: AuctionWorld, seed: int | np.random.SeedSequence,
    sigma: float | None = None, with_context: bool = True,
) -> DayLog:
    """Simulate one day with the exploring logger; see the module docstring.

    ``with_context`` adds the users' feature columns (``user_id``, ``x0``…, sparse fields) to
    the log, so ``segment_by`` and targets that read features can use them."""
    cfg = _cfg(scn)
    c = agent_index(scn)
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence([scn.seed, 15, seed])
    day_ss, bid_ss = ss.spawn(2)
    ex = exploration_of(cfg, sigma)
    logger = ExplorationBidder(TruthfulBidder(cfg.logger.base_scale), ex,
                               seed=int(bid_ss.generate_state(1)[0]))
    logger.name = "exploration"
    bidders = [logger if j == c else make_bidder(cc.bidder)
               for j, cc in enumerate(scn.auction.campaigns)]  # type: ignore[union-attr]
    aw.record_requests = True
    aw.reset(np.random.default_rng(day_ss), bidders)
    parts: list[dict[str, np.ndarray]] = []
    hv, hc = [], []
    ctx_parts = []
    while not aw.done:
        rep = aw.run_step(bidders)
        r = rep.requests
        assert r is not None
        active = np.isfinite(logger.last_propensity)
        won = r["slot"][:, c] >= 0  # type: ignore[index]
        mb = r["min_bid"][:, c]  # type: ignore[index]
        reveal = won if scn.auction.mechanism == "second_price" else (  # type: ignore[union-attr]
            ~won if cfg.reveal_min_bid_on_loss else np.zeros_like(won))
        clicks = r["clicks"][:, c]  # type: ignore[index]
        conv = r["conversions"][:, c]  # type: ignore[index]
        camp = aw.campaigns
        parts.append({k: v[active] for k, v in {
            "expected_value": r["values"][:, c],  # type: ignore[index]
            "ctr": aw.theta[0] * r["ctr"][:, c],  # type: ignore[index]
            "base_bid": logger.last_base, "bid": r["bids"][:, c],  # type: ignore[index]
            "propensity": logger.last_propensity, "won": won.astype(np.int8),
            "price": np.where(won, r["price"][:, c], 0.0),  # type: ignore[index]
            "min_bid": np.where(reveal, mb, np.nan),
            "click": clicks.astype(np.int8), "conversion": conv.astype(np.int8),
            "value": clicks * camp.value_per_click[c] + conv * camp.value_per_conversion[c],
            "time": r["time"], "step": np.full(len(won), rep.step, np.int32),
        }.items()})
        if with_context:
            ctx_parts.append(r["contexts"].take(np.flatnonzero(active)).to_frame())  # type: ignore[attr-defined]
        if rep.hindsight_values:
            hv.append(rep.hindsight_values[c])
            hc.append(rep.hindsight_costs[c])
    frame = pd.DataFrame({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    if with_context:
        frame = pd.concat([frame, pd.concat(ctx_parts, ignore_index=True)], axis=1)
    elig_share = _eligible_share(aw, c)
    meta = {"campaign": aw.campaigns.names[c],
            "requests_per_day": float(scn.auction.traffic.n_requests * elig_share),  # type: ignore[union-attr]
            "feature_spec": aw.world.spec.to_dict()}
    log = BidLog(frame, scn.auction.mechanism, ex.to_dict(), cfg.reveal_min_bid_on_loss, meta)  # type: ignore[union-attr]
    values = np.concatenate(hv) if hv else np.zeros((0, 1))
    costs = np.concatenate(hc) if hc else np.zeros((0, 1))
    return DayLog(log, values, costs, float(aw.campaigns.budgets[c]))


def _eligible_share(aw: AuctionWorld, c: int) -> float:
    pop = aw.world.population
    elig = aw.campaigns.eligible(pop.users)[:, c]
    return float(pop.weights @ elig)


def _population_requests(aw: AuctionWorld, c: int) -> tuple[BidRequests, np.ndarray, dict[str, np.ndarray]]:
    """BidRequests for every user (the population), their weights and per-user g_Y."""
    pop = aw.world.population
    users = pop.users
    ads = aw.campaigns.ads
    ctr = expit(ad_logits(aw.world.truth, users, ads))[:, c]
    cvr = aw.conversion.cvr(users, ads)[:, c] if aw.conversion is not None else np.zeros_like(ctr)
    camp = aw.campaigns
    theta = float(aw.theta[0])
    vpc = camp.value_per_click[c] + cvr * camp.value_per_conversion[c]
    values = theta * ctr * vpc
    elig = aw.campaigns.eligible(users)[:, c]
    req = BidRequests(users, values, theta * ctr, elig, np.zeros(len(users)))
    g = {"value": values, "clicks": theta * ctr, "conversions": theta * ctr * cvr,
         "wins": np.ones_like(ctr)}
    return req, pop.weights * elig, g


def exact_outcomes(scn: Scenario, aw: AuctionWorld, target: Any = None,
                   bids_fn: Any = None) -> dict[str, float]:
    """Exact expected outcomes per (eligible) request of a static bid rule (module docstring)."""
    acfg = scn.auction
    assert acfg is not None
    mk = acfg.market
    if len(acfg.campaigns) != 1 or mk.type != "lognormal" or mk.n_competitors != 1 or acfg.reserve_sigma > 0:
        raise ConfigError(
            "the exact truth of a bid rule needs the logging campaign alone against a"
            " one-competitor log-normal market with a fixed reserve (auction.campaigns: one,"
            " market: {type: lognormal, n_competitors: 1}, reserve_sigma: 0)"
        )
    c = agent_index(scn)
    req, w, g = _population_requests(aw, c)
    state = BidderState(step=0, n_steps=1, budget=float("inf"), spent=0.0, traffic_share=1.0,
                        elapsed_share=0.0)
    b = np.asarray(bids_fn(req) if bids_fn is not None else target.bid(req, state), np.float64)
    b = np.where(req.eligible, np.maximum(b, 0.0), 0.0)
    market = LogNormalMarket(mk.mu, mk.sigma, 1)
    r = float(acfg.reserve)
    win = market.win_prob(b, r)
    if acfg.mechanism == "second_price":
        pay = market.expected_payment(b, r)
    else:
        pay = b * win
    tot = float(w.sum())
    out = {y: float(w @ (g[y] * win)) / tot for y in ("value", "clicks", "conversions", "wins")}
    out["spend"] = float(w @ pay) / tot
    return out


@dataclass
class PacingResult:
    """Budget pacing from one log (per-day numbers)."""

    curve: pd.DataFrame  # lambda, value, spend (daily, estimated), spend_envelope
    lam: float
    value: float
    spend: float
    value_ci: tuple[float, float]
    spend_ci: tuple[float, float]
    budget: float


def pace_budget(ope: BidOPE, budget: float, lambdas: list[float], estimator: str = "dr",
                requests_per_day: float | None = None) -> PacingResult:
    """Choose λ̂ from the log's estimated spend curve and estimate the paced rule (docstring)."""
    n_day = requests_per_day or ope.log.meta.get("requests_per_day")
    if not n_day:
        raise ConfigError("budget pacing needs the log's requests per day (simulated logs carry it)")
    ev = ope.log.col("expected_value")
    rows = []
    for lam in lambdas:
        b = ev / (1.0 + lam)
        rows.append({"lambda": lam, "value": ope.estimate(b, "value", estimator).value * n_day,
                     "spend": ope.estimate(b, "spend", estimator).value * n_day})
    curve = pd.DataFrame(rows)
    # spend falls with λ: monotone (non-increasing) envelope of the estimates
    env = np.minimum.accumulate(curve["spend"].to_numpy())
    curve["spend_envelope"] = env
    lam_grid = curve["lambda"].to_numpy()
    if env[0] <= budget:
        lam_hat = float(lam_grid[0])
    elif env[-1] > budget:
        lam_hat = float(lam_grid[-1])
    else:
        k = int(np.argmax(env <= budget))  # first grid point under the budget
        x0, x1, y0, y1 = lam_grid[k - 1], lam_grid[k], env[k - 1], env[k]
        lam_hat = float(x0 + (y0 - budget) * (x1 - x0) / (y0 - y1)) if y0 > y1 else float(x1)
    v = ope.estimate(ev / (1.0 + lam_hat), "value", estimator)
    s = ope.estimate(ev / (1.0 + lam_hat), "spend", estimator)
    return PacingResult(curve, lam_hat, v.value * n_day, s.value * n_day,
                        (v.ci_low * n_day, v.ci_high * n_day), (s.ci_low * n_day, s.ci_high * n_day),
                        budget)
