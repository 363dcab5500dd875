"""The bidding leaderboard: candidate bidding policies over seeded days, scored against hindsight.

For an auction scenario with a ``bidding`` section, every candidate bids for the ``agent``
campaign (or, ``apply_to: all``, every campaign runs its own copy) through ``n_seeds`` simulated
days. Day ``s`` uses the same traffic seed for every candidate (common random numbers). Per day
and campaign we record

* value won (expected: Σ θ_slot·CTR·value per click over won impressions — the quantity the
  hindsight oracle optimises — and realised: clicks × value + landed conversions × value),
  clicks, conversions, spend, budget use = spend / budget, CPC, CPA, ROAS = realised value /
  spend;
* the **hindsight optimum** OPT: the best expected value any policy could have won on that day's
  realised auctions with the budget (:func:`adsim.env.oracle.hindsight_optimal`, the LP /
  fractional knapsack), ``pct_optimal = 100·value/OPT`` and ``regret = OPT − value``;
* per step: cumulative spend against the ideal pacing line B·Σ s_τ, the policy's multiplier λ
  (if it has one), and cumulative regret against the hindsight allocation.

The leaderboard gives each metric's mean and a Student-t confidence half-width over seeds. With
``apply_to: all`` the metrics are sums over campaigns (each campaign against its own hindsight
best response to the others' realised bids).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adsim._io import atomic_dir, write_json, write_with
from adsim.config import BidderPolicyConfig, Scenario
from adsim.env.auction_world import AuctionWorld, StepReport
from adsim.env.oracle import hindsight_optimal
from adsim.errors import ConfigError
from adsim.experiments.world_models import scenario_world
from adsim.policies.base import BiddingPolicy
from adsim.policies.factory import make_bidding_policy

__all__ = [
    "BiddingRun",
    "DayResult",
    "METRICS",
    "evaluate_day",
    "format_bidding_table",
    "run_bidding",
    "run_day",
    "summarise",
]

METRICS = [
    "value", "value_realised", "clicks", "conversions", "spend", "budget_use", "cpc", "cpa",
    "roas", "hindsight_value", "pct_optimal", "regret",
]


@dataclass
class DayResult:
    """One candidate's day (summed over the campaigns it controls) and its per-step curves."""

    metrics: dict[str, float]
    spend_curve: np.ndarray  # (n_steps,) cumulative spend / budget (first controlled campaign)
    ideal_curve: np.ndarray  # (n_steps,) ideal pacing line (share of budget)
    regret_curve: np.ndarray  # (n_steps,) cumulative OPT − value (summed)
    lambdas: list[float] = field(default_factory=list)
    per_campaign: list[dict[str, float]] = field(default_factory=list)


def run_day(
    aw: AuctionWorld, bidders: list[BiddingPolicy], rng: np.random.Generator
) -> list[StepReport]:
    """Simulate one day with one bidder per campaign; the world enforces every budget."""
    aw.reset(rng, bidders)
    reports = []
    while not aw.done:
        reports.append(aw.run_step(bidders))
    return reports


