"""Reading a user's target policy and reward-model predictions for a log.

A **target** gives π(a | x_i) for every logged row i, in one of two layouts (parquet or CSV, or a
pandas table):

- *wide*: columns ``pi_0 … pi_{K-1}``, one row per logged row (the log file itself may carry them);
- *long*: columns ``row``, ``action``, ``prob`` (and optionally ``position`` for slates), one row
  per (logged row, action) with non-zero probability; missing pairs are 0.

**Reward-model predictions** use the wide layout with columns ``q_0 … q_{K-1}``.

Every problem raises :class:`~adsim.errors.DataError` naming the column and the first offending
row.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from adsim.errors import DataError

__all__ = ["read_table", "wide_columns", "target_n_actions", "target_from_frame",
           "predictions_from_frame"]


def read_table(path: str | os.PathLike[str], what: str) -> pd.DataFrame:
    """Read parquet or CSV into a DataFrame; every problem is a :class:`DataError`."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: {what} file not found")
    if not p.is_file():
        raise DataError(f"{p}: the {what} is not a regular file (a folder, FIFO or device); give a parquet or CSV file")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        if suffix in (".csv", ".txt", ".tsv"):
            return pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",")
    except Exception as exc:  # pyarrow / pandas parse errors
        raise DataError(f"{p}: cannot read the {what} ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})") from None
    raise DataError(f"{p}: unknown {what} format {suffix!r}; use .parquet or .csv")


def wide_columns(df: pd.DataFrame, prefix: str) -> list[str]:
    """``prefix_0 … prefix_{K-1}`` present in ``df``, in order; error if there is a gap."""
    pat = re.compile(rf"^{re.escape(prefix)}_(\d+)$")
    idx = sorted(int(m.group(1)) for c in df.columns if (m := pat.match(str(c))))
    if not idx:
        return []
    missing = sorted(set(range(idx[-1] + 1)) - set(idx))
    if missing:
        raise DataError(
            f"column '{prefix}_{missing[0]}' is missing: columns {prefix}_0 … {prefix}_{idx[-1]}"
            " must all be present"
        )
    return [f"{prefix}_{k}" for k in range(idx[-1] + 1)]


def _is_long(df: pd.DataFrame) -> bool:
    return {"row", "action", "prob"} <= set(map(str, df.columns))


def target_n_actions(df: pd.DataFrame) -> int | None:
    """Number of actions a target table implies (None if it cannot tell)."""
    if _is_long(df):
        a = _numeric(df, "action")
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            raise DataError(f"target column 'action': non-finite value (NaN or inf) at row {bad[0]}")
        if not a.size:
            return None
        top = float(a.max())
        # an id this large is refused later, naming the row; keep the count itself bounded
        return int(min(top, 2.0**62)) + 1
    cols = wide_columns(df, "pi")
    return len(cols) or None


def _numeric(df: pd.DataFrame, col: str) -> np.ndarray:
    s = df[col]
    if not pd.api.types.is_numeric_dtype(s):
        conv = pd.to_numeric(s, errors="coerce")
        bad = np.flatnonzero(conv.isna().to_numpy() & s.notna().to_numpy())
        row = int(bad[0]) if bad.size else 0
        raise DataError(f"column {col!r} must be numeric, found {s.iloc[row]!r} at row {row}")
    return s.to_numpy(np.float64)


