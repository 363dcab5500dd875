"""Off-policy estimators: adsim vs Open Bandit Pipeline 0.5.7, like for like, interleaved.

Per repeat, obp (its own venv, a subprocess that loads the same arrays) and then adsim (this
process) time the same work, whole call against whole call, on the same arrays and sizes:

1. **closed form** — the nine estimators DM, IPS, SNIPS, DR, SNDR, Switch-DR, DR-OS and the two
   SLOPE-tuned variants on ``--n`` rounds (default 1,000,000, K = ``--k``): obp = nine
   ``estimate_policy_value`` calls (its input checks included); adsim = one
   ``adsim.estimators.api.evaluate`` call (input checks, overlap diagnostics, standard errors and
   CLT intervals included);
2. **bootstrap, same scheme** — a 95% percentile interval from ``--n-boot`` (1,000) resamples of
   ``--n-boot-rounds`` (100,000) rounds for IPS (and DR): obp ``estimate_interval`` resamples the
   per-round values n times with replacement (``RandomState.choice``) and takes each resample's
   mean; adsim ``estimate(...)`` with ``interval="bootstrap", bootstrap_scheme="multinomial"``
   does the same (n uniform draws with replacement, the resample's mean of the same per-round
   values; the same statistic, since IPS/DR have no normaliser);
3. **double-or-nothing** (adsim's default scheme, weights 0/2) — a *different* scheme, timed the
   same way and reported on its own line with its coverage, measured here on a synthetic world
   with a known value (``--coverage-seeds`` seeds of ``--coverage-rounds`` rounds).

Values: every estimator on both sides, including finite λ (``switch_dr:lambda=5``,
``dr_os:lambda=100``), with the absolute difference.

Reproduce: ``python benchmarks/ope_speed.py --json runs/ope_speed.json`` (``--obp-python PATH``
to use an existing venv; without it one is looked for in, or built into,
``$ADSIM_CACHE_DIR/peers/venv-obp``; ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SWITCH = [float("inf"), 1000.0, 300.0, 100.0, 30.0, 10.0, 3.0, 1.0]
DROS = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, float("inf")]
CLOSED_FORM = ["dm", "ips", "snips", "dr", "sndr", "switch_dr", "dr_os",
               "switch_dr_slope:lambdas=[" + ",".join(map(str, SWITCH)) + "]",
               "dr_os_slope:lambdas=[" + ",".join(map(str, DROS)) + "]"]
#: finite λ, through the same spec syntax as ``adsim ope --estimators`` (obp: the same λ)
FINITE = {"switch_dr:lambda=5": 5.0, "switch_dr:lambda=1": 1.0, "dr_os:lambda=100": 100.0,
          "dr_os:lambda=1": 1.0}
OBP_PACKAGES = ["torch==2.13.0", "scikit-learn", "scipy", "pandas<3", "matplotlib", "seaborn",
                "tqdm", "pyyaml"]


def make_data(n: int, k: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k))
    pi0 = np.exp(logits)
    pi0 /= pi0.sum(1, keepdims=True)
    pi = np.exp(2 * logits + rng.normal(scale=0.5, size=(n, k)))
    pi /= pi.sum(1, keepdims=True)
    u = rng.random(n)
    action = np.minimum((pi0.cumsum(1) < u[:, None]).sum(1), k - 1)
    ctr = 1 / (1 + np.exp(-(logits - 2.5)))
    reward = (rng.random(n) < ctr[np.arange(n), action]).astype(float)
    q_hat = np.clip(ctr + rng.normal(scale=0.02, size=(n, k)), 0, 1)
    return {"action": action, "reward": reward, "pscore": pi0[np.arange(n), action],
            "action_dist": pi, "q_hat": q_hat, "truth_q": ctr}


OBP_SCRIPT = r'''
import json, sys, time, warnings
import numpy as np
warnings.filterwarnings("ignore")
import obp
from obp.ope import (DirectMethod, DoublyRobust, DoublyRobustWithShrinkage,
    DoublyRobustWithShrinkageTuning, InverseProbabilityWeighting, SelfNormalizedDoublyRobust,
    SelfNormalizedInverseProbabilityWeighting, SwitchDoublyRobust, SwitchDoublyRobustTuning)
folder, m, n_boot, seed, values = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
SWITCH, DROS = json.loads(sys.argv[6]), json.loads(sys.argv[7])
d = {k: np.load(f"{folder}/{k}.npy") for k in ("action", "reward", "pscore", "action_dist", "q_hat")}
n = d["action"].shape[0]
def kw(rows):
    return dict(reward=d["reward"][:rows], action=d["action"][:rows], pscore=d["pscore"][:rows],
                action_dist=d["action_dist"][:rows, :, None], position=None,
                estimated_rewards_by_reg_model=d["q_hat"][:rows, :, None])
def nine():
    return {"dm": DirectMethod(), "ips": InverseProbabilityWeighting(),
        "snips": SelfNormalizedInverseProbabilityWeighting(), "dr": DoublyRobust(),
        "sndr": SelfNormalizedDoublyRobust(), "switch_dr": SwitchDoublyRobust(),
        "dr_os": DoublyRobustWithShrinkage(),
        "switch_dr_slope": SwitchDoublyRobustTuning(lambdas=list(SWITCH), tuning_method="slope"),
        "dr_os_slope": DoublyRobustWithShrinkageTuning(lambdas=list(DROS), tuning_method="slope")}
out = {"version": obp.__version__, "n": n}
args = kw(n)
ests = nine()
t, c = time.perf_counter(), time.process_time()
vals = {name: float(e.estimate_policy_value(**args)) for name, e in ests.items()}
out["closed_form_s"], out["closed_form_cpu_s"] = time.perf_counter() - t, time.process_time() - c
if values:
    for spec, lam in json.loads(sys.argv[8]).items():
        cls = SwitchDoublyRobust if spec.startswith("switch_dr") else DoublyRobustWithShrinkage
        vals[spec] = float(cls(lambda_=lam).estimate_policy_value(**args))
    out["values"] = vals
small = kw(m)
for name, est, a in (("ips", InverseProbabilityWeighting(), {k: v for k, v in small.items() if k != "estimated_rewards_by_reg_model"}),
                     ("dr", DoublyRobust(), small)):
    t, c = time.perf_counter(), time.process_time()
    ci = est.estimate_interval(**a, alpha=0.05, n_bootstrap_samples=n_boot, random_state=seed)
    out[f"boot_{name}_s"], out[f"boot_{name}_cpu_s"] = time.perf_counter() - t, time.process_time() - c
    out[f"boot_{name}_ci"] = [ci["95.0% CI (lower)"], ci["95.0% CI (upper)"]]
print(json.dumps(out))
'''


def obp_python(arg: str | None) -> str:
    """obp's venv Python: ``--obp-python``, else the cache venv (built once, README recipe)."""
    if arg:
        if not Path(arg).exists():
            sys.exit(f"--obp-python {arg}: not found")
        return arg
    cache = Path(os.environ.get("ADSIM_CACHE_DIR", Path.home() / ".cache" / "adsim"))
    venv = cache / "peers" / "venv-obp"
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"building obp 0.5.7's venv in {venv} (one-off)", flush=True)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *OBP_PACKAGES], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps",
                        "--ignore-requires-python", "obp==0.5.7"], check=True)
    else:
        print(f"using obp's venv {venv}")
    return str(py)