def _safe_div(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")


def evaluate_day(aw: AuctionWorld, reports: list[StepReport], campaigns: list[int]) -> DayResult:
    """Metrics of the given campaigns over a simulated day (see the module docstring)."""
    per = []
    regret_total = np.zeros(len(reports))
    spend_curve = ideal = None
    sizes = np.array([r.n_requests for r in reports])
    for c in campaigns:
        outs = [r.outcomes[c] for r in reports]
        budget = float(aw.campaigns.budgets[c])
        exp_val = np.array([o.expected_value for o in outs])
        cost = np.array([o.cost for o in outs])
        h = hindsight_optimal(
            np.concatenate([r.hindsight_values[c] for r in reports]),
            np.concatenate([r.hindsight_costs[c] for r in reports]),
            budget,
        )
        v_all = np.concatenate([r.hindsight_values[c] for r in reports])
        cum_opt = np.concatenate([[0.0], np.cumsum((h.x * v_all).sum(axis=1))])
        ends = np.cumsum(sizes)
        opt_steps = cum_opt[ends] - cum_opt[ends - sizes]  # OPT's value in each step
        regret_total += np.cumsum(opt_steps) - np.cumsum(exp_val)
        value, spend = float(exp_val.sum()), float(cost.sum())
        realised = float(sum(o.value for o in outs))
        clicks = float(sum(o.clicks for o in outs))
        conv = float(sum(o.conversions for o in outs))
        per.append({
            "value": value, "value_realised": realised, "clicks": clicks, "conversions": conv,
            "spend": spend, "budget": budget, "hindsight_value": h.value,
        })
        if spend_curve is None:
            scale = budget if np.isfinite(budget) else max(spend, 1e-12)
            spend_curve = np.cumsum(cost) / scale
            ideal = np.cumsum(aw.shares) if np.isfinite(budget) else np.full(len(reports), np.nan)
    tot = {k: float(sum(p[k] for p in per)) for k in per[0]}
    metrics = {
        "value": tot["value"], "value_realised": tot["value_realised"], "clicks": tot["clicks"],
        "conversions": tot["conversions"], "spend": tot["spend"],
        "budget_use": _safe_div(tot["spend"], tot["budget"]) if np.isfinite(tot["budget"]) else float("nan"),
        "cpc": _safe_div(tot["spend"], tot["clicks"]),
        "cpa": _safe_div(tot["spend"], tot["conversions"]),
        "roas": _safe_div(tot["value_realised"], tot["spend"]),
        "hindsight_value": tot["hindsight_value"],
        "pct_optimal": 100.0 * _safe_div(tot["value"], tot["hindsight_value"]),
        "regret": tot["hindsight_value"] - tot["value"],
    }
    assert spend_curve is not None and ideal is not None
    return DayResult(metrics, spend_curve, ideal, regret_total, per_campaign=per)


def _t_half_width(x: np.ndarray, confidence: float) -> float:
    from scipy.stats import t

    x = x[np.isfinite(x)]
    if x.size < 2:
        return float("nan")
    return float(t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))


def summarise(days: dict[str, list[DayResult]], confidence: float = 0.95) -> pd.DataFrame:
    """One row per candidate: ``<metric>`` (mean over seeds) and ``<metric>_ci`` (half-width),
    ranked by mean value won."""
    rows = []
    for name, results in days.items():
        row: dict[str, Any] = {"policy": name, "n_seeds": len(results)}
        for m in METRICS:
            x = np.array([r.metrics[m] for r in results], dtype=np.float64)
            row[m] = float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")
            row[f"{m}_ci"] = _t_half_width(x, confidence)
        rows.append(row)
    board = pd.DataFrame(rows).sort_values("value", ascending=False, kind="stable")
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    return board.reset_index(drop=True)


def format_bidding_table(board: pd.DataFrame) -> str:
    """Text table: mean ± CI half-width of the headline metrics."""
    cols = [("value", "value won", 3), ("pct_optimal", "% of OPT", 1), ("regret", "regret", 3),
            ("spend", "spend", 2), ("budget_use", "budget use", 3), ("clicks", "clicks", 0),
            ("cpc", "CPC", 3), ("roas", "ROAS", 2)]
    header = ["rank", "policy", *(c[1] for c in cols)]
    lines = []
    for _, r in board.iterrows():
        cells = [str(r["rank"]), str(r["policy"])]
        for key, _, dec in cols:
            ci = r[f"{key}_ci"]
            cells.append(f"{r[key]:.{dec}f}" + ("" if not np.isfinite(ci) else f" ± {ci:.{dec}f}"))
        lines.append(cells)
    widths = [max(len(h), *(len(x[i]) for x in lines)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(x) for x in lines)])


@dataclass
class BiddingRun:
    """What :func:`run_bidding` produced (also written to its output folder)."""

    scenario: Scenario
    leaderboard: pd.DataFrame
    days: dict[str, list[DayResult]]
    results: dict[str, Any]
    files: list[Path] = field(default_factory=list)

    def table(self) -> str:
        return format_bidding_table(self.leaderboard)


def _agent_index(scenario: Scenario) -> int:
    assert scenario.auction is not None and scenario.bidding is not None
    names = [c.name for c in scenario.auction.campaigns]
    return 0 if scenario.bidding.agent is None else names.index(scenario.bidding.agent)