def _check_finite_cols(df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    arr = np.column_stack([_numeric(df, c) for c in cols])
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        r = int(rows[0])
        c = cols[int(np.flatnonzero(bad[r])[0])]
        raise DataError(f"column {c!r}: non-finite value (NaN or inf) at row {r}")
    return arr


def target_from_frame(df: pd.DataFrame, n_rounds: int, n_actions: int) -> np.ndarray:
    """The target's ``(n_rounds, n_actions[, n_positions])`` probabilities from a wide/long table."""
    if _is_long(df):
        return _long_target(df, n_rounds, n_actions)
    cols = wide_columns(df, "pi")
    if not cols:
        raise DataError(
            "target table needs columns pi_0 … pi_{K-1} (one row per logged row) or a long"
            " table with columns 'row', 'action', 'prob'"
            f" (found: {', '.join(map(str, df.columns[:10]))})"
        )
    if len(df) != n_rounds:
        raise DataError(f"target has {len(df)} rows; the log has {n_rounds} (one per logged row)")
    if len(cols) != n_actions:
        raise DataError(
            f"target has {len(cols)} probability columns (pi_0 … pi_{len(cols) - 1}); the log has"
            f" {n_actions} actions"
        )
    pi = _check_finite_cols(df, cols)
    neg = np.argwhere(pi < 0)
    if neg.size:
        r, c = neg[0]
        raise DataError(f"column {cols[c]!r}: negative probability {float(pi[r, c]):g} at row {r}")
    sums = pi.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if bad.size:
        raise DataError(
            f"columns pi_0 … pi_{n_actions - 1}: probabilities must sum to 1, row {bad[0]} sums"
            f" to {sums[bad[0]]:.6g}"
        )
    return pi


def _long_target(df: pd.DataFrame, n_rounds: int, n_actions: int) -> np.ndarray:
    cols = ["row", "action", "prob"] + (["position"] if "position" in df.columns else [])
    arr = _check_finite_cols(df, cols)
    row, act, prob = arr[:, 0], arr[:, 1], arr[:, 2]
    for name, v, hi in (("row", row, n_rounds), ("action", act, n_actions)):
        bad = np.flatnonzero((v != np.round(v)) | (v < 0) | (v >= hi))
        if bad.size:
            raise DataError(
                f"target column {name!r}: {float(v[bad[0]]):g} at row {bad[0]} is outside [0, {hi})"
                " or not an integer"
            )
    bad = np.flatnonzero(prob < 0)
    if bad.size:
        raise DataError(f"target column 'prob': negative probability at row {bad[0]}")
    r, a = row.astype(np.int64), act.astype(np.int64)
    if "position" in df.columns:
        pos = arr[:, 3]
        bad = np.flatnonzero((pos != np.round(pos)) | (pos < 0))
        if bad.size:
            raise DataError(f"target column 'position': {float(pos[bad[0]]):g} at row {bad[0]} is invalid")
        from adsim.env.logs import MAX_POSITIONS, check_log_size

        bad = np.flatnonzero(pos >= MAX_POSITIONS)
        if bad.size:
            raise DataError(f"target column 'position': {float(pos[bad[0]]):g} at row {bad[0]} is beyond the"
                            f" {MAX_POSITIONS:,} supported positions")
        p = pos.astype(np.int64)
        check_log_size(n_rounds, n_actions, int(p.max()) + 1, what="the target")
        pi = np.zeros((n_rounds, n_actions, int(p.max()) + 1))
        np.add.at(pi, (r, a, p), prob)
        sums = pi.sum(axis=1)
        worst = np.abs(sums - 1.0).max(axis=1)
    else:
        pi = np.zeros((n_rounds, n_actions))
        np.add.at(pi, (r, a), prob)
        sums = pi.sum(axis=1)
        worst = np.abs(sums - 1.0)
    bad = np.flatnonzero(worst > 1e-6)
    if bad.size:
        raise DataError(
            f"target column 'prob': probabilities of log row {bad[0]} sum to"
            f" {np.atleast_1d(sums[bad[0]])[0]:.6g}, not 1 (every logged row needs a full"
            " distribution)"
        )
    return pi


def predictions_from_frame(df: pd.DataFrame, n_rounds: int, n_actions: int) -> np.ndarray:
    """Reward-model predictions ``(n_rounds, n_actions)`` from columns ``q_0 … q_{K-1}``."""
    cols = wide_columns(df, "q")
    if not cols:
        raise DataError(
            "reward-model predictions need columns q_0 … q_{K-1}"
            f" (found: {', '.join(map(str, df.columns[:10]))})"
        )
    if len(df) != n_rounds:
        raise DataError(
            f"reward-model predictions have {len(df)} rows; the log has {n_rounds}"
        )
    if len(cols) != n_actions:
        raise DataError(
            f"reward-model predictions have {len(cols)} columns (q_0 … q_{len(cols) - 1}); the"
            f" log has {n_actions} actions"
        )
    return _check_finite_cols(df, cols)
