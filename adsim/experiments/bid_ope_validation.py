"""``adsim ope-validate`` on a scenario with a ``bid_ope`` section: bid estimators vs exact truth.

For every seed s a fresh day is logged by the exploring bidder (:func:`adsim.experiments.bid_ope.
log_day`); for each log length n in ``validation.sample_sizes`` (the day's first n requests) and
each target rule, every estimator estimates every outcome per request and is compared with the
exact value (:func:`~adsim.experiments.bid_ope.exact_outcomes`):

.. math::
    \\text{rel. bias} = \\overline{(\\hat V_s - V)}/V,\\quad
    \\text{rel. RMSE} = \\sqrt{\\overline{(\\hat V_s - V)^2}}/V,\\quad
    \\text{coverage} = \\overline{1\\{\\text{ci}_{\\text{low}} \\le V \\le \\text{ci}_{\\text{high}}\\}}

(means over seeds, with Monte-Carlo standard errors). Extra exploration widths
(``validation.sigmas``) log a day each at the largest n with the same seed (common random
numbers: the same requests and market prices, other multipliers). With a ``budget``, each seed
also paces the budget from its full log (:func:`~adsim.experiments.bid_ope.pace_budget`) and
reports the estimated daily value and spend of the paced rule beside its exact value and spend,
the day's hindsight optimum OPT and the exact value as "% of OPT".

Outputs: ``summary.csv``, ``estimates.csv`` (per seed), ``budget.csv`` (per seed),
``report.json``, ``error_vs_n.png``, ``coverage.png``, ``error_vs_sigma.png``, ``budget.png``.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adsim.config import Scenario
from adsim.env.auction_world import AuctionWorld
from adsim.env.oracle import hindsight_optimal
from adsim.estimators.bids.kernel import BidOverlapWarning
from adsim.estimators.bids.ope import BidOPE, target_bids
from adsim.experiments.bid_ope import (
    _cfg,
    exact_outcomes,
    log_day,
    make_target,
    pace_budget,
)

__all__ = ["BidValidationResult", "run_bid_validation", "summarise_bids"]

_WORLDS: dict[str, tuple[AuctionWorld, list[Any], dict[str, dict[str, float]]]] = {}


def _setup(scn: Scenario) -> tuple[AuctionWorld, list[Any], dict[str, dict[str, float]]]:
    """World, target bidders and their exact outcomes (cached per process)."""
    key = scn.model_dump_json()
    if key not in _WORLDS:
        aw = AuctionWorld.from_scenario(scn)
        cfg = _cfg(scn)
        targets = [make_target(t, scn, aw.world.spec.design_dim) for t in cfg.targets]
        truth = {t.name: exact_outcomes(scn, aw, t) for t in targets}
        _WORLDS.clear()
        _WORLDS[key] = (aw, targets, truth)
    return _WORLDS[key]


def _ope(scn: Scenario, log: Any, seed: int) -> BidOPE:
    cfg = _cfg(scn)
    return BidOPE(
        log, cfg.estimators, cfg.landscape, cfg.segment_by or None, cfg.bandwidth, cfg.kernel,
        cfg.confidence, cfg.interval, random_state=seed, warn=False,
    )


def _one_seed(args: tuple[Scenario, int]) -> tuple[list[dict], dict | None]:
    scn, s = args
    cfg = _cfg(scn)
    aw, targets, truth = _setup(scn)
    sizes = cfg.validation.sample_sizes
    ex = cfg.logger.exploration
    main_sigma = getattr(ex, "sigma", float("nan"))
    rows: list[dict] = []
    budget_row = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BidOverlapWarning)
        day = log_day(scn, aw, s)
        runs = [(main_sigma, n, day.log.head(n) if n < day.log.n_rounds else day.log)
                for n in sizes if n <= day.log.n_rounds]
        for sig in cfg.validation.sigmas:
            other = log_day(scn, aw, s, sigma=sig).log
            n = min(max(sizes), other.n_rounds)
            runs.append((sig, n, other.head(n) if n < other.n_rounds else other))
        full_ope = None
        for sig, n, log in runs:
            ope = _ope(scn, log, s)
            if sig == main_sigma and log is day.log:
                full_ope = ope
            for t in targets:
                res = ope.evaluate(bids=target_bids(t, log), outcomes=cfg.outcomes, name=t.name)
                for e, y in zip(res.estimates, res.outcomes):
                    rows.append({
                        "target": t.name, "outcome": y, "estimator": e.estimator,
                        "n_rounds": n, "sigma": sig, "seed": s, "truth": truth[t.name][y],
                        "value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high,
                        "bandwidth": e.details.get("bandwidth"), "ess_share": res.overlap.ess_share,
                    })
        if cfg.budget is not None and full_ope is not None:
            b = cfg.budget
            n_day = float(day.log.meta["requests_per_day"])
            pace = pace_budget(full_ope, b.budget, b.lambdas, b.estimator)
            exact = exact_outcomes(scn, aw, bids_fn=lambda r: r.values / (1.0 + pace.lam))
            opt = hindsight_optimal(day.hindsight_values, day.hindsight_costs, b.budget)
            ev, es = exact["value"] * n_day, exact["spend"] * n_day
            budget_row = {
                "seed": s, "budget": b.budget, "lambda_hat": pace.lam,
                "est_value": pace.value, "est_value_ci_low": pace.value_ci[0],
                "est_value_ci_high": pace.value_ci[1], "est_spend": pace.spend,
                "exact_value": ev, "exact_spend": es, "opt_value": opt.value,
                "opt_spend": opt.cost, "pct_opt": 100.0 * ev / opt.value if opt.value > 0 else float("nan"),
                "rel_err_value": (pace.value - ev) / ev, "rel_err_spend": (pace.spend - es) / es,
                "curve": pace.curve[["lambda", "value", "spend"]].to_dict(orient="list"),
            }
    return rows, budget_row


def summarise_bids(raw: pd.DataFrame) -> pd.DataFrame:
    """Bias, RMSE, relative errors and coverage (with MC SEs) per target/outcome/estimator/n/σ."""
    df = raw.assign(
        err=raw["value"] - raw["truth"],
        covered=((raw["ci_low"] <= raw["truth"]) & (raw["truth"] <= raw["ci_high"])).astype(float),
    )
    keys = ["target", "outcome", "estimator", "sigma", "n_rounds"]
    g = df.groupby(keys, sort=False, dropna=False)
    sm = g.agg(
        truth=("truth", "first"), mean_value=("value", "mean"), bias=("err", "mean"),
        err_sd=("err", "std"), mse=("err", lambda e: float(np.mean(np.square(e)))),
        coverage=("covered", "mean"), bandwidth=("bandwidth", "mean"),
        ess_share=("ess_share", "mean"), n_seeds=("seed", "nunique"),
    ).reset_index()
    sm["rmse"] = np.sqrt(sm.pop("mse"))
    sm["rel_bias"] = sm["bias"] / sm["truth"]
    sm["rel_bias_se"] = sm["err_sd"] / np.sqrt(sm["n_seeds"]) / sm["truth"].abs()
    sm["rel_rmse"] = sm["rmse"] / sm["truth"]
    sm["coverage_se"] = np.sqrt(sm["coverage"] * (1 - sm["coverage"]) / sm["n_seeds"])
    return sm


@dataclass
class BidValidationResult:
    """Per-seed estimates, their summary and the per-seed budget pacing results."""

    scenario: Scenario
    raw: pd.DataFrame
    summary: pd.DataFrame
    budget: pd.DataFrame

    def table(self, outcome: str = "value") -> str:
        sm = self.summary[self.summary["outcome"] == outcome]
        cols = ["target", "estimator", "sigma", "n_rounds", "truth", "rel_bias", "rel_rmse",
                "coverage", "n_seeds"]
        df = sm[cols].copy()
        df["rel_bias"] = (100 * df["rel_bias"]).map("{:+.2f}%".format)
        df["rel_rmse"] = (100 * df["rel_rmse"]).map("{:.2f}%".format)
        df["coverage"] = (100 * df["coverage"]).map("{:.1f}%".format)
        df["truth"] = df["truth"].map("{:.5f}".format)
        out = f"outcome: {outcome} per request\n" + df.to_string(index=False)
        if len(self.budget):
            b = self.budget
            out += (
                f"\n\nbudget {b['budget'].iloc[0]:,.0f}/day paced from the log ({len(b)} seeds):"
                f" λ̂ {b['lambda_hat'].mean():.3f} ± {b['lambda_hat'].std():.3f};"
                f" estimated value {b['est_value'].mean():,.1f} vs exact {b['exact_value'].mean():,.1f}"
                f" (mean |rel. error| {100 * b['rel_err_value'].abs().mean():.2f}%, max"
                f" {100 * b['rel_err_value'].abs().max():.2f}%); estimated spend"
                f" {b['est_spend'].mean():,.1f} vs exact {b['exact_spend'].mean():,.1f};"
                f" OPT {b['opt_value'].mean():,.1f}; exact value = {b['pct_opt'].mean():.1f}% of OPT"
            )
        return out

    def plots_png(self) -> dict[str, bytes]:
        from adsim._figures import new_figure

        out: dict[str, bytes] = {}
        sm = self.summary[self.summary["outcome"] == "value"]
        cfg = _cfg(self.scenario)
        main_sigma = getattr(cfg.logger.exploration, "sigma", float("nan"))
        main = sm[(sm["sigma"] == main_sigma) | sm["sigma"].isna()]
        targets = list(dict.fromkeys(sm["target"]))
        from adsim.experiments.plots import plot_error_vs_n

        fig = plot_error_vs_n(main, "logged requests n", "relative RMSE of value (%)")
        out["error_vs_n.png"] = _png(fig)

        n_max = main["n_rounds"].max()
        top = main[main["n_rounds"] == n_max]
        ests = list(dict.fromkeys(top["estimator"]))
        fig, ax = new_figure((1.0 * len(ests) * max(len(targets), 2) / 2 + 3, 3.8))
        width = 0.8 / len(targets)
        x = np.arange(len(ests))
        for j, t in enumerate(targets):
            sub = top[top["target"] == t].set_index("estimator").reindex(ests)
            ax.bar(x + j * width, 100 * sub["coverage"], width, yerr=100 * sub["coverage_se"],
                   label=t, capsize=2)
        conf = 100 * cfg.confidence
        ax.axhline(conf, color="k", lw=1, ls="--", label=f"nominal {conf:.0f}%")
        ax.set_xticks(x + width * (len(targets) - 1) / 2, ests, rotation=30, ha="right")
        ax.set_ylim(max(0, min(50, float(100 * top["coverage"].min()) - 5)), 101)
        ax.set_ylabel(f"coverage of value at n = {n_max:,} (%)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        out["coverage.png"] = _png(fig)

        at_max = sm[sm["n_rounds"] == sm["n_rounds"].max()]
        if at_max["sigma"].nunique() > 1:
            fig, axes = new_figure((4.2 * len(targets), 3.6), 1, len(targets), squeeze=False)
            for ax, t in zip(axes[0], targets):
                sub = at_max[at_max["target"] == t].sort_values("sigma")
                for name, g in sub.groupby("estimator", sort=False):
                    ax.plot(g["sigma"], 100 * g["rel_rmse"], marker="o", label=name)
                ax.set_yscale("log")
                ax.set_title(f"target: {t}", fontsize=10)
                ax.set_xlabel("exploration width σ (log-bid)")
                ax.grid(alpha=0.3, which="both")
            axes[0][0].set_ylabel(f"relative RMSE of value at n = {n_max:,} (%)")
            axes[0][-1].legend(fontsize=7)
            fig.tight_layout()
            out["error_vs_sigma.png"] = _png(fig)

        if len(self.budget):
            b0 = self.budget.iloc[0]
            curve = pd.DataFrame(b0["curve"])
            aw, _, _ = _setup(self.scenario)
            n_day = b0["exact_value"] / exact_outcomes(
                self.scenario, aw, bids_fn=lambda r: r.values / (1 + b0["lambda_hat"]))["value"]
            ex = [exact_outcomes(self.scenario, aw, bids_fn=lambda r, lam=lam: r.values / (1 + lam))
                  for lam in curve["lambda"]]
            fig, axes = new_figure((9, 3.6), 1, 2)
            for ax, y in zip(axes, ("value", "spend")):
                ax.plot(curve["lambda"], curve[y], label="estimated from one log (DR)")
                ax.plot(curve["lambda"], [e[y] * n_day for e in ex], "k--", label="exact")
                ax.set_xlabel("λ (bid = value / (1 + λ))")
                ax.set_ylabel(f"daily {y}")
                ax.grid(alpha=0.3)
            axes[1].axhline(b0["budget"], color="r", lw=1, label="budget")
            axes[1].axvline(b0["lambda_hat"], color="r", lw=1, ls=":", label="λ̂")
            axes[1].legend(fontsize=7)
            fig.tight_layout()
            out["budget.png"] = _png(fig)
        return out

    def write(self, out_dir: str | os.PathLike[str]) -> list[Path]:
        from adsim._io import atomic_dir

        names = ["summary.csv", "estimates.csv", "budget.csv", "report.json"]
        pngs = self.plots_png()
        budget = self.budget.drop(columns=["curve"], errors="ignore")
        with atomic_dir(out_dir, "bid_ope_validation") as tmp:
            self.summary.to_csv(tmp / "summary.csv", index=False)
            self.raw.to_csv(tmp / "estimates.csv", index=False)
            budget.to_csv(tmp / "budget.csv", index=False)
            report = {
                "scenario": self.scenario.model_dump(mode="json", by_alias=True),
                "summary": json.loads(self.summary.to_json(orient="records")),
                "budget": json.loads(budget.to_json(orient="records")),
            }
            (tmp / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
            for name, data in pngs.items():
                (tmp / name).write_bytes(data)
        out = Path(out_dir)
        return [out / n for n in [*names, *pngs]]


def _png(fig: Any) -> bytes:
    from adsim._figures import figure_bytes

    return figure_bytes(fig, "png", dpi=110)


def run_bid_validation(
    scn: Scenario, n_seeds: int | None = None, n_jobs: int = 1, progress: bool = False,
    first_seed: int = 0,
) -> BidValidationResult:
    """Run the bid-OPE validation of a scenario (module docstring) on seeds ``first_seed ..
    first_seed + n_seeds − 1`` (disjoint ranges are independent replications)."""
    cfg = _cfg(scn)
    _setup(scn)  # fail early (exact truth needs a single campaign vs a log-normal market)
    n = cfg.validation.n_seeds if n_seeds is None else n_seeds
    seeds = range(first_seed, first_seed + n)
    jobs = [(scn, s) for s in seeds]
    results: list[tuple[list[dict], dict | None]] = []
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), disable=not progress, desc=scn.name, leave=False, file=sys.stderr)
    if n_jobs > 1:
        with ProcessPoolExecutor(n_jobs) as pool:
            for r in pool.map(_one_seed, jobs, chunksize=1):
                results.append(r)
                bar.update()
    else:
        for job in jobs:
            results.append(_one_seed(job))
            bar.update()
    bar.close()
    raw = pd.DataFrame([row for rows, _ in results for row in rows])
    budget = pd.DataFrame([b for _, b in results if b is not None])
    return BidValidationResult(scn, raw, summarise_bids(raw), budget)
