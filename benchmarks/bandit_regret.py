"""Online regret of every learning bandit on one world, over a long horizon and several seeds.

Every learner starts from its prior and plays the same stream of users and click noise (same
seed; :func:`adsim.experiments.regret.play`) in batches, learning after each batch (optionally
from feedback that arrives late). Regret is the exact pseudo-regret of the actions played,
R(T) = Σ_t max_a q(x_t, a) − q(x_t, a_t), with q the simulator's true click model; the log–log
slope of R over the last two decades says how it grows (1 = linear, 0.5 = √T). ε-greedy uses the
same online Laplace logistic model as logistic Thompson sampling, so their difference is the
exploration alone. The same machinery runs inside a scenario: ``learn: online`` candidates
(scenarios/bandit_online.yaml).

Run: PYTHONPATH=. python benchmarks/bandit_regret.py [--rounds 100000] [--seeds 3]
     [--batch 100] [--world quickstart|test] [--ensemble] [--out runs/bandit_regret]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from adsim.config import WorldConfig, load_scenario
from adsim.env.world import World
from adsim.experiments.regret import (
    format_regret_table,
    regret_curves,
    run_learners,
    summarise_learners,
)
from adsim.policies.bandits import (
    BetaThompsonPolicy,
    EpsilonGreedyPolicy,
    LinearThompsonPolicy,
    LinUCBPolicy,
    LogisticThompsonPolicy,
    OnlineLogisticScorer,
    UniformPolicy,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100_000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--delay", type=int, default=0, help="feedback arrives this many batches late")
    ap.add_argument("--world", choices=["quickstart", "test"], default="test",
                    help="test: the world of tests/experiments/test_online_regret.py")
    ap.add_argument("--ensemble", action="store_true", help="also the torch bootstrap ensemble")
    ap.add_argument("--out", type=Path, default=None, help="write regret.csv, curves and PNG here")
    args = ap.parse_args()
    if args.world == "quickstart":
        scn = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml")
        world = World.from_config(scn.world, np.random.default_rng(scn.seed))
    else:
        cfg = WorldConfig(n_users=2000, n_ads=5, n_dense=3,
                          truth={"type": "parametric", "effect_scale": 2.0})
        world = World.from_config(cfg, np.random.default_rng(3))
    k, d = world.n_actions, world.spec.design_dim
    make = {
        "logistic TS (Chapelle & Li)": lambda s: LogisticThompsonPolicy(
            k, d, n_samples=100, refit="online", seed=s),
        "linear TS v=0.1 (Agrawal & Goyal)": lambda s: LinearThompsonPolicy(k, d, v=0.1, seed=s),
        "Beta-Bernoulli TS (no context)": lambda s: BetaThompsonPolicy(k, seed=s),
        "LinUCB α=0.5 (Li et al.)": lambda s: LinUCBPolicy(k, d, alpha=0.5),
        "ε-greedy ε=0.1": lambda s: EpsilonGreedyPolicy(OnlineLogisticScorer(k, d), k, 0.1),
        "ε-greedy ε=0.05": lambda s: EpsilonGreedyPolicy(OnlineLogisticScorer(k, d), k, 0.05),
        "uniform": lambda s: UniformPolicy(k),
    }
    if args.ensemble:
        from adsim.policies.ensemble import EnsembleThompsonPolicy

        make["bootstrap ensemble TS (Osband et al.)"] = lambda s: EnsembleThompsonPolicy(
            k, d, n_members=8, steps_per_update=10, seed=s)
    seeds = np.random.SeedSequence(2026).spawn(args.seeds)
    batches = dict.fromkeys(make, args.batch)
    t0 = time.perf_counter()
    traces = run_learners(world, make, args.rounds, seeds, batches, args.delay)
    board = summarise_learners(world, traces, batches, decades=2.0)
    print(format_regret_table(board, decades=2.0))
    print(f"\n{time.perf_counter() - t0:.0f} s")
    if args.out is not None:
        from adsim.experiments.regret_plots import plot_regret_curves

        args.out.mkdir(parents=True, exist_ok=True)
        curves = regret_curves(traces)
        board.to_csv(args.out / "regret.csv", index=False)
        curves.to_csv(args.out / "regret_curves.csv", index=False)
        from adsim._figures import save_figure

        save_figure(plot_regret_curves(curves, band_label=f"95% band over {args.seeds} seeds"),
                    args.out / "regret")
        print(f"wrote {args.out}/regret.csv, regret_curves.csv, regret.png, regret.svg")
    print(f"\nreproduce: PYTHONPATH=. python benchmarks/bandit_regret.py --rounds {args.rounds}"
          f" --seeds {args.seeds} --batch {args.batch} --world {args.world}"
          + (f" --delay {args.delay}" if args.delay else "")
          + (" --ensemble" if args.ensemble else ""))


if __name__ == "__main__":
    main()
