"""Auction exploration logs: the typed bid-log table, its validation and parquet/CSV I/O.

One row per request the logging bidder bid on (requests it skipped are not in the log):

===================== ======= ==================================================================
column                dtype   meaning
===================== ======= ==================================================================
``expected_value``    float   the bidder's expected value of winning the request, in bid units
                              (per impression of the top slot) — the input of target rules
``base_bid``          float   the logging rule's bid b0(x) before randomisation, > 0
``bid``               float   the bid actually placed, B = b0(x)·M, > 0
``propensity``        float   log-normal logs: density f0(B | x) of the bid (> 0); grid logs:
                              probability of the chosen multiplier, in (0, 1]
``won``               0/1     the bid won the (lowest) slot
``price``             float   price paid (0 when lost)
``min_bid``           float   the lowest bid that would have won, where the mechanism reveals
                              it: second price on a win (= price); first price on a loss only
                              if the exchange reveals it (``reveal_min_bid_on_loss``); NaN
                              where not revealed
``click``             0/1     the impression was clicked
``conversion``        0/1     the click converted
``value``             float   realised value: clicks × value per click + conversions × value
                              per conversion
``ctr``               float   optional: the bidder's click probability of the top slot
``time``              float   optional: arrival time (hours since the start of the day)
any other column      any     context features (e.g. ``user_id``, ``x0``, ``region``)
===================== ======= ==================================================================

The log-level facts travel in the parquet schema metadata (key ``adsim.bid_log``, JSON):
``mechanism`` (``second_price``/``first_price``), ``exploration`` (``{"type": "lognormal",
"sigma", "mu"}`` or ``{"type": "grid", "multipliers", "probs"}``), ``reveal_min_bid_on_loss``
and, for simulated logs, ``requests_per_day`` (eligible requests in a day) and the feature spec.
Logs without metadata (your own, or CSV) say ``mechanism`` and ``exploration`` by argument
(``adsim ope --mechanism … --exploration …``).

Validation (:meth:`BidLog.__post_init__`) raises one :class:`~adsim.errors.DataError` naming the
column and the first bad row: missing columns, NaN/inf, ``propensity <= 0`` (or > 1 on a grid
log), ``bid``/``base_bid <= 0``, bids outside the logged support (a multiplier ``bid/base_bid``
not on the declared grid; a density that does not match the declared log-normal), ``won`` not
0/1, a price on a lost request or above the bid.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adsim._io import write_with
from adsim.errors import DataError

__all__ = ["BID_LOG_COLUMNS", "BidLog", "read_bid_log", "is_bid_log"]

BID_LOG_COLUMNS: tuple[str, ...] = (
    "expected_value", "base_bid", "bid", "propensity", "won", "price", "min_bid", "click",
    "conversion", "value",
)
_OPTIONAL = ("ctr", "time")
_META_KEY = b"adsim.bid_log"
MECHANISMS = ("second_price", "first_price")


def _first_bad(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


@dataclass
class BidLog:
    """An auction exploration log (schema in the module docstring), validated on construction.

    Attributes:
        frame: the table (required columns as above, plus context columns).
        mechanism: ``second_price`` or ``first_price``.
        exploration: ``{"type": "lognormal", "sigma": σ, "mu": μ}`` or
            ``{"type": "grid", "multipliers": [...], "probs": [...]}``.
        reveal_min_bid_on_loss: first price: the exchange reveals the winning price on a loss.
        meta: other facts (``requests_per_day``, ``feature_spec``, ``campaign``).
    """

    frame: pd.DataFrame
    mechanism: str
    exploration: dict[str, Any]
    reveal_min_bid_on_loss: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        df = self.frame
        missing = [c for c in BID_LOG_COLUMNS if c not in df.columns]
        if missing:
            raise DataError(
                f"bid log: column {missing[0]!r} is missing; a bid log needs columns"
                f" {', '.join(BID_LOG_COLUMNS)} (see adsim.estimators.bids.log)"
            )
        if len(df) == 0:
            raise DataError("bid log: the log is empty: it needs at least one row")
        if self.mechanism not in MECHANISMS:
            raise DataError(
                f"bid log: mechanism {self.mechanism!r} is not supported; use one of {MECHANISMS}"
            )
        self._check_exploration()
        arrays: dict[str, np.ndarray] = {}
        for c in (*BID_LOG_COLUMNS, *(c for c in _OPTIONAL if c in df.columns)):
            try:
                arrays[c] = df[c].to_numpy(dtype=np.float64)
            except (TypeError, ValueError):
                raise DataError(f"bid log: column {c!r} must be numeric") from None
            if c == "min_bid":
                continue
            r = _first_bad(~np.isfinite(arrays[c]))
            if r is not None:
                raise DataError(f"bid log: column {c!r}: non-finite value (NaN or inf) at row {r}")
        self._arrays = arrays
        for c in ("base_bid", "bid", "propensity"):
            r = _first_bad(arrays[c] <= 0)
            if r is not None:
                raise DataError(
                    f"bid log: column {c!r}: {arrays[c][r]:g} at row {r} must be > 0"
                    + (" (a density or probability of the logged bid)" if c == "propensity" else "")
                )
        for c in ("won", "click", "conversion"):
            r = _first_bad((arrays[c] != 0) & (arrays[c] != 1))
            if r is not None:
                raise DataError(f"bid log: column {c!r}: {arrays[c][r]:g} at row {r} must be 0 or 1")
        for c in ("expected_value", "value", "price"):
            r = _first_bad(arrays[c] < 0)
            if r is not None:
                raise DataError(f"bid log: column {c!r}: {arrays[c][r]:g} at row {r} must be >= 0")
        won = arrays["won"] == 1
        r = _first_bad(~won & (arrays["price"] > 0))
        if r is not None:
            raise DataError(f"bid log: column 'price': {arrays['price'][r]:g} at row {r} on a lost request (won = 0); a lost request pays 0")
        r = _first_bad(arrays["price"] > arrays["bid"] * (1 + 1e-9) + 1e-12)
        if r is not None:
            raise DataError(f"bid log: column 'price': {arrays['price'][r]:g} at row {r} is above the bid {arrays['bid'][r]:g}")
        mb = arrays["min_bid"]
        r = _first_bad(np.isfinite(mb) & (mb < 0) | np.isinf(mb))
        if r is not None:
            raise DataError(f"bid log: column 'min_bid': {mb[r]:g} at row {r} must be >= 0 or NaN (not revealed)")
        if self.mechanism == "second_price":  # the price of a second-price win is the min bid
            arrays["min_bid"] = np.where(won & ~np.isfinite(mb), arrays["price"], mb)
        self._check_support()

    # ------------------------------------------------------------------------------ checks
    def _check_exploration(self) -> None:
        ex = self.exploration
        kind = ex.get("type") if isinstance(ex, dict) else None
        if kind == "lognormal":
            s = ex.get("sigma")
            if not isinstance(s, (int, float)) or not s > 0:
                raise DataError(f"bid log: exploration sigma must be > 0, got {s!r}")
            ex.setdefault("mu", 0.0)
        elif kind == "grid":
            m = np.asarray(ex.get("multipliers", []), dtype=np.float64)
            p = np.asarray(ex.get("probs", []), dtype=np.float64)
            if m.size == 0 or m.shape != p.shape or np.any(m <= 0) or np.any(p <= 0):
                raise DataError("bid log: grid exploration needs multipliers > 0 and probs > 0 of the same length")
        else:
            raise DataError(
                f"bid log: exploration type {kind!r} is unknown; use 'lognormal' (with sigma) or"
                " 'grid' (with multipliers and probs)"
            )

    def _check_support(self) -> None:
        a = self._arrays
        mult = a["bid"] / a["base_bid"]
        if self.kind == "grid":
            r = _first_bad(a["propensity"] > 1)
            if r is not None:
                raise DataError(
                    f"bid log: column 'propensity': {a['propensity'][r]:g} at row {r} is above 1;"
                    " a grid log records the probability of the chosen multiplier"
                )
            grid = np.asarray(self.exploration["multipliers"], dtype=np.float64)
            k = np.abs(mult[:, None] / grid[None, :] - 1).argmin(axis=1)
            off = np.abs(mult / grid[k] - 1) > 1e-6
            r = _first_bad(off)
            if r is not None:
                raise DataError(
                    f"bid log: column 'bid': {a['bid'][r]:g} at row {r} is outside the logged"
                    f" support: bid/base_bid = {mult[r]:.6g} is not one of the grid multipliers"
                    f" {grid.tolist()}"
                )
            self._grid_index = k
        else:
            ex = self.exploration
            z = (np.log(mult) - ex["mu"]) / ex["sigma"]
            dens = np.exp(-0.5 * z * z) / (np.sqrt(2 * np.pi) * ex["sigma"] * a["bid"])
            r = _first_bad(np.abs(a["propensity"] / dens - 1) > 1e-4)
            if r is not None:
                raise DataError(
                    f"bid log: column 'propensity': {a['propensity'][r]:.6g} at row {r} is not the"
                    f" declared log-normal(mu={ex['mu']}, sigma={ex['sigma']}) density of the bid"
                    f" ({dens[r]:.6g}); record f0(bid | x) or declare the right exploration"
                )

    # ------------------------------------------------------------------------- accessors
    @property
    def kind(self) -> str:
        return str(self.exploration["type"])

    @property
    def n_rounds(self) -> int:
        return int(len(self.frame))

    def col(self, name: str) -> np.ndarray:
        """A validated column as float64 (``min_bid`` with second-price wins filled in)."""
        if name not in self._arrays:
            if name not in self.frame.columns:
                raise DataError(f"bid log: column {name!r} is missing")
            return self.frame[name].to_numpy()
        return self._arrays[name]

    @property
    def log_multiplier(self) -> np.ndarray:
        return np.log(self.col("bid") / self.col("base_bid"))

    @property
    def log_density(self) -> np.ndarray:
        """log g0(log B | x) = log(B · f0(B|x)) for log-normal logs (the log-bid's density)."""
        return np.log(self.col("bid") * self.col("propensity"))

    @property
    def grid_index(self) -> np.ndarray:
        """Index of each row's multiplier in the grid (grid logs)."""
        if self.kind != "grid":
            raise DataError("bid log: grid_index needs a grid-exploration log")
        return self._grid_index

    def head(self, n: int) -> BidLog:
        """The first ``n`` rows as a log (validation re-runs on the slice)."""
        return BidLog(self.frame.iloc[:n].reset_index(drop=True), self.mechanism,
                      dict(self.exploration), self.reveal_min_bid_on_loss, dict(self.meta))

    def metadata(self) -> dict[str, Any]:
        return {"mechanism": self.mechanism, "exploration": self.exploration,
                "reveal_min_bid_on_loss": self.reveal_min_bid_on_loss, **self.meta}

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write atomically, with the log-level facts in the schema metadata."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(self.frame, preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[_META_KEY] = json.dumps(self.metadata()).encode()
        table = table.replace_schema_metadata(meta)
        write_with(path, lambda tmp: pq.write_table(table, tmp))


def _read_table(p: Path) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    if not p.exists():
        raise DataError(f"{p}: log file not found")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            table = pq.read_table(p)
            raw = (table.schema.metadata or {}).get(_META_KEY)
            return table.to_pandas(), (json.loads(raw) if raw else None)
        if suffix in (".csv", ".txt", ".tsv"):
            return pd.read_csv(p, sep="\t" if suffix == ".tsv" else ","), None
    except Exception as exc:  # pyarrow / pandas parse errors
        raise DataError(f"{p}: cannot read the log ({type(exc).__name__}: {exc})") from None
    raise DataError(f"{p}: unknown log format {suffix!r}; use .parquet or .csv")


def is_bid_log(path: str | os.PathLike[str]) -> bool:
    """True if the file has the bid-log columns (``bid``, ``base_bid``, ``propensity``, ``won``)
    rather than a bandit log's (``action``, ``pscore``); reads only the schema of parquet files."""
    p = Path(path)
    if not p.exists():
        return False
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            names = set(pq.read_schema(p).names)
        else:
            names = set(pd.read_csv(p, nrows=0).columns)
    except Exception:
        return False
    return {"bid", "base_bid", "propensity", "won"} <= names and "action" not in names


def read_bid_log(
    path: str | os.PathLike[str],
    mechanism: str | None = None,
    exploration: dict[str, Any] | None = None,
    reveal_min_bid_on_loss: bool | None = None,
) -> BidLog:
    """Read a bid log from parquet or CSV; arguments override (or stand in for) its metadata."""
    p = Path(path)
    df, meta = _read_table(p)
    meta = dict(meta or {})
    mech = mechanism or meta.pop("mechanism", None)
    ex = exploration or meta.pop("exploration", None)
    meta.pop("mechanism", None)
    meta.pop("exploration", None)
    reveal = meta.pop("reveal_min_bid_on_loss", False)
    if reveal_min_bid_on_loss is not None:
        reveal = reveal_min_bid_on_loss
    if mech is None:
        raise DataError(f"{p}: the log does not say its mechanism; pass --mechanism second_price or first_price")
    if ex is None:
        raise DataError(
            f"{p}: the log does not say how bids were randomised; pass --exploration"
            " lognormal:SIGMA or grid:M1/P1,M2/P2,…"
        )
    try:
        return BidLog(df, mech, dict(ex), bool(reveal), meta)
    except DataError as exc:
        raise DataError(f"{p}: {exc}") from None
