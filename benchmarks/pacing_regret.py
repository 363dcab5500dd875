"""Regret of Lagrangian dual pacing over horizons: is it sublinear?

Balseiro, Lu & Mirrokni (2020) prove O(√T) regret for dual mirror descent on i.i.d. requests
with step size η ∝ 1/√T. We grow the horizon T (decision steps of a day, each with the same
number of requests, budget ∝ requests, flat traffic: a stationary second-price market),
run dual pacing with η = η₀/√(T/T₀), and measure regret = OPT − value against the hindsight
optimum of each day (mean over seeds). The log–log slope of regret against T is the growth rate:
1 = linear, 0.5 = √T. Also prints % of OPT and budget use on the budget_pacing scenario
over its 5 leaderboard days.

Run: PYTHONPATH=. python benchmarks/pacing_regret.py [--seeds 3] [--plot runs/pacing_regret.png]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from adsim.config import Scenario, load_scenario, parse_config
from adsim.env.auction_world import AuctionWorld
from adsim.experiments.bidding import evaluate_day, run_bidding, run_day
from adsim.experiments.online import loglog_slope
from adsim.policies.bidding import DualPacingBidder, TruthfulBidder

REQUESTS_PER_STEP = 250
HORIZONS = [25, 50, 100, 200, 400, 800]


def horizon_scenario(steps: int) -> Scenario:
    n = REQUESTS_PER_STEP * steps
    return parse_config({
        "name": f"horizon-{steps}", "seed": 4,
        "world": {"n_users": 5000, "n_ads": 4, "n_dense": 5},
        "auction": {
            "mechanism": "second_price",
            "market": {"type": "lognormal", "mu": -3.4, "sigma": 0.6},
            "campaigns": [{"name": "agent", "budget": 0.003 * n}],  # ≈ 1/3 of truthful spend
            "traffic": {"n_requests": n, "n_steps": steps, "diurnal": [1.0]},
        },
    }, Scenario)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    regrets: dict[str, list[float]] = {"dual pacing (η ∝ 1/√T)": [], "truthful": []}
    print(f"{'T (steps)':>9} {'requests':>9} {'OPT':>9} {'dual regret':>12} {'% OPT':>6} "
          f"{'budget use':>10} {'truthful regret':>15}")
    for steps in HORIZONS:
        aw = AuctionWorld.from_scenario(horizon_scenario(steps))
        budget = float(aw.campaigns.budgets[0])
        eta = 0.5 / np.sqrt(steps / HORIZONS[0])
        rd, rt, pct, use, opt = [], [], [], [], []
        for s in range(args.seeds):
            pol = DualPacingBidder(eta, 1.0, "entropic", max_step_spend=3.0)
            day = evaluate_day(aw, run_day(aw, [pol], np.random.default_rng(s)), [0])
            rd.append(day.metrics["regret"])
            pct.append(day.metrics["pct_optimal"])
            use.append(day.metrics["spend"] / budget)
            opt.append(day.metrics["hindsight_value"])
            tday = evaluate_day(aw, run_day(aw, [TruthfulBidder()], np.random.default_rng(s)), [0])
            rt.append(tday.metrics["regret"])
        regrets["dual pacing (η ∝ 1/√T)"].append(float(np.mean(rd)))
        regrets["truthful"].append(float(np.mean(rt)))
        print(f"{steps:>9} {steps * REQUESTS_PER_STEP:>9} {np.mean(opt):>9.1f} {np.mean(rd):>12.2f} "
              f"{np.mean(pct):>6.2f} {np.mean(use):>10.4f} {np.mean(rt):>15.1f}")
    h = np.array(HORIZONS, dtype=float)
    for name, r in regrets.items():
        print(f"log-log slope of regret vs T, {name}: {loglog_slope(h, np.array(r), start=0.0):.3f}")
    if args.plot is not None:
        from adsim._figures import save_figure
        from adsim.experiments.bidding_plots import plot_regret_horizons

        fig = plot_regret_horizons(h, {k: np.array(v) for k, v in regrets.items()},
                                   xlabel="horizon T (decision steps, 250 requests each)")
        print("wrote " + ", ".join(map(str, save_figure(fig, args.plot))))

    scn = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "budget_pacing.yaml")
    run = run_bidding(scn, progress=False)
    row = run.leaderboard.set_index("policy").loc["dual-pacing"]
    print(f"\nbudget_pacing.yaml, dual-pacing over {int(row['n_seeds'])} days: "
          f"{row['pct_optimal']:.2f} ± {row['pct_optimal_ci']:.2f} % of OPT, budget use "
          f"{row['budget_use']:.4f} ± {row['budget_use_ci']:.4f}")
    print(f"\n({time.perf_counter() - t0:.0f} s)  reproduce: PYTHONPATH=. python benchmarks/pacing_regret.py "
          f"--seeds {args.seeds}")


if __name__ == "__main__":
    main()
