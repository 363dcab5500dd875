"""Logged bandit feedback: the typed log table, its validation and parquet/CSV I/O.

Schema (one row per logged impression):

============================ ======= ==========================================================
column                       dtype   meaning
============================ ======= ==========================================================
``action``                   int     ad shown, in ``[0, n_actions)``
``reward``                   float   observed reward (click, or value × click)
``pscore``                   float   logging propensity π0(action | context), in (0, 1]
``position``                 int     optional slot of the impression (slates)
``q_0 .. q_{K-1}``           float   optional true expected reward of each action (simulated)
any other column             any     context features (e.g. ``user_id``, ``x0``, ``region``)
============================ ======= ==========================================================

The number of actions travels in the parquet metadata (``adsim.n_actions``); for CSV it is
inferred as ``max(action) + 1`` unless given.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from adsim._io import write_with
from adsim.errors import DataError

__all__ = ["BanditLog", "read_log", "check_array"]

_RESERVED = ("action", "reward", "pscore", "position")


def check_array(name: str, x: np.ndarray, *, finite: bool = True) -> None:
    """Raise :class:`DataError` naming ``name`` and the first NaN/inf row."""
    if finite and x.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
        if bad.size:
            raise DataError(f"column {name!r}: non-finite value (NaN or inf) at row {bad[0]}")


@dataclass
class BanditLog:
    """A log of bandit feedback (see the module docstring for the schema).

    Validated on construction: lengths agree, ``pscore`` in (0, 1], actions in range, no NaN.
    """

    action: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    n_actions: int
    context: pd.DataFrame | None = None
    position: np.ndarray | None = None
    expected_reward: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.action = np.asarray(self.action)
        self.reward = np.asarray(self.reward, dtype=np.float64)
        self.pscore = np.asarray(self.pscore, dtype=np.float64)
        n = self.action.shape[0]
        for name, arr in (("reward", self.reward), ("pscore", self.pscore)):
            if arr.ndim != 1 or arr.shape[0] != n:
                raise DataError(
                    f"column {name!r} has shape {arr.shape}; expected ({n},) like 'action'"
                )
        if n == 0:
            raise DataError("the log is empty: it needs at least one row")
        if self.action.dtype.kind == "f":
            check_array("action", self.action)
            frac = np.flatnonzero(self.action != np.round(self.action))
            if frac.size:
                raise DataError(
                    f"column 'action': {float(self.action[frac[0]])!r} at row {frac[0]} is not an integer"
                )
        if self.action.dtype.kind not in "iuf":
            raise DataError(f"column 'action' must hold integers, found dtype {self.action.dtype}")
        self.action = self.action.astype(np.int64)
        if self.n_actions < 1:
            raise DataError(f"n_actions must be >= 1, got {self.n_actions}")
        bad = np.flatnonzero((self.action < 0) | (self.action >= self.n_actions))
        if bad.size:
            raise DataError(
                f"column 'action': {self.action[bad[0]]} at row {bad[0]} is outside the action"
                f" set [0, {self.n_actions})"
            )
        check_array("reward", self.reward)
        check_array("pscore", self.pscore)
        bad = np.flatnonzero((self.pscore <= 0) | (self.pscore > 1))
        if bad.size:
            raise DataError(
                f"column 'pscore' must be in (0, 1], found {float(self.pscore[bad[0]])!r} at row {bad[0]}"
            )
        if self.position is not None:
            self.position = np.asarray(self.position)
            if self.position.shape != (n,):
                raise DataError(f"column 'position' has shape {self.position.shape}; expected ({n},)")
            self.position = self.position.astype(np.int64)
        if self.expected_reward is not None:
            self.expected_reward = np.asarray(self.expected_reward, dtype=np.float64)
            if self.expected_reward.shape[:2] != (n, self.n_actions):
                raise DataError(
                    f"expected_reward has shape {self.expected_reward.shape}; expected"
                    f" ({n}, {self.n_actions})"
                )
        if self.context is not None and len(self.context) != n:
            raise DataError(f"context table has {len(self.context)} rows; the log has {n}")

    @property
    def n_rounds(self) -> int:
        return int(self.action.shape[0])

    # ------------------------------------------------------------------------------ tables
    def to_frame(self) -> pd.DataFrame:
        cols: dict[str, np.ndarray] = {
            "action": self.action, "reward": self.reward, "pscore": self.pscore,
        }
        if self.position is not None:
            cols["position"] = self.position
        df = pd.DataFrame(cols)
        if self.expected_reward is not None:
            q = pd.DataFrame(
                self.expected_reward.reshape(self.n_rounds, self.n_actions),
                columns=[f"q_{k}" for k in range(self.n_actions)],
            )
            df = pd.concat([df, q], axis=1)
        if self.context is not None:
            df = pd.concat([df, self.context.reset_index(drop=True)], axis=1)
        return df

    @classmethod
    def from_frame(cls, df: pd.DataFrame, n_actions: int | None = None) -> BanditLog:
        """Build a log from a table; errors name the missing or bad column."""
        for col in ("action", "reward", "pscore"):
            if col not in df.columns:
                raise DataError(
                    f"log column {col!r} is missing; a log needs columns 'action', 'reward' and"
                    f" 'pscore' (found: {', '.join(map(str, df.columns[:10]))})"
                )
        for col in ("action", "reward", "pscore"):
            if not pd.api.types.is_numeric_dtype(df[col]):
                raise DataError(f"column {col!r} must be numeric, found dtype {df[col].dtype}")
        action = df["action"].to_numpy()
        if n_actions is None:
            if action.dtype.kind == "f" and not np.isfinite(action).all():
                check_array("action", action.astype(np.float64))
            n_actions = int(np.nanmax(action)) + 1 if len(action) else 0
        qcols = [f"q_{k}" for k in range(n_actions)]
        q = df[qcols].to_numpy(np.float64) if all(c in df.columns for c in qcols) else None
        reserved = set(_RESERVED) | set(qcols)
        ctx_cols = [c for c in df.columns if c not in reserved]
        return cls(
            action=action,
            reward=df["reward"].to_numpy(),
            pscore=df["pscore"].to_numpy(),
            n_actions=n_actions,
            context=df[ctx_cols].reset_index(drop=True) if ctx_cols else None,
            position=df["position"].to_numpy() if "position" in df.columns else None,
            expected_reward=q,
        )

    # --------------------------------------------------------------------------------- I/O
    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write atomically, with ``n_actions`` in the schema metadata."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[b"adsim"] = json.dumps({"n_actions": self.n_actions}).encode()
        table = table.replace_schema_metadata(meta)
        write_with(path, lambda tmp: pq.write_table(table, tmp))


def read_log(path: str | os.PathLike[str], n_actions: int | None = None) -> BanditLog:
    """Read a log from parquet or CSV; every problem is a :class:`DataError`."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: log file not found")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            table = pq.read_table(p)
            meta = (table.schema.metadata or {}).get(b"adsim")
            if meta and n_actions is None:
                n_actions = int(json.loads(meta)["n_actions"])
            df = table.to_pandas()
        elif suffix in (".csv", ".txt", ".tsv"):
            df = pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",")
        else:
            raise DataError(f"{p}: unknown log format {suffix!r}; use .parquet or .csv")
    except DataError:
        raise
    except Exception as exc:  # pyarrow / pandas parse errors
        raise DataError(f"{p}: cannot read the log ({type(exc).__name__}: {exc})") from None
    try:
        return BanditLog.from_frame(df, n_actions=n_actions)
    except DataError as exc:
        raise DataError(f"{p}: {exc}") from None
