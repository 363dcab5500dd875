"""adsim's auction engine against the real AuctionGym loop, same markets, interleaved.

Both sides, per repeat, one after the other (the machine is shared, so they are interleaved and
the load is printed):

* **AuctionGym** (amzn/auction-gym, its source in ``--auctiongym-src``, run with its own Python
  in a scratch venv): its ``bench_loop.py`` times ``Auction.simulate_opportunity`` for ``--ag-rounds``
  rounds (draw a context, every participant bids, allocate, price, click, one log record per
  participant, net/gross utility per agent).
* **adsim**: :class:`adsim.env.engine.AuctionEngine` on the same config (the same ads, intercepts
  and values, drawn from the config's seed as AuctionGym does), ``--rounds`` rounds in batches of
  ``--batch``: (a) with full per-round records built into an Arrow table, (b) totals only; and for
  ``SP_Oracle`` (c) the totals-only kernel :class:`adsim.env.fastpath.SecondPriceOracleSim` on
  the same market (truthful oracles only; no records, no pluggable bidders).

Two configs: AuctionGym's ``config/SP_Oracle.json`` (6 truthful oracle bidders, second price) and
a learning-bidder config, ``FP_Oracle_EmpiricalShaded`` (``SP_Oracle`` with first price and
AuctionGym's ``EmpiricalShadedBidder``, γ ~ N(γ_prev, 0.02²) per bid, γ_prev learnt between
iterations), written to a temporary file in AuctionGym's config format.

Then both sides' outputs: the per-round record fields each produces, and the world statistics —
clicks and revenue per round with standard errors and z-scores (AuctionGym's loop via
``benchmarks/auctiongym_driver.py``, which also runs AuctionGym's agent updates between
iterations for the learning config, next to :meth:`AuctionEngine.run_iterations`).

Ratios are the median adsim rounds/s over repeats ÷ the median AuctionGym rounds/s (wall clock,
each side's loop only; Python start-up and imports excluded on both sides; every run's figure is
in the JSON).

Reproduce: ``python benchmarks/auction_vs_auctiongym.py --json runs/auction_vs_auctiongym.json``
(``--auctiongym-python PATH`` to use an existing venv; without it one is looked for in, or built
into, ``$ADSIM_CACHE_DIR/peers/venv-auctiongym``; ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adsim.env.engine import AuctionEngine, AuctionGymWorld, load_auctiongym_config  # noqa: E402
from adsim.env.fastpath import SecondPriceOracleSim  # noqa: E402
from adsim.policies.auctiongym_bidders import bidders_from_config  # noqa: E402

AG_PACKAGES = ["torch==2.13.0", "numpy", "scipy", "scikit-learn", "numba", "seaborn",
               "matplotlib", "tqdm", "pandas"]


def learning_config(sp_oracle: dict) -> dict:
    cfg = json.loads(json.dumps(sp_oracle))
    cfg["allocation"] = "FirstPrice"
    cfg["agents"][0]["name"] = "Oracle, empirical shading"
    cfg["agents"][0]["bidder"] = {"type": "EmpiricalShadedBidder",
                                  "kwargs": {"gamma_sigma": 0.02, "init_gamma": 1.0}}
    cfg["output_dir"] = "results/FP_Oracle_EmpiricalShaded/"
    return cfg


def find_auctiongym_src(arg: str | None) -> Path:
    cands = [Path(arg)] if arg else [
        Path(os.environ["ADSIM_AUCTIONGYM_SRC"])] if os.environ.get("ADSIM_AUCTIONGYM_SRC") else []
    cands += [REPO.parent / "shared/peers/auction-gym", REPO.parents[1] / "shared/peers/auction-gym"]
    for c in cands:
        if (c / "src" / "Auction.py").exists() and (c / "bench_loop.py").exists():
            return c
    sys.exit("AuctionGym source not found (looked in: " + ", ".join(map(str, cands))
             + "); pass --auctiongym-src PATH (a checkout with src/ and bench_loop.py)")


def auctiongym_python(arg: str | None) -> str:
    """The Python of AuctionGym's venv: ``--auctiongym-python``, else the cache venv (built once)."""
    if arg:
        if not Path(arg).exists():
            sys.exit(f"--auctiongym-python {arg}: not found")
        return arg
    cache = Path(os.environ.get("ADSIM_CACHE_DIR", Path.home() / ".cache" / "adsim"))
    venv = cache / "peers" / "venv-auctiongym"
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"building AuctionGym's venv in {venv} (one-off; pip install {' '.join(AG_PACKAGES)})",
              flush=True)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *AG_PACKAGES], check=True)
    else:
        print(f"using AuctionGym's venv {venv}")
    return str(py)


