"""Readers for raw CTR data: Criteo, Avazu, generic CSV/TSV/parquet, and synthetic data with a known truth.

Each reader returns a :class:`pandas.DataFrame` plus the default column roles of its format
(:class:`ColumnDefaults`), which a :class:`~adsim.models.config.DatasetConfig` may override.

* **Criteo** (Kaggle Display Advertising Challenge): ``label``, 13 integer features ``I1..I13``,
  26 hashed categorical features ``C1..C26``. The raw files are tab-separated without a header;
  the public samples are CSV with a header — both are recognised from the first line.
* **Avazu** (Kaggle CTR prediction): CSV with header ``id, click, hour, C1, banner_pos, …``;
  ``hour`` is ``YYMMDDHH``, from which ``hour_of_day`` and ``weekday`` are derived; ``id`` is dropped.
* **Table**: any CSV/TSV/parquet; the config must name the label and feature columns.

Every problem (missing file, unreadable file, wrong layout) is a :class:`~adsim.errors.DataError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.special import logit

from adsim.errors import DataError

if TYPE_CHECKING:
    from adsim.models.config import (
        AvazuSource,
        CriteoSource,
        SyntheticCtcvrSource,
        SyntheticSource,
        TableSource,
    )

__all__ = [
    "ColumnDefaults",
    "CRITEO_DENSE",
    "CRITEO_SPARSE",
    "read_criteo",
    "read_avazu",
    "read_table",
    "generate_synthetic",
    "generate_synthetic_ctcvr",
]

CRITEO_DENSE = tuple(f"I{i}" for i in range(1, 14))
CRITEO_SPARSE = tuple(f"C{i}" for i in range(1, 27))
_CRITEO_COLUMNS = ("label", *CRITEO_DENSE, *CRITEO_SPARSE)


@dataclass(frozen=True)
class ColumnDefaults:
    """Column roles a format implies (used where the dataset config leaves them out)."""

    labels: tuple[str, ...] = ()
    dense: tuple[str, ...] = ()
    sparse: tuple[str, ...] = ()
    log1p: tuple[str, ...] = ()
    truth_column: str | None = None
    group_column: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _check_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file {str(p)!r} not found; check the path in data.source")
    if p.is_dir():
        raise DataError(f"data path {str(p)!r} is a folder; give a file")
    if not p.is_file():  # a FIFO, socket or device (/dev/zero) would be read forever
        raise DataError(f"data path {str(p)!r} is not a regular file (a FIFO or device); give a data file")
    return p


def read_criteo(path: str | Path, nrows: int | None = None) -> pd.DataFrame:
    """Read a Criteo file (raw TSV without header, or CSV with a ``label,I1,…`` header)."""
    p = _check_file(path)
    with p.open("r", encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    dtypes = {c: "string" for c in CRITEO_SPARSE} | {c: "float64" for c in CRITEO_DENSE}
    try:
        if first.startswith("label"):
            df = pd.read_csv(p, nrows=nrows, dtype=dtypes)
        else:
            n = len(first.rstrip("\n").split("\t"))
            if n != len(_CRITEO_COLUMNS):
                raise DataError(
                    f"{p}: line 1 has {n} tab-separated fields; the Criteo format has"
                    f" {len(_CRITEO_COLUMNS)} (label, I1..I13, C1..C26)"
                )
            df = pd.read_csv(p, sep="\t", header=None, names=list(_CRITEO_COLUMNS), nrows=nrows, dtype=dtypes)
    except (ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{p}: not a readable Criteo file ({exc})") from None
    missing = [c for c in _CRITEO_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{p}: Criteo column {missing[0]!r} is missing from the header")
    return df


def criteo_defaults() -> ColumnDefaults:
    return ColumnDefaults(
        labels=("label",), dense=CRITEO_DENSE, sparse=CRITEO_SPARSE, log1p=CRITEO_DENSE
    )


def read_avazu(path: str | Path, nrows: int | None = None) -> pd.DataFrame:
    """Read an Avazu CSV; derive ``hour_of_day`` and ``weekday`` from ``hour`` (YYMMDDHH)."""
    p = _check_file(path)
    try:
        df = pd.read_csv(p, nrows=nrows, dtype={"id": "string"})
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{p}: not a readable Avazu CSV ({exc})") from None
    for col in ("click", "hour"):
        if col not in df.columns:
            raise DataError(f"{p}: Avazu column {col!r} is missing from the header")
    h = pd.to_numeric(df["hour"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(h) & (h == np.floor(h)) & (h >= 0) & (h < 1e8)
    text = pd.Series("", index=df.index, dtype=object)
    text[ok] = pd.Series(h[ok].astype(np.int64)).astype(str).str.zfill(8).to_numpy(dtype=object)
    stamp = pd.to_datetime(text, format="%y%m%d%H", errors="coerce")
    if stamp.isna().any():
        row = int(np.flatnonzero(stamp.isna().to_numpy())[0])
        raise DataError(f"{p}: column 'hour' at row {row} is not YYMMDDHH: {df['hour'].iloc[row]!r}")
    df["hour_of_day"] = stamp.dt.hour.astype("int64")
    df["weekday"] = stamp.dt.day_of_week.astype("int64")
    return df


def avazu_defaults(df: pd.DataFrame) -> ColumnDefaults:
    skip = {"id", "click", "hour"}
    return ColumnDefaults(labels=("click",), sparse=tuple(c for c in df.columns if c not in skip))


def read_table(
    path: str | Path, fmt: str = "auto", sep: str | None = None, nrows: int | None = None
) -> pd.DataFrame:
    """Read a CSV/TSV/parquet file; ``fmt='auto'`` picks the format from the extension."""
    p = _check_file(path)
    if fmt == "auto":
        suffix = p.suffix.lower()
        fmt = {".parquet": "parquet", ".pq": "parquet", ".tsv": "tsv"}.get(suffix, "csv")
    try:
        if fmt == "parquet":
            df = pd.read_parquet(p)
            return df.iloc[:nrows] if nrows is not None else df
        return pd.read_csv(p, sep=sep or ("\t" if fmt == "tsv" else ","), nrows=nrows)
    except Exception as exc:  # pyarrow/pandas raise many types for a bad file
        raise DataError(f"{p}: cannot read it as {fmt} ({type(exc).__name__}: {exc})") from None


def read_source(
    source: CriteoSource | AvazuSource | TableSource, path: str
) -> tuple[pd.DataFrame, ColumnDefaults]:
    """Read one file of a file source with its format's column defaults."""
    if source.type == "criteo":
        return read_criteo(path, source.nrows), criteo_defaults()
    if source.type == "avazu":
        df = read_avazu(path, source.nrows)
        return df, avazu_defaults(df)
    return read_table(path, source.format, source.sep, source.nrows), ColumnDefaults()


