"""Online regret of bandit policies on the quickstart world: Thompson sampling vs ε-greedy.

Every policy starts knowing nothing and plays the same stream of users (same seed) in batches of
500, learning from each batch (optionally delayed). Regret is the exact pseudo-regret
Σ_t [max_a q(x_t, a) − Σ_a π_t(a|x_t) q(x_t, a)] from the simulator's true click model; the
log–log slope over the second half of the run says how it grows (1 = linear, 0.5 = √T).
ε-greedy uses the same online Laplace logistic model as logistic Thompson sampling, so the
difference is exploration alone.

Run: PYTHONPATH=. python benchmarks/bandit_regret.py [--rounds 50000] [--plot runs/bandit_regret.png]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from adsim.config import load_scenario
from adsim.env.world import World
from adsim.experiments.online import loglog_slope, run_online
from adsim.policies.bandits import (
    EpsilonGreedyPolicy,
    LinearThompsonPolicy,
    LinUCBPolicy,
    LogisticThompsonPolicy,
    OnlineLogisticScorer,
    UniformPolicy,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--ensemble", action="store_true", help="also the torch bootstrap ensemble")
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args()
    scn = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml")
    world = World.from_config(scn.world, np.random.default_rng(scn.seed))
    k, d = world.n_actions, world.spec.design_dim
    policies = {
        "logistic TS (Chapelle & Li)": lambda: LogisticThompsonPolicy(k, d, refit="online"),
        "logistic TS, feedback 10 batches late": lambda: LogisticThompsonPolicy(k, d, refit="online"),
        "linear TS (Agrawal & Goyal)": lambda: LinearThompsonPolicy(k, d, v=0.1),
        "LinUCB α=0.5 (Li et al.)": lambda: LinUCBPolicy(k, d, alpha=0.5),
        "ε-greedy ε=0.1": lambda: EpsilonGreedyPolicy(OnlineLogisticScorer(k, d), k, 0.1),
        "ε-greedy ε=0.05": lambda: EpsilonGreedyPolicy(OnlineLogisticScorer(k, d), k, 0.05),
        "uniform": lambda: UniformPolicy(k),
    }
    if args.ensemble:
        from adsim.policies.ensemble import EnsembleThompsonPolicy

        policies["bootstrap ensemble TS (Osband et al.)"] = lambda: EnsembleThompsonPolicy(
            k, d, n_members=10, steps_per_update=10, seed=0
        )
    marks = [m for m in (1000, 5000, 10_000, 25_000, 50_000, 100_000, 200_000) if m <= args.rounds]
    print(f"{'policy':<40}" + "".join(f"{'R(' + str(m) + ')':>10}" for m in marks)
          + f"{'slope':>7}{'value':>8}{'sec':>6}")
    curves = {}
    for name, make in policies.items():
        t0 = time.perf_counter()
        delay = 10 if "late" in name else 0
        tr = run_online(world, make(), args.rounds, np.random.default_rng(1), args.batch, delay)
        idx = [int(np.searchsorted(tr.rounds, m)) for m in marks]
        slope = loglog_slope(tr.rounds, tr.cum_regret, start=0.5)
        curves[name] = tr
        print(f"{name:<40}" + "".join(f"{tr.cum_regret[i]:>10.1f}" for i in idx)
              + f"{slope:>7.2f}{tr.online_value:>8.4f}{time.perf_counter() - t0:>6.0f}")
    if args.plot is not None:
        from adsim.experiments.bidding_plots import plot_regret_horizons

        first = next(iter(curves.values()))
        sel = np.unique(np.geomspace(1, first.rounds.size, 12).astype(int) - 1)
        plot_regret_horizons(first.rounds[sel], {n: c.cum_regret[sel] for n, c in curves.items()},
                             args.plot, xlabel="rounds T")
        print(f"wrote {args.plot}")
    print(f"\nreproduce: PYTHONPATH=. python benchmarks/bandit_regret.py --rounds {args.rounds}"
          + (" --ensemble" if args.ensemble else ""))


if __name__ == "__main__":
    main()
