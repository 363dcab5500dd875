"""The auction day: campaigns bid through a day of traffic against each other and a market.

:class:`AuctionWorld` ties the pieces together — the world's users and click model
(:class:`~adsim.env.world.World`), position bias and conversions (:mod:`adsim.env.truth`),
campaigns (:mod:`adsim.env.campaigns`), competing demand (:mod:`adsim.env.market`), a mechanism
(:mod:`adsim.env.auction`) and the simpy day clock (:mod:`adsim.env.traffic`). One call of
:meth:`AuctionWorld.run_step` simulates a whole decision step as arrays:

1. draw the step's requests (users, arrival times), every campaign's CTR/CVR and value;
2. ask each campaign's :class:`~adsim.env.types.BiddingPolicy` for a batch of bids;
3. run the mechanism on all requests at once, with the market's competing bids;
4. draw clicks (θ_slot × CTR) and conversions (with delays, scheduled on the simpy clock);
5. **budgets**: charges are accumulated in arrival order; at the first request where a campaign's
   charge would take it past its budget (or its policy's step spending limit) the campaign drops
   out and the remaining requests are re-auctioned without it. So spend never exceeds a budget,
   and the loop runs at most ``C + 1`` vectorised passes per step.

Units: with ``ranking = bid`` bids and prices are per impression (charged when shown); with
``ranking = ecpm`` they are per click (charged on a click) and the platform ranks by bid × CTR.

For the hindsight oracle (:func:`adsim.env.oracle.hindsight_optimal`) each step also records, per
campaign and request, the expected value of each slot and the expected cost of taking it given
everyone else's bids as the auctions saw them (see :func:`slot_costs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import expit

from adsim.env.auction import run_auction
from adsim.env.campaigns import CampaignSet
from adsim.env.market import LogNormalMarket, TruthfulMarket
from adsim.env.traffic import DayClock, step_request_counts, step_shares
from adsim.env.truth import ConversionModel, ParametricTruth, PositionModel, ad_logits
from adsim.env.types import BidderState, BiddingPolicy, BidOutcome, BidRequests
from adsim.errors import ConfigError

if TYPE_CHECKING:
    from adsim.config import AuctionConfig, Scenario
    from adsim.env.world import World

__all__ = ["AuctionWorld", "StepReport", "slot_costs"]


def slot_costs(
    others: np.ndarray, reserve: np.ndarray, mechanism: str, examination: np.ndarray
) -> np.ndarray:
    """``(n, S)`` rank-score cost of taking slot k given the other bidders' scores ``(n, m)``.

    With ``o'_(j) = max(o_(j), r)`` the others' j-th highest eligible score (reserve phantoms
    below them): GSP/first price ``o'_(k)``; second price ``o'_(1)``; VCG
    ``Σ_{j=k..S} (θ_j − θ_{j+1}) o'_(j) / θ_k``.
    """
    n = others.shape[0]
    s = examination.shape[0]
    r = np.broadcast_to(reserve, (n,))
    masked = np.where((others > 0) & (others >= r[:, None]), others, 0.0)
    m = masked.shape[1]
    if m >= s:
        top = -np.partition(-masked, s - 1, axis=1)[:, :s] if m > s else masked.copy()
        top = -np.sort(-top, axis=1)
    else:
        top = np.zeros((n, s))
        top[:, :m] = -np.sort(-masked, axis=1)
    o = np.maximum(top, r[:, None])
    if mechanism in ("gsp", "first_price", "second_price"):
        return o
    dtheta = examination - np.append(examination[1:], 0.0)
    tail = np.cumsum((dtheta[None, :] * o)[:, ::-1], axis=1)[:, ::-1]
    return tail / examination[None, :]


@dataclass
class StepReport:
    """One step of the day: each campaign's outcome and, if recorded, its hindsight options."""

    step: int
    n_requests: int
    outcomes: list[BidOutcome]
    hindsight_values: list[np.ndarray] = field(default_factory=list)
    hindsight_costs: list[np.ndarray] = field(default_factory=list)
    requests: dict[str, object] | None = None
    """Per-request arrays of the step (``record_requests=True``; see :meth:`AuctionWorld.run_step`)."""