def _peer(python: str, src: Path, args: list[str]) -> dict:
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    p = subprocess.run([python, *args], cwd=src, env=env, capture_output=True, text=True,
                       timeout=3600)
    if p.returncode:
        sys.exit(f"AuctionGym run failed ({' '.join(args)}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def auctiongym_rate(python: str, src: Path, cfg_path: Path, rounds: int) -> float:
    return float(_peer(python, src, ["bench_loop.py", str(cfg_path), str(rounds)])["rounds_per_sec"])


def adsim_rate(cfg: dict, mode: str, n_rounds: int, batch: int, seed: int) -> dict:
    """Rounds/s of adsim on ``cfg``: ``records`` (Arrow table per batch), ``totals`` or ``kernel``."""
    world = AuctionGymWorld.from_config(cfg)
    if mode == "kernel":
        sim = SecondPriceOracleSim.from_world(world, chunk=min(batch, 65_536))
        rng = np.random.default_rng(seed)
        sim.simulate(10_000, rng)  # warm-up
        t, c = time.perf_counter(), time.process_time()
        done = 0
        while done < n_rounds:
            done += sim.simulate(min(batch, n_rounds - done), rng).n_rounds
    else:
        eng = AuctionEngine(world, bidders_from_config(cfg, seed), seed)
        eng.run(1_000, records=mode == "records")  # warm-up
        t, c = time.perf_counter(), time.process_time()
        done = 0
        while done < n_rounds:
            res = eng.run(min(batch, n_rounds - done), records=mode == "records")
            if res.records is not None:
                res.records.to_arrow()
            done += res.totals.n_rounds
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"rounds_per_s": done / wall, "cpu_rounds_per_s": done / cpu}


def adsim_stats(cfg: dict, n_iter: int, rounds: int, seed: int) -> list[dict]:
    """Per-iteration clicks, revenue (+ sums of squares), utilities, γ and timings of adsim."""
    world = AuctionGymWorld.from_config(cfg)
    bidders = bidders_from_config(cfg, seed)
    eng = AuctionEngine(world, bidders, seed)
    out = []
    for _ in range(n_iter):
        t = time.perf_counter()
        res = eng.run(rounds, records=True)
        t_rounds = time.perf_counter() - t
        rec = res.records
        price = rec.price[:, 0]
        t = time.perf_counter()
        eng.update_bidders(res)
        t_upd = time.perf_counter() - t
        out.append({"seconds_rounds": t_rounds, "seconds_update": t_upd, "rounds": rounds,
                    "revenue": res.totals.revenue, "revenue_sq": float((price ** 2).sum()),
                    "clicks": float(res.totals.clicks),
                    "net": res.totals.net_utility.tolist(), "gross": res.totals.gross_utility.tolist(),
                    "gamma": [getattr(b, "gamma", None) for b in bidders]})
    return out


def _mean_se(total: float, total_sq: float, n: int) -> tuple[float, float]:
    m = total / n
    var = max(total_sq / n - m * m, 0.0) * n / (n - 1)
    return m, (var / n) ** 0.5


def compare_stats(ag: dict, ours: dict) -> dict:
    """Clicks and revenue per round on both sides, with SEs and z = Δ / √(se₁² + se₂²)."""
    out = {}
    for key, sq in (("clicks", "clicks"), ("revenue", "revenue_sq")):
        m1, s1 = _mean_se(ag[key], ag[sq], ag["rounds"])
        m2, s2 = _mean_se(ours[key], ours[sq], ours["rounds"])
        out[key] = (m1, s1, m2, s2, (m2 - m1) / (s1 * s1 + s2 * s2) ** 0.5)
    return out


