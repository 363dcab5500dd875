"""Auction rounds per second of adsim's own implementations, side by side, in one process.

This benchmark does **not** run AuctionGym. The like-for-like comparison with AuctionGym's real
loop (same market, same per-round work, interleaved, in AuctionGym's own venv) is
``benchmarks/auction_vs_auctiongym.py``; its figures are the ones quoted in the docs.

1. **SP_Oracle market** (AuctionGym's ``config/SP_Oracle.json`` drawn by
   :class:`adsim.env.engine.AuctionGymWorld`: 6 truthful oracle bidders with 12 ads each, per-item
   intercepts, 2 participants per round, Gaussian 5-d context, second price):
   * ``per-round loop`` — one Python iteration per round, written here in the style of
     AuctionGym's ``Auction.simulate_opportunity`` but without its log records and utility
     bookkeeping (a rewrite, faster than the real loop; not AuctionGym);
   * ``plain numpy`` — the straightforward vectorisation (float64, gather the participants' ads,
     einsum, argsort for the ranking; no records);
   * ``adsim engine`` — :class:`adsim.env.engine.AuctionEngine` with full per-round records
     (Arrow table) and totals only;
   * ``adsim fast kernel`` — :class:`adsim.env.fastpath.SecondPriceOracleSim` on the same market
     (float32, rounds grouped by participant pair, totals only, truthful oracles only).
2. **GSP**, 5 slots, 50 bidders (one ad each, Gaussian 5-d context, eCPM ranking, position bias):
   :func:`adsim.env.auction.run_auction` with contexts, float32 CTRs and click draws, and alone.
3. **Budget day**: one campaign, 1,000,000 requests in 96 steps, second price against a
   log-normal market (the ``BudgetBidding-v0`` world), and the same day through the Gymnasium env.

Ratios in the table are to the per-round rewrite above, within this one process.

Run: ``python benchmarks/auction_throughput.py`` (``--quick`` for a short run).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adsim.env.auction import run_auction  # noqa: E402
from adsim.env.engine import SP_ORACLE, AuctionEngine, AuctionGymWorld  # noqa: E402
from adsim.env.fastpath import SecondPriceOracleSim  # noqa: E402
from adsim.policies.auctiongym_bidders import bidders_from_config  # noqa: E402


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Rounds per second of ``fn`` (returns rounds done), after one warm-up call."""
    fn()
    done, t0 = 0, time.perf_counter()
    while True:
        done += fn()
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return done / dt


def per_round_loop(sim: SecondPriceOracleSim, rng: np.random.Generator, n: int) -> int:
    for _ in range(n):
        x = rng.normal(0, 1, sim.dim)
        parts = rng.choice(sim.n_agents, 2, replace=False)
        bids, ctrs = [], []
        for a in parts:
            ctr = 1 / (1 + np.exp(-(sim.emb[a] @ x + sim.intercept[a])))
            item = int(np.argmax(ctr * sim.values[a]))
            bids.append(ctr[item] * sim.values[a, item])
            ctrs.append(ctr[item])
        order = np.argsort(bids)[::-1]
        price = bids[order[1]]
        _click = rng.binomial(1, ctrs[order[0]])
        del price, _click
    return n


def plain_numpy(sim: SecondPriceOracleSim, rng: np.random.Generator, n: int) -> int:
    x = rng.standard_normal((n, sim.dim))
    a = rng.integers(0, sim.n_agents, n)
    b = rng.integers(0, sim.n_agents - 1, n)
    b += b >= a
    parts = np.stack([a, b], 1)
    ctr = 1 / (1 + np.exp(-(np.einsum("nd,npid->npi", x, sim.emb[parts]) + sim.intercept[parts])))
    val = ctr * sim.values[parts]
    item, bid = val.argmax(2), val.max(2)
    order = np.argsort(-bid, axis=1)
    _price = np.take_along_axis(bid, order[:, 1:2], 1)[:, 0]
    w = order[:, 0]
    rows = np.arange(n)
    _click = rng.random(n) < ctr[rows, w, item[rows, w]]
    return n


def gsp_round(emb: np.ndarray, values: np.ndarray, theta: np.ndarray,
              rng: np.random.Generator, n: int) -> int:
    """Contexts, float32 CTRs of all 50 ads, the GSP auction and the clicks of the 5 slots."""
    x = rng.standard_normal((n, emb.shape[1]), dtype=np.float32)
    z = x @ emb.T  # (n, 50) float32
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    ctr = np.reciprocal(z, out=z)
    out = run_auction(np.broadcast_to(values, ctr.shape), "gsp", n_slots=len(theta),
                      quality=ctr, reserve=0.01, examination=theta)
    p_click = np.take_along_axis(ctr, np.maximum(out.winners, 0), axis=1) * theta
    _clicks = rng.random(p_click.shape) < p_click
    return n


def gsp_auction_only(bids: np.ndarray, ctr: np.ndarray, theta: np.ndarray) -> int:
    run_auction(bids, "gsp", n_slots=len(theta), quality=ctr, reserve=0.01, examination=theta)
    return bids.shape[0]