class AuctionWorld:
    """Campaigns bidding through one simulated day (see the module docstring).

    Args:
        world: users, ads and the click model.
        cfg: the auction section of a scenario.
        rng: generator for the static parts (competitors' values, conversion model).
        record_hindsight: keep per-request slot values/costs for the hindsight oracle.
        record_requests: keep per-request arrays in :attr:`StepReport.requests` (for auction
            logs): ``contexts``, ``time``, ``values``, ``ctr``, ``cvr``, ``eligible``, ``bids``,
            ``slot``, ``price``, ``clicks``, ``conversions`` (``(n, C)`` per campaign) and
            ``min_bid`` — the lowest bid with which each campaign would have been shown, given
            everyone else's bids as the auction saw them (rank-score threshold of the last slot,
            reserve included, over the campaign's rank weight; ``inf`` if ineligible).
    """

    def __init__(
        self,
        world: World,
        cfg: AuctionConfig,
        rng: np.random.Generator,
        record_hindsight: bool = True,
        record_requests: bool = False,
    ) -> None:
        self.world = world
        self.cfg = cfg
        self.record_hindsight = record_hindsight
        self.record_requests = record_requests
        self.campaigns = CampaignSet.from_config(cfg.campaigns, world.spec)
        self.position = PositionModel(np.array(cfg.examination_probs()))
        self.theta = self.position.examination
        mk = cfg.market
        if mk.type == "lognormal":
            self.market: LogNormalMarket | TruthfulMarket = LogNormalMarket(
                mk.mu, mk.sigma, mk.n_competitors
            )
        else:
            c = len(self.campaigns)
            ads = np.arange(c, c + mk.n_bidders, dtype=np.int64)
            values = np.exp(mk.value_mu + mk.value_sigma * rng.standard_normal(mk.n_bidders))
            self.market = TruthfulMarket(ads=ads, values=values, truth=world.truth)
        conv = cfg.conversion
        self.conversion: ConversionModel | None = None
        if getattr(world.truth, "has_conversions", False):
            # a truth with its own conversions (a trained CTR/CVR network): P(conv | click) is its
            # pCVR, so expected conversions are exact with respect to it
            if conv.base_cvr > 0:
                raise ConfigError(
                    "auction.conversion.base_cvr: this world's truth defines conversions itself"
                    " (the trained network's pCVR); remove base_cvr (delay_mean_hours still applies)"
                )
            self.conversion = world.truth.conversion_model(conv.delay_mean_hours)  # type: ignore[attr-defined]
        elif conv.base_cvr > 0:
            cvr_truth = ParametricTruth.random(
                world.spec, world.catalog, rng, base_ctr=conv.base_cvr
            )
            self.conversion = ConversionModel(cvr_truth, conv.delay_mean_hours)
        self.shares = step_shares(cfg.traffic.n_steps, cfg.traffic.diurnal)
        self.n_steps = cfg.traffic.n_steps
        self.clock = DayClock(self.n_steps)
        self.spent = np.zeros(len(self.campaigns))
        self.counts = np.zeros(self.n_steps, np.int64)
        self._last: list[BidOutcome | None] = [None] * len(self.campaigns)
        self.rng = np.random.default_rng(0)

    @classmethod
    def from_scenario(cls, scn: Scenario, seed: int | None = None) -> AuctionWorld:
        """Build the world and the auction of an auction scenario (seeded, reproducible).

        A layer above that builds the world itself (e.g. a trained world, with
        :func:`adsim.experiments.world_models.scenario_world`) uses :meth:`seed_streams` for the same streams."""
        from adsim.env.world import World

        if scn.auction is None:
            raise ValueError("the scenario has no 'auction' section")
        w_rng, a_rng = cls.seed_streams(scn.seed if seed is None else seed)
        return cls(World.from_config(scn.world, w_rng), scn.auction, a_rng)

    @staticmethod
    def seed_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
        """The (world, auction) generators :meth:`from_scenario` uses for ``seed``."""
        ss = np.random.SeedSequence(seed)
        w_rng, a_rng = (np.random.default_rng(s) for s in ss.spawn(2))
        return w_rng, a_rng

    @property
    def n_campaigns(self) -> int:
        return len(self.campaigns)

    @property
    def done(self) -> bool:
        return self.clock.done

    def reset(self, rng: np.random.Generator, bidders: list[BiddingPolicy] | None = None) -> None:
        """Start a new day: fresh traffic counts, clock, spend; ``bidders`` are reset too."""
        self.rng = rng
        t = self.cfg.traffic
        self.counts = step_request_counts(t.n_requests, t.n_steps, t.diurnal, rng)
        self.clock = DayClock(self.n_steps)
        self.spent = np.zeros(self.n_campaigns)
        self._last = [None] * self.n_campaigns
        for b in bidders or []:
            b.reset()

    def state(self, c: int) -> BidderState:
        """Campaign ``c``'s state at the start of the current step."""
        k = min(self.clock.step, self.n_steps - 1)
        return BidderState(
            step=self.clock.step,
            n_steps=self.n_steps,
            budget=float(self.campaigns.budgets[c]),
            spent=float(self.spent[c]),
            traffic_share=float(self.shares[k]),
            elapsed_share=float(self.shares[: self.clock.step].sum()),
            last=self._last[c],
        )

    # ------------------------------------------------------------------------------ one step
    def run_step(self, bidders: list[BiddingPolicy]) -> StepReport:
        """Simulate the current step with one bidding policy per campaign."""
        if len(bidders) != self.n_campaigns:
            raise ValueError(
                f"need {self.n_campaigns} bidders (one per campaign), got {len(bidders)}"
            )
        if self.done:
            raise RuntimeError("the day is over; call reset()")
        rng, cfg, camp = self.rng, self.cfg, self.campaigns
        k = self.clock.step
        n = int(self.counts[k])
        n_c = self.n_campaigns
        dt = self.clock.dt
        ctx = self.world.sample_contexts(n, rng)
        times = (k + np.sort(rng.random(n))) * dt
        ctr = expit(ad_logits(self.world.truth, ctx, camp.ads))  # (n, C)
        cvr = (
            self.conversion.cvr(ctx, camp.ads) if self.conversion is not None
            else np.zeros_like(ctr)
        )
        vpc = camp.value_per_click + cvr * camp.value_per_conversion  # value per click (n, C)
        ecpm = cfg.ranking == "ecpm"
        values = vpc if ecpm else self.theta[0] * ctr * vpc
        weights = ctr if ecpm else np.ones_like(ctr)
        eligible = camp.eligible(ctx) & (self.spent < camp.budgets)[None, :]
        states = [self.state(c) for c in range(n_c)]
        bids = np.zeros((n, n_c))
        for c, (pol, st) in enumerate(zip(bidders, states)):
            req = BidRequests(ctx, values[:, c], self.theta[0] * ctr[:, c], eligible[:, c], times)
            b = np.asarray(pol.bid(req, st), dtype=np.float64)
            if b.shape != (n,) or not np.all(np.isfinite(b)):
                raise ValueError(
                    f"bidder {pol.name!r} returned bids of shape {b.shape} (want ({n},)) or"
                    " non-finite bids"
                )
            bids[:, c] = np.where(eligible[:, c], np.maximum(b, 0.0), 0.0)
        limit = np.array([
            min(camp.budgets[c] - self.spent[c], bidders[c].spend_limit(states[c]))
            for c in range(n_c)
        ])
        comp = self.market.competition(ctx, rng, cfg.ranking)
        all_bids = np.concatenate([bids, comp.bids], axis=1)
        all_w = np.concatenate([weights, comp.weights], axis=1)
        if cfg.reserve_sigma > 0:
            reserve = cfg.reserve * np.exp(cfg.reserve_sigma * rng.standard_normal(n))
        else:
            reserve = np.full(n, cfg.reserve)

        slot = np.full((n, n_c), -1, np.int64)
        price = np.zeros((n, n_c))
        clicks = np.zeros((n, n_c), bool)
        charge = np.zeros((n, n_c))
        active = np.ones(n_c, bool)
        eff_bids = all_bids  # bids as each auction actually saw them (dropped-out campaigns at 0)
        start = 0
        while start < n:
            sub_bids = all_bids[start:].copy()
            if not active.all():
                if eff_bids is all_bids:
                    eff_bids = all_bids.copy()
                sub_bids[:, :n_c][:, ~active] = 0.0
                eff_bids[start:, :n_c][:, ~active] = 0.0
            out = run_auction(
                sub_bids, cfg.mechanism, n_slots=cfg.n_slots, quality=all_w[start:],
                reserve=reserve[start:], examination=self.theta,
            )
            sl = out.slot_of(all_bids.shape[1])[:, :n_c]
            shown = sl >= 0
            rows, cols = np.nonzero(shown)
            pr = np.zeros_like(sl, dtype=np.float64)
            pr[rows, cols] = out.price[rows, sl[rows, cols]]
            p_click = self.position.click_prob(ctr[start:], sl)
            cl = rng.random(sl.shape) < p_click
            ch = np.where(shown, pr * cl if ecpm else pr, 0.0)
            cum = np.cumsum(ch, axis=0)
            # only active campaigns can run out: a dropped-out one (or one whose limit rounding
            # left slightly below zero) is charged nothing and must not stop the step again
            over = (cum > limit[None, :] * (1 + 1e-12)) & active[None, :]
            first = np.where(over.any(axis=0), over.argmax(axis=0), len(ch))
            t_star = int(first.min())
            sl_acc = slice(start, start + t_star)
            slot[sl_acc], price[sl_acc] = sl[:t_star], pr[:t_star]
            clicks[sl_acc], charge[sl_acc] = cl[:t_star], ch[:t_star]
            if t_star == len(ch):
                break
            if t_star > 0:
                limit = limit - cum[t_star - 1]
            active &= first != t_star
            start += t_star

        # conversions among clicks, with delays, on the simpy clock
        conv_now = np.zeros(n_c)
        conv_value_now = np.zeros(n_c)
        conv = np.zeros((n, n_c), bool)
        if self.conversion is not None:
            conv = clicks & (rng.random((n, n_c)) < cvr)
            r_idx, c_idx = np.nonzero(conv)
            delays = self.conversion.sample_delays(r_idx.size, rng)
            self.clock.schedule_conversions(
                times[r_idx] + delays, c_idx, camp.value_per_conversion[c_idx]
            )
        for batch in self.clock.advance():
            conv_now += np.bincount(batch.campaign, minlength=n_c)
            conv_value_now += np.bincount(batch.campaign, weights=batch.value, minlength=n_c)

        shown = slot >= 0
        exp_val = np.where(shown, self.position.click_prob(ctr, slot) * vpc, 0.0)
        cost = charge.sum(axis=0)
        self.spent += cost
        outcomes = []
        for c in range(n_c):
            o = BidOutcome(
                step=k, n_requests=n, bids=int(np.count_nonzero(bids[:, c] > 0)),
                impressions=int(shown[:, c].sum()), clicks=int(clicks[:, c].sum()),
                conversions=int(conv_now[c]), cost=float(cost[c]),
                value=float(clicks[:, c].sum() * camp.value_per_click[c] + conv_value_now[c]),
                expected_value=float(exp_val[:, c].sum()), won=shown[:, c], price=price[:, c],
                clicked=clicks[:, c],
            )
            outcomes.append(o)
            self._last[c] = o
            bidders[c].update(o)
        report = StepReport(step=k, n_requests=n, outcomes=outcomes)
        if self.record_hindsight:
            self._hindsight(report, eff_bids * all_w, reserve, ctr, vpc, eligible)
        if self.record_requests:
            scores = eff_bids * all_w
            min_bid = np.empty((n, n_c))
            for c in range(n_c):
                others = np.delete(scores, c, axis=1)
                thr = slot_costs(others, reserve, "gsp", self.theta)[:, -1]  # o'_(S)
                with np.errstate(divide="ignore", invalid="ignore"):
                    min_bid[:, c] = np.where(weights[:, c] > 0, thr / weights[:, c], np.inf)
            report.requests = {
                "contexts": ctx, "time": times, "values": values, "ctr": ctr, "cvr": cvr,
                "eligible": eligible, "bids": bids, "slot": slot, "price": price,
                "clicks": clicks, "conversions": conv, "min_bid": min_bid,
            }
        return report

    def _hindsight(
        self,
        report: StepReport,
        scores: np.ndarray,
        reserve: np.ndarray,
        ctr: np.ndarray,
        vpc: np.ndarray,
        eligible: np.ndarray,
    ) -> None:
        """Per campaign: ``(n, S)`` expected value and expected cost of taking each slot."""
        ecpm = self.cfg.ranking == "ecpm"
        for c in range(self.n_campaigns):
            others = np.delete(scores, c, axis=1)
            cost_score = slot_costs(others, reserve, self.cfg.mechanism, self.theta)
            # expected payment: per impression (bid ranking) or θ_k·CTR × (score price / CTR)
            cost = cost_score * self.theta[None, :] if ecpm else cost_score
            value = self.theta[None, :] * (ctr[:, c] * vpc[:, c])[:, None]
            ok = eligible[:, c]
            report.hindsight_values.append(np.where(ok[:, None], value, 0.0))
            report.hindsight_costs.append(np.where(ok[:, None], cost, np.inf))
