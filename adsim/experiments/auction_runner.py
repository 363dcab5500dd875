"""Auction scenario → results: one simulated day of campaigns bidding under budgets.

``adsim run`` calls :func:`run_auction_scenario` when the scenario has an ``auction`` section:

1. build the world and the auction (seeded from the scenario seed);
2. simulate the day step by step, each campaign bidding with its configured baseline bidder
   (:mod:`adsim.policies.simple_bidders`);
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

from adsim._io import atomic_dir, write_json, write_text, write_with
from adsim.config import Scenario
from adsim.env.auction_world import AuctionWorld
from adsim.env.oracle import hindsight_optimal
from adsim.policies.simple_bidders import make_bidder

__all__ = ["AuctionRunResult", "run_auction_scenario"]

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
    scenario: Scenario, out_dir: str | os.PathLike[str] | None = None, progress: bool = True
) -> AuctionRunResult:
    """Simulate the scenario's auction day; write result files to ``out_dir`` (if given)."""
    from tqdm.auto import tqdm

    if scenario.auction is None:
        raise ValueError("run_auction_scenario needs a scenario with an 'auction' section")
    cfg = scenario.auction
    ss = np.random.SeedSequence(scenario.seed)
    s_world, s_auction, s_day = ss.spawn(3)
    from adsim.env.world import World

    world = World.from_config(scenario.world, np.random.default_rng(s_world))
    aw = AuctionWorld(world, cfg, np.random.default_rng(s_auction))
    bidders = [make_bidder(c.bidder) for c in cfg.campaigns]
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

    from adsim.experiments.runner import library_versions

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
            _plot_day(campaigns, steps, ideal, out / "auction_day.png", scenario.name)
        result.files = [final / n for n in
                        ("results.json", "campaigns.csv", "steps.csv", "auction_day.png")]
    return result


def _plot_day(
    campaigns: pd.DataFrame, steps: pd.DataFrame, ideal: np.ndarray, path: Path, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    n_steps = len(ideal)
    hours = 24.0 * np.arange(1, n_steps + 1) / n_steps
    ax1.plot(hours, ideal, "k--", linewidth=2, label="ideal pacing (∝ traffic)")
    ax1.plot(hours, np.arange(1, n_steps + 1) / n_steps, ":", color="gray", label="even pacing")
    for _, row in campaigns.iterrows():
        if not np.isfinite(row["budget"]):
            continue
        g = steps[steps["campaign"] == row["campaign"]]
        ax1.plot(hours, np.cumsum(g["cost"].to_numpy()) / row["budget"],
                 label=f"{row['campaign']} ({row['bidder']})")
    ax1.set_xlabel("hour of day")
    ax1.set_ylabel("cumulative spend / budget")
    ax1.set_xlim(0, 24)
    ax1.set_ylim(0, 1.05)
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    ax1.set_title("Spend through the day")
    x = np.arange(len(campaigns))
    ax2.bar(x - 0.2, campaigns["expected_value"], width=0.4, label="expected value won")
    hv = campaigns["hindsight_value"].to_numpy(dtype=float)
    ax2.bar(x + 0.2, np.nan_to_num(hv), width=0.4, label="hindsight optimum (budgeted)")
    ax2.set_xticks(x, campaigns["campaign"], rotation=15)
    ax2.set_title("Value vs hindsight optimum")
    ax2.legend(fontsize=8)
    ax2.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110,
                                             metadata={"Software": None}))
    plt.close(fig)