def build_bidders(
    scenario: Scenario, cfg: BidderPolicyConfig, dim: int, seed: int
) -> tuple[list[BiddingPolicy], list[int]]:
    """One bidder per campaign: ``cfg`` for the controlled campaign(s), configured baselines for
    the others; returns the bidders and the controlled campaign indices."""
    assert scenario.auction is not None and scenario.bidding is not None
    camps = scenario.auction.campaigns
    if scenario.bidding.apply_to == "all":
        controlled = list(range(len(camps)))
    else:
        controlled = [_agent_index(scenario)]
    ss = np.random.SeedSequence([seed, 7]).spawn(len(camps))
    bidders = [
        make_bidding_policy(
            cfg if c in controlled else cc.bidder, scenario.auction, dim,
            int(ss[c].generate_state(1)[0]),
        )
        for c, cc in enumerate(camps)
    ]
    return bidders, controlled


def run_bidding(
    scenario: Scenario, out_dir: str | os.PathLike[str] | None = None, progress: bool = True,
    no_train: bool = False,
) -> BiddingRun:
    """Run the ``bidding`` section of an auction scenario; write results to ``out_dir``.

    RL candidates are trained first (or loaded from the build cache; ``no_train``: a miss is a
    :class:`ConfigError`), see :mod:`adsim.experiments.rl_train`."""
    from tqdm.auto import tqdm

    if scenario.auction is None or scenario.bidding is None:
        raise ConfigError("the scenario needs 'auction' and 'bidding' sections for a bidding run")
    from adsim.experiments.versions import library_versions

    bcfg = scenario.bidding
    w_rng, a_rng = AuctionWorld.seed_streams(scenario.seed)
    world = scenario_world(scenario, w_rng, no_train=no_train, progress=progress)
    candidates, agents = list(bcfg.candidates), {}
    for i, cfg in enumerate(candidates):  # train / load RL agents before simulating anything
        if cfg.type == "rl":
            from adsim.experiments.rl_train import ensure_rl_bidder
            from adsim.policies.rl import RLBidder

            label = cfg.name or cfg.type
            agents[label] = ensure_rl_bidder(scenario, cfg, no_train=no_train, progress=progress)
            RLBidder.load(agents[label].path)  # a broken file fails here, not on day 3
            candidates[i] = cfg.model_copy(update={"model": str(agents[label].path)})
    aw = AuctionWorld(world, scenario.auction, a_rng)
    dim = aw.world.spec.design_dim
    day_seeds = np.random.SeedSequence([scenario.seed, 1]).spawn(bcfg.n_seeds)
    days: dict[str, list[DayResult]] = {}
    total = len(candidates) * bcfg.n_seeds
    bar = tqdm(total=total, desc=scenario.name, disable=not progress, file=sys.stderr, leave=False)
    for cfg in candidates:
        name = cfg.name or cfg.type
        days[name] = []
        for s, ss in enumerate(day_seeds):
            bar.set_postfix_str(f"{name} day {s}")
            bidders, controlled = build_bidders(scenario, cfg, dim, s)
            reports = run_day(aw, bidders, np.random.default_rng(ss))
            res = evaluate_day(aw, reports, controlled)
            res.lambdas = list(getattr(bidders[controlled[0]], "trace", {}).get("lambda", []))
            days[name].append(res)
            bar.update()
    bar.close()
    board = summarise(days, bcfg.confidence)
    regret_curves, regret_table = _regret_report(days, board, bcfg.confidence)
    results: dict[str, Any] = {
        "scenario": scenario.model_dump(mode="json"),
        "seed": scenario.seed,
        "versions": library_versions(),
        "leaderboard": board.to_dict(orient="records"),
        "days": {
            name: [{"metrics": d.metrics, "per_campaign": d.per_campaign} for d in ds]
            for name, ds in days.items()
        },
        "curves": {
            name: {"spend": ds[0].spend_curve.tolist(), "ideal": ds[0].ideal_curve.tolist(),
                   "regret": ds[0].regret_curve.tolist(), "lambda": ds[0].lambdas}
            for name, ds in days.items()
        },
    }
    results = _finite(results)
    run = BiddingRun(scenario, board, days, results)
    if out_dir is not None:
        from adsim._figures import save_figure
        from adsim.experiments.bidding_plots import bidding_figures
        from adsim.experiments.html_report import finish_run_folder
        from adsim.experiments.report import reproduce_command, write_report

        final = Path(out_dir)
        with atomic_dir(final, "scenario") as out:  # built aside, manifest.json last, renamed into place
            write_with(out / "leaderboard.csv", lambda tmp: board.to_csv(tmp, index=False))
            write_json(out / "results.json", results)
            write_with(out / "regret_curves.csv", lambda tmp: regret_curves.to_csv(tmp, index=False))
            figures = [p for stem, fig in bidding_figures(days, regret_curves, bcfg.confidence).items()
                       for p in save_figure(fig, out / stem)]
            from adsim.experiments.rl_train import write_training_curves

            rl_files = write_training_curves(agents, out)
            acfg = scenario.auction
            write_report(
                out / "report.md", name=scenario.name, description=scenario.description,
                seed=scenario.seed, table=run.table(), figures=["spend.png", "lambda.png", "regret.png",
                                                      *(p.name for p in rl_files if p.suffix == ".png")],
                sections=[("Regret against the hindsight optimum, step by step", regret_table,
                           ["regret_curves.png"])],
                facts={
                    "mechanism": acfg.mechanism, "ranking": acfg.ranking,
                    "requests / steps per day": f"{acfg.traffic.n_requests} / {acfg.traffic.n_steps}",
                    "campaigns": ", ".join(c.name for c in acfg.campaigns),
                    "controlled": "all campaigns" if bcfg.apply_to == "all"
                    else acfg.campaigns[_agent_index(scenario)].name,
                    "days (seeds) per candidate": bcfg.n_seeds,
                    "interval": f"{bcfg.confidence:.0%} Student-t over days",
                },
                command=reproduce_command(final, scenario.seed),
            )
            run.files = [out / n for n in ("leaderboard.csv", "results.json", "regret_curves.csv",
                                           "report.md")] + figures + rl_files
            run.files += finish_run_folder(out, scenario)  # scenario.yaml, report.html
        run.files = [final / p.relative_to(out) for p in run.files]
    return run