# -------------------------------------------------------------------------------- synthetic
def _zipf_probs(vocab_size: int, skew: float) -> np.ndarray:
    p = np.arange(1, vocab_size + 1, dtype=np.float64) ** (-skew)
    return p / p.sum()


def generate_synthetic(cfg: SyntheticSource) -> tuple[pd.DataFrame, ColumnDefaults]:
    """Impressions from a known logistic click model (vectorised, self-contained).

    The model is the simulator's parametric truth (:class:`adsim.env.truth.ParametricTruth`,
    drawn here with the same generator calls in the same order, so a parametric world of the same
    size and seed has the same users and probabilities):

    .. math::

        \\operatorname{logit} p(\\text{click} \\mid u, k)
            = b_k + s\\,(x_u \\cdot e_k) + \\sum_f t_f[c_{uf}, k]

    with ``n_users`` users (dense ``x_u`` ~ N(0, I), sparse fields Zipf-distributed), ads with
    ``e_k`` ~ N(0, I/d), ``b_k`` ~ N(logit(base_ctr), ad_bias_sd²), ``t_f`` ~
    N(0, sparse_effect_sd²). Everything comes from ``np.random.default_rng(cfg.seed)``.
    Columns: ``user_id``, ``x0..x{d-1}`` (dense), the sparse user fields, ``ad_id``,
    ``p_click`` (the true probability) and ``click`` ~ Bernoulli(p_click). The Bayes-optimal
    predictor is ``p_click`` itself, so its AUC and log-loss on the test split are the limits.
    """
    rng = np.random.default_rng(cfg.seed)
    d, k, n_users = cfg.n_dense, cfg.n_ads, cfg.n_users
    names = tuple(f.name for f in cfg.sparse_fields)
    # users (the simulator's Population)
    users_dense = rng.standard_normal((n_users, d))
    users_sparse = np.empty((n_users, len(names)), dtype=np.int64)
    for j, f in enumerate(cfg.sparse_fields):
        users_sparse[:, j] = rng.choice(f.vocab_size, size=n_users, p=_zipf_probs(f.vocab_size, f.zipf))
    # ads (the simulator's Catalog, value_sigma 0.5) and the click model
    ad_emb = cfg.effect_scale * (rng.standard_normal((k, d)) / np.sqrt(max(d, 1)))
    rng.standard_normal(k)  # the catalogue's click values (not used here; keeps the streams aligned)
    bias = logit(cfg.base_ctr) + cfg.ad_bias_sd * rng.standard_normal(k)
    tables = [cfg.sparse_effect_sd * rng.standard_normal((f.vocab_size, k)) for f in cfg.sparse_fields]
    # impressions: a uniform user and a uniform ad
    uid = rng.integers(0, n_users, size=cfg.n_rows)
    ads = rng.integers(0, k, size=cfg.n_rows)
    x, c = users_dense[uid], users_sparse[uid]
    z = np.einsum("nd,nd->n", x, ad_emb[ads]) + bias[ads]
    for j, table in enumerate(tables):
        z += table[c[:, j], ads]
    p = 1.0 / (1.0 + np.exp(-z))
    click = (rng.random(cfg.n_rows) < p).astype(np.int64)
    dense_names = tuple(f"x{i}" for i in range(d))
    cols: dict[str, np.ndarray] = {"user_id": uid}
    cols.update({n: x[:, i] for i, n in enumerate(dense_names)})
    cols.update({n: c[:, j] for j, n in enumerate(names)})
    df = pd.DataFrame(cols)
    df["ad_id"] = ads
    df["p_click"] = p
    df["click"] = click
    return df, ColumnDefaults(
        labels=("click",),
        dense=dense_names,
        sparse=(*names, "ad_id"),
        truth_column="p_click",
        group_column="user_id",
    )


def generate_synthetic_ctcvr(cfg: SyntheticCtcvrSource) -> tuple[pd.DataFrame, ColumnDefaults]:
    """Impressions with clicks and post-click conversions from the known CTR/CVR model of
    :func:`adsim.models.synthetic_ctcvr.generate_ctr_cvr` (labels ``click``, ``conversion``)."""
    from adsim.models.synthetic_ctcvr import DENSE, LABELS, SPARSE, generate_ctr_cvr

    df = generate_ctr_cvr(cfg.n_rows, cfg.seed, n_users=cfg.n_users, n_items=cfg.n_items,
                          base_ctr=cfg.base_ctr, base_cvr=cfg.base_cvr, kappa=cfg.kappa)
    return df, ColumnDefaults(labels=LABELS, dense=DENSE, sparse=SPARSE, log1p=("item_price",),
                              group_column="user_id")
