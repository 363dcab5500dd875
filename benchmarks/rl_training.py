"""RL baselines inside their scenarios: train (fresh cache) and score them next to the pacers.

For each scenario, `adsim run` trains its `type: rl` candidates from scratch into a fresh build
cache (the same code path as `adsim run FILE` on a fresh clone), then runs the bidding
leaderboard. We print wall-clock and CPU seconds of the whole run (the machines are shared, so
CPU seconds are the fairer cost), each agent's training seconds, and the leaderboard with every
candidate's value as % of the hindsight optimum and as % of dual pacing's value.

Run: PYTHONPATH=. python benchmarks/rl_training.py [scenarios/budget_pacing.yaml ...]
     [--set action_type=log_dual ...] [--out runs/rl_training]
(`--set FIELD=VALUE` changes every RL candidate, e.g. to compare action designs.)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenarios", nargs="*", type=Path,
                    default=[ROOT / "scenarios" / "budget_pacing.yaml",
                             ROOT / "scenarios" / "rl_bidding.yaml"])
    ap.add_argument("--out", type=Path, default=Path("runs/rl_training"))
    ap.add_argument("--set", dest="sets", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="override a field of every RL candidate (YAML value)")
    args = ap.parse_args()
    os.environ["ADSIM_CACHE_DIR"] = tempfile.mkdtemp(prefix="adsim-rl-bench-")
    import yaml

    from adsim.config import load_scenario
    from adsim.experiments.cache import cache_root
    from adsim.experiments.runner import run_scenario

    sets = {k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in args.sets)}
    for path in args.scenarios:
        scn = load_scenario(path)
        if sets and scn.bidding is not None:
            cands = [c.model_validate({**c.model_dump(), **sets}) if c.type == "rl" else c
                     for c in scn.bidding.candidates]
            scn = scn.model_copy(update={"bidding": scn.bidding.model_copy(update={"candidates": cands})})
        w0, c0 = time.perf_counter(), time.process_time()
        run = run_scenario(scn, args.out / scn.name, progress=False)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        board = run.leaderboard.set_index("policy")
        ref = board.loc["dual-pacing", "value"] if "dual-pacing" in board.index else float("nan")
        print(f"\n{path.name}: whole run {wall:.0f} s wall, {cpu:.0f} s CPU (training included)")
        for meta in sorted((cache_root() / "rl").glob("*/agent.json")):
            m = json.loads(meta.read_text())
            if m.get("scenario") == scn.name:
                print(f"  trained {m['algo']:<4} {m['steps']:>7} steps in {m['train_seconds']:.0f} s")
        print(f"  {'policy':<24} {'value':>9} {'% of OPT':>9} {'% of dual pacing':>17}")
        for name, r in board.iterrows():
            print(f"  {name:<24} {r['value']:>9.1f} {r['pct_optimal']:>9.1f}"
                  f" {100 * r['value'] / ref:>17.1f}")
    print(f"\nreproduce: PYTHONPATH=. python benchmarks/rl_training.py "
          f"{' '.join(str(p) for p in args.scenarios)}"
          + (f" --set {' '.join(args.sets)}" if args.sets else ""))


if __name__ == "__main__":
    main()
