"""The leaderboard: every policy's exact value next to each offline estimate.

One row per (policy, estimator): ``policy, true_value, estimator, estimate, std_err, ci_low,
ci_high, error, rel_error, covered`` — and, when simulated, the on-policy ``online_value``.
Policies are ranked by their exact value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from adsim.estimators.ope import Estimate

__all__ = ["PolicyResult", "build_leaderboard", "format_table"]

COLUMNS = [
    "rank", "policy", "true_value", "estimator", "estimate", "std_err", "ci_low", "ci_high",
    "error", "rel_error", "covered",
]
# optional columns: online_value (on-policy simulation), ess and max_weight (overlap diagnostics)


@dataclass
class PolicyResult:
    """Everything measured about one policy."""

    name: str
    true_value: float
    estimates: list[Estimate] = field(default_factory=list)
    online_value: float | None = None
    online_std_err: float | None = None
    #: overlap diagnostics of the policy on the evaluation log (ESS, weights, unsupported mass)
    overlap: dict[str, float | int] | None = None
    #: reasons not to trust the offline estimates of this policy (empty when overlap is fine)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "true_value": self.true_value,
            "online_value": self.online_value,
            "online_std_err": self.online_std_err,
            "estimates": {e.estimator: e.to_dict() for e in self.estimates},
            "overlap": self.overlap,
            "problems": self.problems,
        }


def build_leaderboard(results: Sequence[PolicyResult]) -> pd.DataFrame:
    """Long table, ranked by exact value (ties keep the input order)."""
    order = sorted(range(len(results)), key=lambda i: (-results[i].true_value, i))
    rows = []
    for rank, i in enumerate(order, start=1):
        r = results[i]
        for e in r.estimates:
            err = e.value - r.true_value
            rows.append({
                "rank": rank, "policy": r.name, "true_value": r.true_value,
                "estimator": e.estimator, "estimate": e.value, "std_err": e.std_err,
                "ci_low": e.ci_low, "ci_high": e.ci_high, "error": err,
                "rel_error": err / r.true_value if r.true_value != 0 else np.nan,
                "covered": bool(e.ci_low <= r.true_value <= e.ci_high),
                **({"online_value": r.online_value} if r.online_value is not None else {}),
                **({"ess": r.overlap["ess"], "max_weight": r.overlap["max_weight"]}
                   if r.overlap is not None else {}),
            })
    return pd.DataFrame(rows)


def format_table(board: pd.DataFrame) -> str:
    """Wide text table: one line per policy, ``estimate ± half-width`` per estimator."""
    estimators = list(dict.fromkeys(board["estimator"]))
    header = ["rank", "policy", "true value"]
    if "online_value" in board.columns:
        header.append("online")
    if "ess" in board.columns:
        header.append("ESS")
    header += [e.upper() for e in estimators]
    lines = []
    for (rank, policy), g in board.groupby(["rank", "policy"], sort=True):
        g = g.set_index("estimator")
        row = [str(rank), str(policy), f"{g['true_value'].iloc[0]:.4f}"]
        if "online_value" in board.columns:
            row.append(f"{g['online_value'].iloc[0]:.4f}")
        if "ess" in board.columns:
            row.append(f"{g['ess'].iloc[0]:,.0f}")
        for e in estimators:
            if e in g.index:
                half = (g.at[e, "ci_high"] - g.at[e, "ci_low"]) / 2
                mark = "" if g.at[e, "covered"] else " ✗"
                row.append(f"{g.at[e, 'estimate']:.4f} ± {half:.4f}{mark}")
            else:
                row.append("")
        lines.append(row)
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in lines)]
    summary = board.groupby("estimator", sort=False).agg(
        mae=("error", lambda x: float(np.mean(np.abs(x)))), coverage=("covered", "mean")
    )
    out.append("")
    out.append(
        "mean |error|: "
        + ", ".join(f"{e.upper()} {summary.at[e, 'mae']:.4f}" for e in estimators)
        + "   CI coverage: "
        + ", ".join(f"{e.upper()} {summary.at[e, 'coverage']:.0%}" for e in estimators)
        + "   (✗ = interval misses the true value)"
    )
    return "\n".join(out)