def _regret_report(
    days: dict[str, list[DayResult]], board: pd.DataFrame, confidence: float
) -> tuple[pd.DataFrame, str]:
    """The regret report of the bandit learners (:mod:`adsim.experiments.regret`) for bidders.

    Per decision step s, R(s) = Σ_{τ≤s} OPT_τ − V_τ: the hindsight allocation's expected value in
    step τ minus the bidder's (the ``regret_curve`` of each day; it can dip below zero while a
    bidder spends ahead of the hindsight plan, so no log–log slope is fitted). Returns the curves
    (mean and Student-t band over days) and a text table of R at a quarter, half and all of the
    day.
    """
    from adsim.experiments.regret import band_curves

    n_steps = len(next(iter(days.values()))[0].regret_curve)
    steps = np.arange(1, n_steps + 1)
    curves = band_curves(
        {name: np.array([d.regret_curve for d in ds]) for name, ds in days.items()}, steps,
        confidence,
    )
    mean = {name: g["regret_mean"].to_numpy() for name, g in curves.groupby("policy", sort=False)}
    marks = [max(1, n_steps // 4), max(1, n_steps // 2), n_steps]
    head = "".join(f"{'R(' + str(m) + ')':>12}" for m in marks)
    lines = [f"{'policy':<32}{head}{'± (R(T))':>11}{'% of OPT':>10}"]
    for _, r in board.iterrows():
        ci = r["regret_ci"]
        cells = "".join(f"{mean[r['policy']][m - 1]:>12.3f}" for m in marks)
        lines.append(f"{str(r['policy']):<32}{cells}"
                     f"{(f'{ci:.3f}' if np.isfinite(ci) else ''):>11}{r['pct_optimal']:>10.1f}")
    lines.append(f"R(s): cumulative regret after s of {n_steps} decision steps, mean over days"
                 " (regret_curves.csv / regret_curves.png have the curves with their band)")
    return curves, "\n".join(lines)


def _finite(obj: Any) -> Any:
    """NaN/inf → None so the JSON is strict."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return _finite(obj.item())
    return obj
