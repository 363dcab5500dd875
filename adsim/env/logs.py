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
from adsim.config.memory import memory_ceiling_bytes  # one ceiling for every door
from adsim.errors import DataError

__all__ = ["BanditLog", "read_log", "check_array", "check_log_size", "memory_ceiling_bytes",
           "PSCORE_FLOOR", "VALUE_LIMIT", "MAX_ACTIONS", "MAX_POSITIONS"]

_RESERVED = ("action", "reward", "pscore", "position")

#: smallest propensity accepted: below it importance weights exceed 1e12 and sums overflow
PSCORE_FLOOR = 1e-12
#: largest |reward|, |expected reward| or |reward-model prediction| accepted (sums stay finite)
VALUE_LIMIT = 1e12
#: largest |numeric context value| accepted (a reward model standardises them)
CONTEXT_LIMIT = 1e15
#: most actions and slate positions a log may declare (the memory estimate is checked too)
MAX_ACTIONS = 1_000_000
MAX_POSITIONS = 1_000


def check_log_size(n_rounds: int, n_actions: int, n_positions: int = 1, what: str = "the log") -> None:
    """Refuse sizes whose ``(n_rounds, n_actions, n_positions)`` arrays would not fit in memory.

    OPE holds up to about eight such float64 arrays at once (target, reward model, its folds,
    estimator components); the estimate ``64 · n_rounds · n_actions · n_positions`` bytes (measured:
    240 MiB above the imports for 100,000 rows × 50 actions with the logistic reward model,
    estimate 305 MiB) must stay under
    :func:`memory_ceiling_bytes`, and ``n_actions`` / ``n_positions`` under
    :data:`MAX_ACTIONS` / :data:`MAX_POSITIONS`. Checked before anything is allocated.
    """
    if n_actions > MAX_ACTIONS:
        raise DataError(f"{what} declares {n_actions:,} actions; at most {MAX_ACTIONS:,} are supported"
                        " (is an action id or n_actions wrong?)")
    if n_positions > MAX_POSITIONS:
        raise DataError(f"{what} declares {n_positions:,} positions; at most {MAX_POSITIONS:,} are supported")
    need = 64 * n_rounds * n_actions * n_positions
    limit = memory_ceiling_bytes()
    if need > limit:
        raise DataError(
            f"{what}: {n_rounds:,} rows × {n_actions:,} actions"
            f"{f' × {n_positions:,} positions' if n_positions > 1 else ''} need about {need / (1 << 30):.3g} GiB"
            f" for off-policy evaluation, above the memory ceiling of {limit / (1 << 30):.3g} GiB; check the"
            " action ids / n_actions, use a shorter log, or raise ADSIM_MAX_MEMORY_GB=<GiB>"
        )


def check_array(name: str, x: np.ndarray, *, finite: bool = True, limit: float | None = None) -> None:
    """Raise :class:`DataError` naming ``name`` and the first NaN/inf row (or |value| > ``limit``)."""
    if finite and x.dtype.kind == "f":
        flat = x.reshape(len(x), -1)
        bad = np.flatnonzero(~np.isfinite(flat).all(axis=1))
        if bad.size:
            raise DataError(f"column {name!r}: non-finite value (NaN or inf) at row {bad[0]}")
        if limit is not None:
            bad = np.flatnonzero((np.abs(flat) > limit).any(axis=1))
            if bad.size:
                v = flat[bad[0]][np.abs(flat[bad[0]]) > limit][0]
                raise DataError(f"column {name!r}: {float(v):.3g} at row {bad[0]} is beyond ±{limit:g};"
                                " rescale the column (e.g. to thousands) or fix the value")