def budget_day(n_requests: int) -> tuple[float, float, float]:
    from adsim.config import Scenario, parse_config
    from adsim.env.auction_world import AuctionWorld
    from adsim.env.envs import BudgetBiddingEnv
    from adsim.env.oracle import hindsight_optimal
    from adsim.policies.factory import make_bidding_policy as make_bidder

    auction = {
        "market": {"type": "lognormal", "mu": -3.0, "sigma": 0.6},
        "campaigns": [{"name": "me", "budget": 400.0, "value_per_click": 2.0}],
        "traffic": {"n_requests": n_requests, "n_steps": 96},
    }
    scn = parse_config({"name": "b", "world": {"n_users": 50_000, "n_ads": 4},
                        "auction": auction}, Scenario)
    aw = AuctionWorld.from_scenario(scn)
    bidders = [make_bidder(c.bidder) for c in scn.auction.campaigns]
    t0 = time.perf_counter()
    aw.reset(np.random.default_rng(0), bidders)
    reps = []
    while not aw.done:
        reps.append(aw.run_step(bidders))
    t_day = time.perf_counter() - t0
    t0 = time.perf_counter()
    hindsight_optimal(np.concatenate([r.hindsight_values[0] for r in reps]),
                      np.concatenate([r.hindsight_costs[0] for r in reps]), 400.0)
    t_oracle = time.perf_counter() - t0
    env = BudgetBiddingEnv(world={"n_users": 50_000, "n_ads": 4}, auction=auction)
    t0 = time.perf_counter()
    env.reset(seed=0)
    done = False
    while not done:
        _, _, term, trunc, _ = env.step(np.zeros(1, np.float32))
        done = term or trunc
    t_env = time.perf_counter() - t0
    return t_day, t_oracle, t_env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter timing windows")
    ap.add_argument("--seconds", type=float, default=None, help="timing window per row")
    args = ap.parse_args()
    secs = args.seconds or (0.5 if args.quick else 2.0)
    rng = np.random.default_rng(0)
    world = AuctionGymWorld.from_config(SP_ORACLE)
    sim = SecondPriceOracleSim.from_world(world)

    rows: list[tuple[str, str, float]] = []
    loop = rate(lambda: per_round_loop(sim, rng, 2000), secs)
    rows.append(("SP_Oracle", "per-round loop (a rewrite, not AuctionGym)", loop))
    for b in (1_024, 16_384, 131_072):
        r = rate(lambda: plain_numpy(sim, rng, b), secs)
        rows.append(("SP_Oracle", f"plain numpy, batch {b:,}", r))
    eng = AuctionEngine(world, bidders_from_config(SP_ORACLE, 0), 0)

    def engine(b: int, records: bool) -> int:
        res = eng.run(b, records=records)
        if res.records is not None:
            res.records.to_arrow()
        return b

    for b in (16_384, 131_072):
        rows.append(("SP_Oracle", f"adsim engine + records (Arrow), batch {b:,}",
                     rate(lambda: engine(b, True), secs)))
        rows.append(("SP_Oracle", f"adsim engine, totals only, batch {b:,}",
                     rate(lambda: engine(b, False), secs)))
    for b in (16_384, 262_144, 1_048_576):
        s = SecondPriceOracleSim.from_world(world, chunk=min(b, 65_536))
        r = rate(lambda: s.simulate(b, rng).n_rounds, secs)
        rows.append(("SP_Oracle", f"adsim fast kernel (totals only), batch {b:,}", r))
    g_rng = np.random.default_rng(2)
    emb = g_rng.standard_normal((50, 5)).astype(np.float32)
    values = g_rng.lognormal(0.0, 0.5, 50)
    theta = 0.7 ** np.arange(5)
    for b in (1_024, 16_384, 131_072):
        rows.append(("GSP 5 slots, 50 bidders", f"contexts+CTR+auction+clicks, batch {b:,}",
                     rate(lambda: gsp_round(emb, values, theta, rng, b), secs)))
    for b in (16_384, 131_072):
        ctr = g_rng.random((b, 50)) * 0.1
        bids = np.broadcast_to(values, ctr.shape)
        rows.append(("GSP 5 slots, 50 bidders", f"run_auction only, batch {b:,}",
                     rate(lambda: gsp_auction_only(bids, ctr, theta), secs)))

    import os

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)")
    print(f"{'setting':<26} {'implementation':<50} {'rounds/s':>14} {'× rewrite':>10}")
    print("-" * 103)
    for setting, impl, r in rows:
        ratio = f"{r / loop:,.0f}×" if setting == "SP_Oracle" else ""
        print(f"{setting:<26} {impl:<50} {r:>14,.0f} {ratio:>10}")
    print("\n(× rewrite = relative to the per-round rewrite above, not to AuctionGym; for AuctionGym"
          " itself run benchmarks/auction_vs_auctiongym.py)")

    n_req = 200_000 if args.quick else 1_000_000
    t_day, t_oracle, t_env = budget_day(n_req)
    print(f"budget day, {n_req:,} requests, 96 steps: simulation {t_day:.2f} s, "
          f"hindsight oracle {t_oracle:.2f} s, through BudgetBidding-v0 {t_env:.2f} s "
          f"(target < 10 s for 1M)")
    quick = " --quick" if args.quick else ""
    print(f"\nreproduce: python benchmarks/auction_throughput.py{quick}")


if __name__ == "__main__":
    main()
