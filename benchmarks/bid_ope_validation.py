"""Bid OPE vs the simulator's exact truth: the headline numbers of docs/bid_ope.md.

Runs ``scenarios/bid_ope_validation.yaml`` (second price, 100,000 logged requests per day,
log-normal exploration σ = 0.3) over many seeds at n = 100,000 only (no extra exploration
widths: those, and the error-vs-n curve, come from ``adsim ope-validate`` with fewer seeds) and
prints, per target and estimator, the relative bias, relative RMSE and 95% interval coverage of
the value per request, then the budget-pacing result, and checks the issue's acceptance figures:

* kernel DR on the shaded target's value: relative RMSE <= 2%, coverage in [93%, 97%];
* the off-policy estimate of the budget-paced day within 3% of its exact on-policy value.

    python benchmarks/bid_ope_validation.py --seeds 200 --jobs 2 --out runs/bid_ope_headline
"""

from __future__ import annotations

import argparse
import time

from adsim.config import load_scenario
from adsim.experiments.bid_ope_validation import run_bid_validation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="scenarios/bid_ope_validation.yaml")
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=0, help="Seeds first-seed .. first-seed + seeds − 1.")
    ap.add_argument("--out", default="runs/bid_ope_headline")
    args = ap.parse_args()
    scn = load_scenario(args.scenario)
    assert scn.bid_ope is not None
    n = max(scn.bid_ope.validation.sample_sizes)
    val = scn.bid_ope.validation.model_copy(update={"sample_sizes": [n], "sigmas": []})
    scn = scn.model_copy(update={"bid_ope": scn.bid_ope.model_copy(update={"validation": val})})
    t0 = time.perf_counter()
    res = run_bid_validation(scn, n_seeds=args.seeds, n_jobs=args.jobs, progress=True,
                             first_seed=args.first_seed)
    res.write(args.out)
    print(res.table())
    print(f"\n{args.seeds} seeds in {time.perf_counter() - t0:.0f} s; wrote {args.out}/")
    sm = res.summary
    row = sm[(sm["target"] == "shaded-0.8") & (sm["outcome"] == "value")
             & (sm["estimator"] == "kernel_dr")].iloc[0]
    b = res.budget
    within = (b["rel_err_value"].abs() <= 0.03).mean()
    print(f"kernel DR, shaded-0.8 value: rel. RMSE {100 * row['rel_rmse']:.2f}% (<= 2%),"
          f" coverage {100 * row['coverage']:.1f}% ± {100 * row['coverage_se']:.1f} (93–97%)")
    print(f"budget-paced day: |rel. error| of the estimated value <= 3% in {100 * within:.1f}% of"
          f" seeds; mean |rel. error| {100 * b['rel_err_value'].abs().mean():.2f}%")


if __name__ == "__main__":
    main()
