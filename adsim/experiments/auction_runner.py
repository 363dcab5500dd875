"""Auction scenario → results: one simulated day of campaigns bidding under budgets.

``adsim run`` calls :func:`run_auction_scenario` when the scenario has an ``auction`` section:

1. build the world and the auction (seeded from the scenario seed);
2. simulate the day step by step, each campaign bidding with its configured baseline bidder
   (:func:`adsim.policies.factory.make_bidding_policy`);
3. score every budgeted campaign against its **hindsight-optimal** expected value over the
   auctions that actually happened (:func:`adsim.env.oracle.hindsight_optimal`);
4. write ``results.json`` (byte-identical for the same scenario and seed), ``campaigns.csv``,
   ``steps.csv`` and ``auction_day.png`` (spend through the day against the ideal pacing line,
   and each campaign's value against its hindsight optimum).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adsim._io import atomic_dir, write_json, write_text
from adsim.config import Scenario
from adsim.env.auction_world import AuctionWorld
from adsim.env.oracle import hindsight_optimal
from adsim.experiments.world_models import scenario_world
from adsim.policies.factory import make_bidding_policy

__all__ = ["AuctionRunResult", "run_auction_scenario", "plot_auction_day"]

_COLUMNS = [
    "campaign", "bidder", "budget", "spend", "impressions", "clicks", "conversions", "value",
    "expected_value", "hindsight_value", "pct_of_optimal",
]


@dataclass
class AuctionRunResult:
    """What an auction run produced (also written to its output folder)."""

    scenario: Scenario
    campaigns: pd.DataFrame
    steps: pd.DataFrame
    results: dict[str, Any]
    files: list[Path] = field(default_factory=list)

    def table(self) -> str:
        df = self.campaigns.copy()
        return df.to_string(
            index=False,
            float_format=lambda x: f"{x:,.2f}",
            na_rep="—",
        )


def _r(x: float) -> float | None:
    """JSON-safe, byte-stable float (12 significant digits; inf/nan -> None)."""
    x = float(x)
    if not np.isfinite(x):
        return None
    return float(f"{x:.12g}")


def run_auction_scenario(
    scenario: Scenario, out_dir: str | os.PathLike[str] | None = None, progress: bool = True,
    no_train: bool = False,
) -> AuctionRunResult:
    """Simulate the scenario's auction day; write result files to ``out_dir`` (if given).

    The world may be trained (``world.truth: {type: trained}``): its clicks and conversions then
    come from the network (:mod:`adsim.worldmodel`); ``no_train`` forbids training it here."""
    from tqdm.auto import tqdm

    if scenario.auction is None:
        raise ValueError("run_auction_scenario needs a scenario with an 'auction' section")
    cfg = scenario.auction
    ss = np.random.SeedSequence(scenario.seed)
    s_world, s_auction, s_day = ss.spawn(3)
    world = scenario_world(scenario, np.random.default_rng(s_world), no_train=no_train,
                           progress=progress)
    aw = AuctionWorld(world, cfg, np.random.default_rng(s_auction))
    seeds = np.random.SeedSequence([scenario.seed, 7]).generate_state(len(cfg.campaigns))
    dim = aw.world.spec.design_dim
    bidders = [
        make_bidding_policy(c.bidder, cfg, dim, int(s)) for c, s in zip(cfg.campaigns, seeds)
    ]
    aw.reset(np.random.default_rng(s_day), bidders)

    rows: list[dict[str, Any]] = []
    h_values: list[list[np.ndarray]] = [[] for _ in cfg.campaigns]
    h_costs: list[list[np.ndarray]] = [[] for _ in cfg.campaigns]
    bar = tqdm(total=aw.n_steps, desc=scenario.name, disable=not progress, file=sys.stderr,
               leave=False)
    while not aw.done:
        rep = aw.run_step(bidders)
        for c, o in enumerate(rep.outcomes):
            rows.append({
                "step": rep.step, "campaign": cfg.campaigns[c].name, "requests": o.n_requests,
                "bids": o.bids, "impressions": o.impressions, "clicks": o.clicks,
                "conversions": o.conversions, "cost": o.cost, "value": o.value,
                "expected_value": o.expected_value,
            })
            h_values[c].append(rep.hindsight_values[c])
            h_costs[c].append(rep.hindsight_costs[c])
        bar.update()
    bar.close()
    steps = pd.DataFrame(rows)

    camp_rows = []
    for c, cc in enumerate(cfg.campaigns):
        g = steps[steps["campaign"] == cc.name]
        budget = float(aw.campaigns.budgets[c])
        hv = hp = float("nan")
        if np.isfinite(budget):
            h = hindsight_optimal(np.concatenate(h_values[c]), np.concatenate(h_costs[c]), budget)
            hv = h.value
            hp = 100.0 * g["expected_value"].sum() / hv if hv > 0 else float("nan")
        camp_rows.append({
            "campaign": cc.name, "bidder": cc.bidder.type,
            "budget": budget if np.isfinite(budget) else float("nan"),
            "spend": g["cost"].sum(), "impressions": int(g["impressions"].sum()),
            "clicks": int(g["clicks"].sum()), "conversions": int(g["conversions"].sum()),
            "value": g["value"].sum(), "expected_value": g["expected_value"].sum(),
            "hindsight_value": hv, "pct_of_optimal": hp,
        })
    campaigns = pd.DataFrame(camp_rows, columns=_COLUMNS)

    from adsim.experiments.versions import library_versions

    ideal = np.cumsum(aw.shares)
    results: dict[str, Any] = {
        "scenario": scenario.model_dump(mode="json"),
        "seed": scenario.seed,
        "versions": library_versions(),
        "mechanism": cfg.mechanism,
        "n_requests": int(aw.counts.sum()),
        "conversions_censored": int(aw.clock.censored),
        "ideal_spend_share": [_r(x) for x in ideal],
        "campaigns": [
            {k: (_r(v) if isinstance(v, float) else v) for k, v in r.items()} for r in camp_rows
        ],
        "steps": {
            name: {
                "cost": [_r(x) for x in g["cost"]],
                "impressions": [int(x) for x in g["impressions"]],
                "expected_value": [_r(x) for x in g["expected_value"]],
            }
            for name, g in steps.groupby("campaign", sort=False)
        },
    }
    result = AuctionRunResult(scenario, campaigns, steps, results)
    if out_dir is not None:
        final = Path(out_dir)
        with atomic_dir(final, "scenario") as out:  # built aside, manifest.json last, renamed into place
            write_json(out / "results.json", results)
            write_text(out / "campaigns.csv", campaigns.to_csv(index=False, float_format="%.10g"))
            write_text(out / "steps.csv", steps.to_csv(index=False, float_format="%.10g"))
            from adsim._figures import save_figure
            from adsim.experiments.html_report import finish_run_folder
            from adsim.experiments.report import reproduce_command, write_report

            figures = save_figure(plot_auction_day(campaigns, steps, ideal, scenario.name),
                                  out / "auction_day")
            write_report(
                out / "report.md", name=scenario.name, description=scenario.description,
                seed=scenario.seed, table=result.table(), figures=["auction_day.png"],
                facts={
                    "mechanism": cfg.mechanism, "ranking": cfg.ranking,
                    "requests / steps per day": f"{results['n_requests']} / {aw.n_steps}",
                    "campaigns (bidder)": ", ".join(f"{c.name} ({c.bidder.type})"
                                                    for c in cfg.campaigns),
                    "conversions censored at the end of the day": results["conversions_censored"],
                    "% of optimal": "expected value won / the hindsight-optimal value with the"
                                    " same budget on the same auctions",
                },
                command=reproduce_command(final, scenario.seed),
            )
            result.files = [out / n for n in ("results.json", "campaigns.csv", "steps.csv",
                                              "report.md")] + figures
            result.files += finish_run_folder(out, scenario)  # scenario.yaml, report.html
        result.files = [final / p.relative_to(out) for p in result.files]
    return result


def plot_auction_day(
    campaigns: pd.DataFrame, steps: pd.DataFrame, ideal: np.ndarray, title: str = "",
    axes: Any = None, colors: dict[str, str] | None = None,
) -> Any:
    """Left: each budgeted campaign's cumulative spend / budget against the ideal and even pacing
    lines. Right: expected value won (solid) vs the hindsight optimum (hatched) per campaign, on
    a log axis when one campaign's value dwarfs another's (ratio > 20), with % of optimum
    written above each bar. One colour per campaign in both panels (``colors``). Returns the
    Figure; ``axes`` is a pair to draw into."""
    from adsim._figures import _colors_for, figure_of, new_figure
    from adsim.experiments.bidding_plots import draw_pacing_references

    if axes is None:
        _, axes = new_figure((11, 4.2), 1, 2)
    ax1, ax2 = axes
    cmap = _colors_for([str(c) for c in campaigns["campaign"]], colors)
    n_steps = len(ideal)
    hours = 24.0 * np.arange(1, n_steps + 1) / n_steps
    draw_pacing_references(ax1, hours, np.asarray(ideal, dtype=np.float64))
    for _, row in campaigns.iterrows():
        if not np.isfinite(row["budget"]):
            continue
        g = steps[steps["campaign"] == row["campaign"]]
        ax1.plot(hours, np.cumsum(g["cost"].to_numpy()) / row["budget"], zorder=4,
                 color=cmap[str(row["campaign"])], label=f"{row['campaign']} ({row['bidder']})")
    ax1.set_xlabel("hour of day")
    ax1.set_ylabel("cumulative spend / budget")
    ax1.set_xlim(0, 24)
    ax1.set_ylim(0, 1.05)
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=7)
    ax1.set_title("Spend through the day (budgeted campaigns)")
    x = np.arange(len(campaigns))
    ev = campaigns["expected_value"].to_numpy(dtype=float)
    hv = campaigns["hindsight_value"].to_numpy(dtype=float)
    cols = [cmap[str(c)] for c in campaigns["campaign"]]
    ax2.bar(x - 0.2, ev, width=0.4, color=cols, label="expected value won")
    ax2.bar(x + 0.2, np.nan_to_num(hv), width=0.4, color="none", edgecolor=cols, hatch="//",
            label="hindsight optimum (budgeted campaigns only)")
    pos = np.concatenate([ev[ev > 0], hv[np.isfinite(hv) & (hv > 0)]])
    if pos.size and pos.max() / pos.min() > 20:
        ax2.set_yscale("log")
        ax2.set_ylim(pos.min() / 2, pos.max() * 8)  # headroom for the legend
        ax2.set_title("Value vs hindsight optimum (log scale)")
    else:
        if pos.size:
            ax2.set_ylim(0, pos.max() * 1.35)
        ax2.set_title("Value vs hindsight optimum")
    for xi, e, pct in zip(x, ev, campaigns["pct_of_optimal"].to_numpy(dtype=float)):
        if np.isfinite(pct) and e > 0:
            ax2.annotate(f"{pct:.0f}%", (xi - 0.2, e), ha="center", va="bottom", fontsize=7)
    ax2.set_xticks(x, campaigns["campaign"], rotation=15)
    ax2.set_ylabel("value")
    ax2.legend(fontsize=7, title="% = share of the hindsight optimum", title_fontsize=7,
               loc="upper right")
    ax2.grid(axis="y", alpha=0.3)
    fig = figure_of(ax1)
    if title:
        fig.suptitle(title)
    return fig