def _check_context(ctx: pd.DataFrame) -> None:
    """Context columns: scalars only; numeric ones finite and within ±CONTEXT_LIMIT."""
    for col in ctx.columns:
        s = ctx[col]
        name = str(col)
        if isinstance(s, pd.DataFrame):
            raise DataError(f"context column {name!r} appears twice; give columns unique names")
        if pd.api.types.is_bool_dtype(s.dtype):
            continue
        if pd.api.types.is_numeric_dtype(s.dtype):
            if pd.api.types.is_complex_dtype(s.dtype):
                raise DataError(f"context column {name!r} holds complex numbers; use real ones")
            x = s.to_numpy(np.float64, na_value=np.nan)
            bad = np.flatnonzero(~np.isfinite(x))
            if bad.size:
                raise DataError(
                    f"context column {name!r}: {'NaN (missing)' if np.isnan(x[bad[0]]) else 'inf'} at row"
                    f" {bad[0]}; fill missing values (e.g. with the column mean) or drop the column"
                )
            bad = np.flatnonzero(np.abs(x) > CONTEXT_LIMIT)
            if bad.size:
                raise DataError(f"context column {name!r}: {x[bad[0]]:.3g} at row {bad[0]} is beyond"
                                f" ±{CONTEXT_LIMIT:g}; rescale the column")
            continue
        if s.dtype == object:
            vals = s.to_numpy()
            nested = np.fromiter((isinstance(v, (list, tuple, dict, set, np.ndarray, bytes)) for v in vals),
                                 dtype=bool, count=len(vals))
            if nested.any():
                r = int(np.flatnonzero(nested)[0])
                raise DataError(f"context column {name!r}: a nested value ({type(vals[r]).__name__}) at row {r};"
                                " context columns hold one number or string per row — flatten it into columns")


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
        if self.action.ndim != 1:
            raise DataError(f"column 'action' has shape {self.action.shape}; expected one id per row")
        for name in ("reward", "pscore"):
            arr = np.asarray(getattr(self, name))
            if arr.dtype.kind not in "biuf":
                raise DataError(f"column {name!r} must be numeric, found dtype {arr.dtype}")
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
        if self.action.dtype.kind == "f" and (np.abs(self.action) >= 2**62).any():
            r = int(np.flatnonzero(np.abs(self.action) >= 2**62)[0])
            raise DataError(f"column 'action': {float(self.action[r]):.3g} at row {r} is not a valid action id")
        self.action = self.action.astype(np.int64)
        if isinstance(self.n_actions, bool) or not isinstance(self.n_actions, (int, np.integer)):
            raise DataError(f"n_actions must be a whole number, got {self.n_actions!r}")
        self.n_actions = int(self.n_actions)
        if self.n_actions < 1:
            raise DataError(f"n_actions must be >= 1, got {self.n_actions}")
        if self.n_actions > MAX_ACTIONS:
            raise DataError(f"n_actions is {self.n_actions:,}; at most {MAX_ACTIONS:,} actions are supported"
                            " (is an action id or the log's n_actions wrong?)")
        bad = np.flatnonzero((self.action < 0) | (self.action >= self.n_actions))
        if bad.size:
            raise DataError(
                f"column 'action': {self.action[bad[0]]} at row {bad[0]} is outside the action"
                f" set [0, {self.n_actions})"
            )
        check_array("reward", self.reward, limit=VALUE_LIMIT)
        check_array("pscore", self.pscore)
        bad = np.flatnonzero((self.pscore <= 0) | (self.pscore > 1))
        if bad.size:
            raise DataError(
                f"column 'pscore' must be in (0, 1], found {float(self.pscore[bad[0]])!r} at row {bad[0]}"
            )
        bad = np.flatnonzero(self.pscore < PSCORE_FLOOR)
        if bad.size:
            raise DataError(
                f"column 'pscore': {float(self.pscore[bad[0]]):.3g} at row {bad[0]} is below {PSCORE_FLOOR:g};"
                " importance weights that large (> 1e12) make every estimate overflow — check how the"
                " propensities were logged (a probability, not a log-probability?)"
            )
        if self.position is not None:
            pos = np.asarray(self.position)
            if pos.shape != (n,):
                raise DataError(f"column 'position' has shape {pos.shape}; expected ({n},)")
            if pos.dtype.kind not in "biuf":
                raise DataError(f"column 'position' must hold whole numbers (slot 0, 1, …), found dtype {pos.dtype}")
            if pos.dtype.kind == "f":
                bad = np.flatnonzero(~np.isfinite(pos) | (pos != np.round(pos)))
                if bad.size:
                    raise DataError(f"column 'position': {float(pos[bad[0]])!r} at row {bad[0]} is not a whole number")
            bad = np.flatnonzero((pos < 0) | (pos >= MAX_POSITIONS))
            if bad.size:
                raise DataError(f"column 'position': {pos[bad[0]].item()!r} at row {bad[0]} is outside"
                                f" [0, {MAX_POSITIONS})")
            self.position = pos.astype(np.int64)
        if self.expected_reward is not None:
            self.expected_reward = np.asarray(self.expected_reward, dtype=np.float64)
            if self.expected_reward.shape[:2] != (n, self.n_actions):
                raise DataError(
                    f"expected_reward has shape {self.expected_reward.shape}; expected"
                    f" ({n}, {self.n_actions})"
                )
            check_array("q_*", self.expected_reward, limit=VALUE_LIMIT)
        if self.context is not None:
            if len(self.context) != n:
                raise DataError(f"context table has {len(self.context)} rows; the log has {n}")
            _check_context(self.context)

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
        if df.columns.duplicated().any():
            dup = str(df.columns[df.columns.duplicated()][0])
            raise DataError(f"column {dup!r} appears twice; give columns unique names")
        action = df["action"].to_numpy()
        if n_actions is None:
            if action.dtype.kind == "f" and not np.isfinite(action).all():
                check_array("action", action.astype(np.float64))
            top = float(np.nanmax(action)) if len(action) else -1.0
            if top >= MAX_ACTIONS:
                r = int(np.argmax(action))
                raise DataError(f"column 'action': {top:.6g} at row {r} is beyond the {MAX_ACTIONS:,} supported"
                                " actions (action ids are 0 … n_actions−1)")
            n_actions = int(top) + 1 if len(action) else 0
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

    # ------------------------------------------------------------------------ obp interop
    def to_obp(self) -> dict[str, object]:
        """Open Bandit Pipeline's ``bandit_feedback`` dict (``n_rounds``, ``n_actions``,
        ``action``, ``reward``, ``pscore``, ``position``, ``context``, ``action_context`` and,
        when known, ``expected_reward``).

        ``context`` holds the numeric context columns as a float matrix (an ``(n, 1)`` column of
        ones when there are none); ``action_context`` is the identity (one-hot action ids).
        """
        need = 8 * self.n_actions * self.n_actions
        if need > memory_ceiling_bytes():
            raise DataError(f"to_obp: the one-hot action_context of {self.n_actions:,} actions needs"
                            f" {need / (1 << 30):.3g} GiB, above the memory ceiling (ADSIM_MAX_MEMORY_GB)")
        if self.context is not None:
            num = self.context.select_dtypes(include="number")
            ctx = num.to_numpy(np.float64) if num.shape[1] else np.ones((self.n_rounds, 1))
        else:
            ctx = np.ones((self.n_rounds, 1))
        out: dict[str, object] = {
            "n_rounds": self.n_rounds,
            "n_actions": self.n_actions,
            "action": self.action.copy(),
            "reward": self.reward.copy(),
            "pscore": self.pscore.copy(),
            "position": None if self.position is None else self.position.copy(),
            "context": ctx,
            "action_context": np.eye(self.n_actions),
        }
        if self.expected_reward is not None:
            out["expected_reward"] = self.expected_reward.copy()
        return out

    @classmethod
    def from_obp(cls, bandit_feedback: dict[str, object]) -> BanditLog:
        """Build a log from obp's ``bandit_feedback`` dict (e.g. ``OpenBanditDataset.obtain_batch_bandit_feedback()``
        or ``SyntheticBanditDataset.obtain_batch_bandit_feedback(n)``).

        Context columns become ``x0 … x{d-1}``; ``expected_reward`` is kept when present.
        Errors name the missing key or the bad column and row.
        """
        if not isinstance(bandit_feedback, dict):
            raise DataError(
                f"bandit_feedback must be a dict as obp returns it, got {type(bandit_feedback).__name__}"
            )
        for key in ("action", "reward", "pscore"):
            if key not in bandit_feedback or bandit_feedback[key] is None:
                raise DataError(
                    f"bandit_feedback has no {key!r}; obp's dict needs 'action', 'reward' and"
                    " 'pscore' (and usually 'n_actions')"
                )
        action = np.asarray(bandit_feedback["action"])
        n_actions = bandit_feedback.get("n_actions")
        if n_actions is None:
            if action.dtype.kind not in "iuf" or (action.dtype.kind == "f" and not np.isfinite(action).all()):
                raise DataError("bandit_feedback['action'] must hold finite whole numbers")
            top = float(np.max(action)) if action.size else -1.0
            if top >= MAX_ACTIONS:
                raise DataError(f"bandit_feedback['action'] holds {top:.6g}; at most {MAX_ACTIONS:,} actions are supported")
            n_actions = int(top) + 1
        context = None
        ctx = bandit_feedback.get("context")
        if ctx is not None:
            try:
                ctx = np.asarray(ctx, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise DataError(f"bandit_feedback['context'] is not a numeric matrix ({exc})") from None
            ctx = ctx.reshape(len(ctx), -1)
            if len(ctx) != len(action):
                raise DataError(
                    f"bandit_feedback['context'] has {len(ctx)} rows; 'action' has {len(action)}"
                )
            context = pd.DataFrame(ctx, columns=[f"x{j}" for j in range(ctx.shape[1])])
        if isinstance(n_actions, bool) or not isinstance(n_actions, (int, np.integer)):
            raise DataError(f"bandit_feedback['n_actions'] must be a whole number, got {n_actions!r}")
        position = bandit_feedback.get("position")
        q = bandit_feedback.get("expected_reward")
        return cls(
            action=action,
            reward=np.asarray(bandit_feedback["reward"]),
            pscore=np.asarray(bandit_feedback["pscore"]),
            n_actions=int(n_actions),  # type: ignore[call-overload]
            context=context,
            position=None if position is None else np.asarray(position),
            expected_reward=None if q is None else np.asarray(q, dtype=np.float64),
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
    if not p.is_file():
        raise DataError(f"{p}: not a regular file (a folder, FIFO or device); give a parquet or CSV log file")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            table = pq.read_table(p)
            meta = (table.schema.metadata or {}).get(b"adsim")
            if meta and n_actions is None:
                n_actions = _meta_n_actions(meta, p)
                check_log_size(table.num_rows, n_actions, what=f"{p} (metadata adsim.n_actions)")
            df = table.to_pandas()
        elif suffix in (".csv", ".txt", ".tsv"):
            df = pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",")
        else:
            raise DataError(f"{p}: unknown log format {suffix!r}; use .parquet or .csv")
    except DataError:
        raise
    except Exception as exc:  # pyarrow / pandas parse errors
        raise DataError(f"{p}: cannot read the log ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})") from None
    try:
        return BanditLog.from_frame(df, n_actions=n_actions)
    except DataError as exc:
        raise DataError(f"{p}: {exc}") from None


def _meta_n_actions(meta: bytes, path: Path) -> int:
    """``n_actions`` from a parquet file's ``adsim`` metadata, validated as data."""
    try:
        k = json.loads(meta)["n_actions"]
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{path}: the parquet metadata 'adsim' is damaged (no n_actions);"
                        " rewrite the file or strip its metadata") from None
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise DataError(f"{path}: parquet metadata adsim.n_actions must be a whole number >= 1, got {k!r}")
    return k
