"""Train SB3 bidders (PPO, SAC, DQN) on scenarios/rl_bidding.yaml and score them on its leaderboard.

Each agent trains on adsim/BudgetBidding-v0 built from the scenario (same world as the
leaderboard, different days), single-threaded torch; we report wall-clock and CPU seconds (the
machines are shared, so CPU seconds are the fairer cost), then run the bidding leaderboard with
the trained agents next to truthful bidding and Lagrangian dual pacing.

Run: PYTHONPATH=. python benchmarks/rl_training.py [--steps 30000] [--algos ppo sac dqn]
     [--out runs/rl_training]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from adsim.config import load_scenario
from adsim.experiments.bidding import run_bidding
from adsim.policies.rl import train_rl


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30_000)
    ap.add_argument("--algos", nargs="+", default=["ppo", "sac", "dqn"])
    ap.add_argument("--out", type=Path, default=Path("runs/rl_training"))
    args = ap.parse_args()
    scn = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "rl_bidding.yaml")
    assert scn.bidding is not None
    cands = [c for c in scn.bidding.candidates if c.type != "rl"]
    print(f"{'algo':<5} {'steps':>7} {'wall s':>8} {'cpu s':>8}")
    for algo in args.algos:
        w0, c0 = time.perf_counter(), time.process_time()
        res = train_rl(scn, algo=algo, total_timesteps=args.steps, out=args.out / f"{algo}.pt")
        print(f"{algo:<5} {args.steps:>7} {time.perf_counter() - w0:>8.1f} "
              f"{time.process_time() - c0:>8.1f}")
        cands.append(type(scn.bidding.candidates[-1])(name=algo, type="rl", model=str(res.path)))
    bidding = scn.bidding.model_copy(update={"candidates": cands})
    run = run_bidding(scn.model_copy(update={"bidding": bidding}), args.out, progress=False)
    print()
    print(run.table())
    print(f"\nreproduce: PYTHONPATH=. python benchmarks/rl_training.py --steps {args.steps} "
          f"--algos {' '.join(args.algos)}")


if __name__ == "__main__":
    main()
