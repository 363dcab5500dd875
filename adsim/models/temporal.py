"""Derived features for data preparation: time of day/week, recency since the last click, and
user × item cross features.

These run on the *raw* table before the pipeline's :class:`~adsim.models.data.Preprocessor`
(which then encodes the new columns like any other). :class:`DerivedFeaturesConfig` is the YAML
hook; :func:`derive_features` applies it to a DataFrame (vectorised, no per-row Python):

* ``hour_of_day`` (0–23) and ``day_of_week`` (0 = Monday) from a time column (unix seconds, or
  anything ``pandas.to_datetime`` reads) — categorical;
* ``recency_since_last_click`` — seconds since the same user's previous click, using only
  impressions strictly *earlier* than the row (no label leakage: a row's own click never
  counts); rows without an earlier click get ``-1``; with ``recency_log`` it is
  ``log1p(seconds)`` (``-1`` kept) so it can be a dense feature; ``recency_bucket`` also gives
  a categorical version (log2 buckets of seconds, ``none`` when there was no click);
* crosses ``a×b`` — the pair of values ``"<a>|<b>"`` as one categorical column (the classic
  wide-part cross product of Wide & Deep, Cheng et al. 2016; the embedding of a cross is a
  memorised user×item interaction).

Apply in the pipeline: ``derive_features(df, cfg)`` then list the new column names under
``data.sparse`` / ``data.dense`` (:func:`derived_columns` returns them by role).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from adsim.config import StrictModel
from adsim.errors import DataError

__all__ = ["DerivedFeaturesConfig", "derive_features", "derived_columns"]


class DerivedFeaturesConfig(StrictModel):
    """Which derived features to add (see the module docstring)."""

    time_column: str | None = Field(
        default=None, description="Timestamp column (unix seconds or a datetime string)."
    )
    time_unit: str = Field(default="s", description="Unit of a numeric time column (s, ms).")
    hour_of_day: bool = Field(default=True, description="Add hour_of_day (needs time_column).")
    day_of_week: bool = Field(default=True, description="Add day_of_week (needs time_column).")
    user_column: str | None = Field(
        default=None, description="User id column (needed for recency since last click)."
    )
    click_column: str | None = Field(
        default=None, description="Click label column (needed for recency since last click)."
    )
    recency_log: bool = Field(default=True, description="recency_since_last_click as log1p(seconds).")
    recency_bucket: bool = Field(default=True, description="Also add the categorical recency_bucket.")
    crosses: list[tuple[str, str]] = Field(
        default_factory=list, description="Pairs of columns crossed into one categorical column."
    )

    @field_validator("time_unit")
    @classmethod
    def _unit(cls, v: str) -> str:
        if v not in ("s", "ms"):
            raise ValueError("must be 's' or 'ms'")
        return v


def _recency_enabled(cfg: DerivedFeaturesConfig) -> bool:
    return bool(cfg.time_column and cfg.user_column and cfg.click_column)


def derived_columns(cfg: DerivedFeaturesConfig) -> dict[str, list[str]]:
    """``{"sparse": [...], "dense": [...]}`` names of the columns :func:`derive_features` adds."""
    sparse, dense = [], []
    if cfg.time_column:
        sparse += [c for c, on in (("hour_of_day", cfg.hour_of_day), ("day_of_week", cfg.day_of_week)) if on]
    if _recency_enabled(cfg):
        dense.append("recency_since_last_click")
        if cfg.recency_bucket:
            sparse.append("recency_bucket")
    sparse += [f"{a}×{b}" for a, b in cfg.crosses]
    return {"sparse": sparse, "dense": dense}


def _seconds(col: pd.Series, unit: str) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(col):
        t = col.to_numpy(np.float64)
        return t / 1000.0 if unit == "ms" else t
    parsed = pd.to_datetime(col, errors="coerce", utc=True)
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataError(f"time column {col.name!r}: cannot read {col.iloc[row]!r} at row {row} as a time")
    return (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()


def derive_features(df: pd.DataFrame, cfg: DerivedFeaturesConfig) -> pd.DataFrame:
    """A copy of ``df`` with the derived columns added (row order kept)."""
    needed = [c for c in (cfg.time_column, cfg.user_column, cfg.click_column) if c]
    needed += [c for pair in cfg.crosses for c in pair]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(f"derived features: column {missing[0]!r} is not in the data")
    if (cfg.user_column or cfg.click_column) and not cfg.time_column:
        raise DataError("recency since last click needs time_column as well as user/click columns")
    out = df.copy()
    if cfg.time_column:
        t = _seconds(df[cfg.time_column], cfg.time_unit)
        if np.isnan(t).any():
            row = int(np.flatnonzero(np.isnan(t))[0])
            raise DataError(f"time column {cfg.time_column!r} is missing at row {row}")
        stamp = pd.to_datetime(t, unit="s", utc=True)
        if cfg.hour_of_day:
            out["hour_of_day"] = stamp.hour.to_numpy().astype(np.int64)
        if cfg.day_of_week:
            out["day_of_week"] = stamp.day_of_week.to_numpy().astype(np.int64)
        if _recency_enabled(cfg):
            rec = _recency(df[cfg.user_column].to_numpy(), t, df[cfg.click_column].to_numpy())
            has = rec >= 0
            if cfg.recency_bucket:
                b = np.floor(np.log2(1.0 + np.maximum(rec, 0.0))).astype(np.int64)
                out["recency_bucket"] = np.where(has, b.astype(str), "none")
            out["recency_since_last_click"] = np.where(has, np.log1p(np.maximum(rec, 0.0)), -1.0) if cfg.recency_log else rec
    for a, b in cfg.crosses:
        out[f"{a}×{b}"] = df[a].astype("string").fillna("__missing__") + "|" + df[b].astype("string").fillna("__missing__")
    return out


def _recency(user: np.ndarray, t: np.ndarray, click: np.ndarray) -> np.ndarray:
    """Seconds since the user's latest click strictly before each row's time (-1 if none).

    Sort by (user, time); the last click time so far is a cumulative maximum of click times
    within each user, taken over rows of *earlier* timestamps only (ties at the same time do
    not see each other).
    """
    n = len(t)
    codes = pd.factorize(user)[0]
    order = np.lexsort((t, codes))
    u, ts = codes[order], t[order]
    clicked = np.asarray(click)[order].astype(bool)
    # last click time among rows up to and including i (within the user), -inf if none
    ct = np.where(clicked, ts, -np.inf)
    new_user = np.r_[True, u[1:] != u[:-1]]
    group_start = np.maximum.accumulate(np.where(new_user, np.arange(n), 0))
    cum = pd.Series(ct).groupby(u).cummax().to_numpy()  # running last click time per user
    # rows with the same (user, time) must only see clicks of strictly earlier times: take the
    # cumulative max at the row just before the first row of the tie block
    same_as_prev = np.r_[False, (u[1:] == u[:-1]) & (ts[1:] == ts[:-1])]
    block_start = np.maximum.accumulate(np.where(~same_as_prev, np.arange(n), 0))
    prev = block_start - 1
    last = np.where(prev >= group_start, cum[np.maximum(prev, 0)], -np.inf)
    rec = np.where(np.isfinite(last), ts - last, -1.0)
    out = np.empty(n)
    out[order] = rec
    return out