def run_obp(python: str, folder: Path, m: int, n_boot: int, seed: int, values: bool) -> dict:
    script = folder / "obp_bench.py"
    script.write_text(OBP_SCRIPT)
    p = subprocess.run([python, str(script), str(folder), str(m), str(n_boot), str(seed),
                        "1" if values else "0", json.dumps(SWITCH), json.dumps(DROS),
                        json.dumps(FINITE)],
                       capture_output=True, text=True, timeout=3600,
                       env=dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"))
    if p.returncode:
        sys.exit("obp run failed:\n" + p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_adsim(d: dict, m: int, n_boot: int, seed: int) -> dict:
    from adsim.env.logs import BanditLog
    from adsim.estimators.api import evaluate
    from adsim.estimators.registry import make_estimator

    k = d["action_dist"].shape[1]
    out: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t, c = time.perf_counter(), time.process_time()
        log = BanditLog(d["action"], d["reward"], d["pscore"], k)
        res = evaluate(log, d["action_dist"], d["q_hat"], estimators=CLOSED_FORM, warn=False)
        out["closed_form_s"], out["closed_form_cpu_s"] = (time.perf_counter() - t,
                                                           time.process_time() - c)
        vals = {e.estimator.split("(")[0]: e.value for e in res.estimates}
        for e in evaluate(log, d["action_dist"], d["q_hat"], estimators=list(FINITE),
                          warn=False).estimates:
            vals[e.estimator.replace("(lambda=", ":lambda=").rstrip(")")] = e.value
        out["values"] = vals
        small = BanditLog(d["action"][:m], d["reward"][:m], d["pscore"][:m], k)
        for name in ("ips", "dr"):
            for scheme in ("multinomial", "half"):
                est = make_estimator(name, interval="bootstrap", bootstrap_scheme=scheme,
                                     n_bootstrap=n_boot, random_state=seed, warn=False)
                q = d["q_hat"][:m] if name == "dr" else None
                t, c = time.perf_counter(), time.process_time()
                r = est.estimate(small, d["action_dist"][:m], q)
                key = f"boot_{name}_{scheme}"
                out[f"{key}_s"], out[f"{key}_cpu_s"] = time.perf_counter() - t, time.process_time() - c
                out[f"{key}_ci"] = [r.ci_low, r.ci_high]
    return out


def coverage(seeds: int, n: int, k: int, n_boot: int) -> dict[str, float]:
    """Share of seeds whose 95% bootstrap interval holds the true value, per scheme (IPS, SNIPS)."""
    from adsim.env.logs import BanditLog
    from adsim.estimators.registry import make_estimator

    hits: dict[str, int] = {}
    for s in range(seeds):
        d = make_data(n, k, 10_000 + s)
        truth = float((d["action_dist"] * d["truth_q"]).sum(1).mean())  # value on these contexts
        log = BanditLog(d["action"], d["reward"], d["pscore"], k)
        for name in ("ips", "snips"):
            for scheme in ("multinomial", "half"):
                est = make_estimator(name, interval="bootstrap", bootstrap_scheme=scheme,
                                     n_bootstrap=n_boot, random_state=s, warn=False)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = est.estimate(log, d["action_dist"])
                key = f"{name}_{scheme}"
                hits[key] = hits.get(key, 0) + int(r.ci_low <= truth <= r.ci_high)
    return {k_: v / seeds for k_, v in hits.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="rounds for the closed-form estimators")
    ap.add_argument("--n-boot-rounds", type=int, default=100_000)
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--coverage-seeds", type=int, default=200)
    ap.add_argument("--coverage-rounds", type=int, default=10_000)
    ap.add_argument("--obp-python", default=os.environ.get("ADSIM_OBP_PYTHON"))
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here (flat keys)")
    a = ap.parse_args()
    if a.quick:
        a.n, a.n_boot_rounds, a.repeats, a.coverage_seeds = 50_000, 20_000, 1, 20
    py = obp_python(a.obp_python)
    d = make_data(max(a.n, a.n_boot_rounds), a.k, a.seed)
    d = {k: v[: a.n] for k, v in d.items()}
    load0 = os.getloadavg()[0]
    obp_runs: list[dict] = []
    ours_runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="adsim-ope-") as tmp:
        folder = Path(tmp)
        for key in ("action", "reward", "pscore", "action_dist", "q_hat"):
            np.save(folder / f"{key}.npy", d[key])
        for r in range(a.repeats):  # interleaved: obp, then adsim, per repeat
            obp_runs.append(run_obp(py, folder, a.n_boot_rounds, a.n_boot, a.seed + r, r == 0))
            ours_runs.append(run_adsim(d, a.n_boot_rounds, a.n_boot, a.seed + r))
            print(f"repeat {r + 1}/{a.repeats} done (load {os.getloadavg()[0]:.1f})", flush=True)
    load1 = os.getloadavg()[0]
    cov = coverage(a.coverage_seeds, a.coverage_rounds, a.k, a.n_boot)

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(x[key] for x in runs)

    flat: dict[str, object] = {"n": a.n, "n_boot_rounds": a.n_boot_rounds, "n_boot": a.n_boot,
                               "k": a.k, "repeats": a.repeats, "loadavg_start": load0,
                               "loadavg_end": load1, "obp_version": obp_runs[0]["version"]}
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout.splitlines()
            if line.startswith("Model name:"))
    except (OSError, StopIteration):
        cpu = "?"
    flat["cpu"] = cpu
    print(f"\nadsim vs obp {obp_runs[0]['version']}, same arrays, whole call vs whole call, median of"
          f" {a.repeats} interleaved repeats (wall; CPU time in brackets)")
    print(f"CPU: {cpu} ({os.cpu_count()} cores); 1-min load average {load0:.1f} at start,"
          f" {load1:.1f} at end (shared machine)\n")
    rows = [("closed_form", f"9 closed-form estimators, {a.n:,} rounds, K={a.k}",
             "closed_form", "closed_form")]
    for name in ("ips", "dr"):
        rows.append((f"bootstrap_same_scheme{'' if name == 'ips' else '_dr'}",
                     f"{name.upper()} bootstrap {a.n_boot:,} × {a.n_boot_rounds:,}, both multinomial",
                     f"boot_{name}", f"boot_{name}_multinomial"))
        rows.append((f"bootstrap_double_or_nothing{'' if name == 'ips' else '_dr'}",
                     f"{name.upper()} bootstrap: obp multinomial vs adsim double-or-nothing",
                     f"boot_{name}", f"boot_{name}_half"))
    print(f"{'what':<62}{'obp s':>16}{'adsim s':>16}{'ratio':>8}")
    for key, label, ko, ka in rows:
        to, ta = med(obp_runs, f"{ko}_s"), med(ours_runs, f"{ka}_s")
        co, ca = med(obp_runs, f"{ko}_cpu_s"), med(ours_runs, f"{ka}_cpu_s")
        print(f"{label:<62}{to:>7.3f} [{co:>6.3f}]{ta:>7.3f} [{ca:>6.3f}]{to / ta:>7.1f}×")
        flat[f"ratio_{key}"] = to / ta
        flat[f"ratio_{key}_cpu"] = co / ca
        flat[f"obp_{ko}_s"] = to
        flat[f"adsim_{ka}_s"] = ta
        flat[f"obp_{ko}_s_runs"] = [x[f"{ko}_s"] for x in obp_runs]
        flat[f"adsim_{ka}_s_runs"] = [x[f"{ka}_s"] for x in ours_runs]
    print(f"\ncoverage of 95% bootstrap intervals ({a.coverage_seeds} seeds × {a.coverage_rounds:,}"
          f" rounds, {a.n_boot:,} resamples, true value known):")
    for key, v in cov.items():
        se = (v * (1 - v) / a.coverage_seeds) ** 0.5
        print(f"  {key:<20} {100 * v:5.1f}% ± {100 * se:.1f}")
        flat[f"coverage_{key}"] = v
    print(f"\nvalues on the same {a.n:,} rounds (obp vs adsim):")
    theirs, mine = obp_runs[0]["values"], ours_runs[0]["values"]
    worst = 0.0
    for name, v in theirs.items():
        diff = abs(v - mine[name])
        worst = max(worst, diff / max(1.0, abs(v)))
        print(f"  {name:<22}{v:.15f}  {mine[name]:.15f}  |diff| {diff:.1e}")
    flat["max_relative_value_diff"] = worst
    for key in ("ips", "dr"):
        print(f"  {key.upper()} 95% bootstrap CI: obp {np.round(obp_runs[0][f'boot_{key}_ci'], 5)},"
              f" adsim multinomial {np.round(ours_runs[0][f'boot_{key}_multinomial_ci'], 5)},"
              f" double-or-nothing {np.round(ours_runs[0][f'boot_{key}_half_ci'], 5)}")
    print(f"\nreproduce: python benchmarks/ope_speed.py {' '.join(sys.argv[1:])}".rstrip())
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(flat, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