def machine() -> dict:
    cpu = platform.processor() or "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpu": cpu, "n_cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--auctiongym-python", default=os.environ.get("ADSIM_AUCTIONGYM_PYTHON"))
    ap.add_argument("--auctiongym-src", default=None)
    ap.add_argument("--ag-rounds", type=int, default=20_000, help="AuctionGym rounds per timing")
    ap.add_argument("--rounds", type=int, default=2_000_000, help="adsim rounds per timing")
    ap.add_argument("--batch", type=int, default=131_072, help="adsim rounds per batch")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--stat-rounds", type=int, default=20_000,
                    help="rounds per iteration for the world statistics (both sides)")
    ap.add_argument("--iters", type=int, default=3, help="iterations of the learning run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here (flat keys)")
    a = ap.parse_args()
    if a.quick:
        a.ag_rounds, a.rounds, a.batch, a.stat_rounds = 2_000, 200_000, 65_536, 5_000
    src = find_auctiongym_src(a.auctiongym_src)
    py = auctiongym_python(a.auctiongym_python)
    sp = load_auctiongym_config(src / "config" / "SP_Oracle.json")
    configs = {"SP_Oracle": sp, "FP_Oracle_EmpiricalShaded": learning_config(sp)}
    tmp = Path(tempfile.mkdtemp(prefix="adsim-ag-"))
    paths = {}
    for name, cfg in configs.items():
        paths[name] = tmp / f"{name}.json"
        paths[name].write_text(json.dumps(cfg))
    start = machine()
    runs: dict[str, list[float]] = {}

    def add(key: str, v: float) -> None:
        runs.setdefault(key, []).append(v)

    for r in range(a.repeats):  # interleaved: each side once per config per repeat
        for name, cfg in configs.items():
            add(f"{name}/auctiongym", auctiongym_rate(py, src, paths[name], a.ag_rounds))
            for mode in ("records", "totals") + (("kernel",) if name == "SP_Oracle" else ()):
                res = adsim_rate(cfg, mode, a.rounds, a.batch, a.seed + r)
                add(f"{name}/adsim_{mode}", res["rounds_per_s"])
                add(f"{name}/adsim_{mode}_cpu", res["cpu_rounds_per_s"])
        print(f"repeat {r + 1}/{a.repeats} done (load {os.getloadavg()[0]:.1f})", flush=True)
    end = machine()

    # outputs and world statistics
    ag_sp = _peer(py, src, [str(REPO / "benchmarks" / "auctiongym_driver.py"), str(paths["SP_Oracle"]),
                            str(a.stat_rounds), "1"])
    world = AuctionGymWorld.from_config(sp)
    same_market = (np.array(ag_sp["items"]) == world.items).all() and (
        np.array(ag_sp["values"]) == world.values).all()
    ours_sp = adsim_stats(sp, 1, max(a.stat_rounds, 200_000), a.seed)
    ag_learn = _peer(py, src, [str(REPO / "benchmarks" / "auctiongym_driver.py"),
                               str(paths["FP_Oracle_EmpiricalShaded"]), str(a.stat_rounds), str(a.iters)])
    ours_learn = adsim_stats(configs["FP_Oracle_EmpiricalShaded"], a.iters, a.stat_rounds, a.seed)

    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"\nadsim AuctionEngine vs AuctionGym (amzn/auction-gym 62216d8, its own loop), "
          f"median of {a.repeats} interleaved repeats")
    print(f"CPU: {start['cpu']} ({start['n_cpus']} cores); 1-min load average {start['loadavg_1m']:.1f}"
          f" at start, {end['loadavg_1m']:.1f} at end (shared machine: wall times include waiting)")
    print(f"sizes: AuctionGym {a.ag_rounds:,} rounds per timing (bench_loop.py); adsim {a.rounds:,}"
          f" rounds per timing in batches of {a.batch:,}\n")
    print(f"{'config':<27}{'side':<52}{'rounds/s':>13}{'ratio':>9}")
    print("-" * 101)
    labels = {"auctiongym": "AuctionGym simulate_opportunity loop (logs, utility)",
              "adsim_records": "adsim engine, full per-round records (Arrow table)",
              "adsim_totals": "adsim engine, totals only",
              "adsim_kernel": "adsim fastpath kernel, totals only (truthful only)"}
    flat: dict[str, object] = {}
    for name in configs:
        base = med[f"{name}/auctiongym"]
        for side in ("auctiongym", "adsim_records", "adsim_totals", "adsim_kernel"):
            key = f"{name}/{side}"
            if key not in med:
                continue
            ratio = med[key] / base
            print(f"{name:<27}{labels[side]:<52}{med[key]:>13,.0f}{ratio:>8.0f}×")
            flat[f"{name}_{side}_rounds_per_s"] = med[key]
            flat[f"{name}_{side}_rounds_per_s_runs"] = runs[key]
            if side != "auctiongym":
                flat[f"{name}_{side}_cpu_rounds_per_s"] = med[key + "_cpu"]
                flat[f"ratio_{name}_{side.removeprefix('adsim_')}"] = ratio
    flat["ratio_records"] = med["SP_Oracle/adsim_records"] / med["SP_Oracle/auctiongym"]
    flat["ratio_totals"] = med["SP_Oracle/adsim_kernel"] / med["SP_Oracle/auctiongym"]
    flat["ratio_totals_engine"] = med["SP_Oracle/adsim_totals"] / med["SP_Oracle/auctiongym"]
    flat["ratio_records_learning"] = (med["FP_Oracle_EmpiricalShaded/adsim_records"]
                                      / med["FP_Oracle_EmpiricalShaded/auctiongym"])
    print(f"\nSP_Oracle: {flat['ratio_records']:.0f}× with full per-round records (target ≥ 100×),"
          f" {flat['ratio_totals']:.0f}× totals only with the kernel, {flat['ratio_totals_engine']:.0f}×"
          f" totals only with the engine (target ≥ 300×)")

    print("\nper-round outputs (one record per participant per round):")
    ag_fields = list(ag_sp["sample_rounds"][0][0])
    rec = AuctionEngine(world, bidders_from_config(sp, 0), 0).run(2).records
    cols = rec.to_arrow().column_names
    print(f"  AuctionGym ImpressionOpportunity: {', '.join(ag_fields)}; per agent net/gross utility")
    print(f"  adsim RoundRecords (Arrow):        {', '.join(cols)}; per agent net/gross utility,"
          " wins, spend, clicks")
    for side, rows in (("AuctionGym", ag_sp["sample_rounds"][0]),
                       ("adsim", rec.to_arrow().slice(0, 2).to_pylist())):
        for row in rows:
            show = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                    if k not in ("context",) and not k.startswith("x_")}
            print(f"  {side:<11}{show}")
    print(f"  same market (ads, intercepts, values) as AuctionGym for SP_Oracle.json: {bool(same_market)}")

    print("\nworld statistics per round (mean ± s.e.; z = difference / combined s.e.):")
    print(f"{'config / iteration':<34}{'stat':<9}{'AuctionGym':>20}{'adsim':>20}{'z':>7}")
    rows_stats = [("SP_Oracle", ag_sp["iterations"][0], ours_sp[0])]
    rows_stats += [(f"FP_EmpiricalShaded it {i}", g, o)
                   for i, (g, o) in enumerate(zip(ag_learn["iterations"], ours_learn))]
    for label, g, o in rows_stats:
        for stat, (m1, s1, m2, s2, z) in compare_stats(g, o).items():
            print(f"{label:<34}{stat:<9}{m1:>12.4f} ± {s1:.4f}{m2:>12.4f} ± {s2:.4f}{z:>7.1f}")
            flat[f"{label.replace(' ', '_')}_{stat}_per_round_auctiongym"] = m1
            flat[f"{label.replace(' ', '_')}_{stat}_per_round_adsim"] = m2
            flat[f"{label.replace(' ', '_')}_{stat}_z"] = z
    print("  (iteration 0 of the learning config: both sides bid with γ ~ N(1, 0.02²); later"
          " iterations follow each side's own learnt γ)")
    print("\nlearning run (FP_Oracle_EmpiricalShaded): mean γ after each update, and time per"
          f" iteration of {a.stat_rounds:,} rounds + updates")
    for i, (g, o) in enumerate(zip(ag_learn["iterations"], ours_learn)):
        print(f"  it {i}: AuctionGym γ {np.mean(g['gamma']):.3f}, {g['seconds_rounds']:.2f} s rounds +"
              f" {g['seconds_update']:.3f} s update | adsim γ {np.mean(o['gamma']):.3f},"
              f" {o['seconds_rounds']:.3f} s rounds + {o['seconds_update']:.4f} s update")
    flat.update({"auctiongym_rounds_per_timing": a.ag_rounds, "adsim_rounds_per_timing": a.rounds,
                 "adsim_batch": a.batch, "repeats": a.repeats, "cpu": start["cpu"],
                 "n_cpus": start["n_cpus"], "loadavg_start": start["loadavg_1m"],
                 "loadavg_end": end["loadavg_1m"], "same_market": bool(same_market)})
    cmd = "python benchmarks/auction_vs_auctiongym.py " + " ".join(sys.argv[1:])
    print(f"\nreproduce: {cmd.strip()}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(flat, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
