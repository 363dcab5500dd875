"""Data preparation: raw rows → encoded, scaled splits a model can train on.

:func:`prepare_data` reads the source (Criteo, Avazu, CSV/parquet, or the synthetic world), splits
it (random or time-ordered, or predefined files), fits a :class:`Preprocessor` on the **training**
rows only, and writes to ``processed_dir``::

    train_data.parquet  val_data.parquet  test_data.parquet   encoded rows (see below)
    preprocessors.json                                        the fitted Preprocessor, as data

Encoding (fitted on train, applied identically to any later rows):

* **sparse** column → integer id: ``0`` = padding (never produced for a scalar field), ``1`` = the
  out-of-vocabulary bucket (values unseen in training, or seen fewer than ``min_count`` times),
  ``2…`` = known values by decreasing training count. Missing values are their own category
  (``"__missing__"``). Numbers are keyed by their text (``5.0`` and ``5`` are the same key).
* **dense** column → optional ``sign(x)·log(1+|x|)``, then standardised ``(x - mean) / scale``
  (scikit-learn ``StandardScaler``, NaN ignored when fitting); missing values become 0 (the mean).
* **sequence** column (ids joined by ``sep``) → the last ``max_len`` ids, encoded like a sparse
  column, left-aligned and padded with 0, stored as columns ``name:0 … name:{L-1}``.

Processed parquet columns: the label(s) (float32), dense (float32), sparse (int64), sequence
positions (int64), and optionally the group and truth columns as given. The preprocessor is plain
JSON — never a pickle — and ``Preprocessor.load(path).transform(df)`` reproduces the encoding.
:func:`load_split` turns a processed split into :class:`CTRData` arrays for the trainer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from adsim._io import write_json, write_with
from adsim.errors import ConfigError, DataError
from adsim.models.schema import ModelSchema, SequenceField, SparseField

if TYPE_CHECKING:
    from adsim.models.config import DatasetConfig

__all__ = [
    "PAD",
    "OOV",
    "MISSING",
    "SPLITS",
    "Preprocessor",
    "CTRData",
    "prepare_data",
    "is_prepared",
    "load_split",
    "load_preprocessor",
]

PAD, OOV = 0, 1
MISSING = "__missing__"
SPLITS = ("train", "val", "test")
FORMAT = "adsim.preprocessor/1"
#: largest |dense value| (after log1p, if the column has it) a model is fed; beyond it the scaler's
#: variance overflows. Larger values are a DataError naming the column and row.
DENSE_LIMIT = 1e15


def category_keys(values: pd.Series) -> np.ndarray:
    """Text keys of a column's values (vectorised): integral numbers print without ``.0``."""
    if pd.api.types.is_bool_dtype(values.dtype):
        values = values.astype("Int64")
    if pd.api.types.is_numeric_dtype(values.dtype):
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = ~np.isfinite(arr)
        integral = ~missing & (np.floor(arr) == arr) & (np.abs(arr) < 2**53)
        out = arr.astype(str).astype(object)
        out[integral] = arr[integral].astype(np.int64).astype(str)
        out[missing] = MISSING
        return out
    missing = values.isna().to_numpy()
    out = values.astype(str).to_numpy(dtype=object)
    out[missing] = MISSING
    return out


def _py(v: Any) -> Any:
    """A numpy scalar as a plain Python value (for readable messages)."""
    return v.item() if isinstance(v, np.generic) else v


def _hash_config(cfg: DatasetConfig) -> str:
    text = json.dumps(cfg.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Preprocessor:
    """Label encoders, log1p and standard scaling, fitted on training rows.

    Args:
        labels: label columns (0/1).
        dense: numeric feature columns.
        sparse: categorical feature columns.
        sequences: ``(name, sep, max_len)`` of each sequence column.
        min_count: categories seen fewer times in training map to the OOV bucket.
        log1p: dense columns transformed by ``sign(x)·log(1+|x|)`` before scaling.
        passthrough: columns copied unchanged (group, truth).

    Learned state (after :meth:`fit`): ``vocab_`` (column → known keys, id = index + 2),
    ``mean_`` and ``scale_`` (per dense column, after log1p).
    """

    def __init__(
        self,
        labels: list[str],
        dense: list[str] | None = None,
        sparse: list[str] | None = None,
        sequences: list[tuple[str, str, int]] | None = None,
        min_count: int = 1,
        log1p: list[str] | None = None,
        passthrough: list[str] | None = None,
    ) -> None:
        self.labels = list(labels)
        self.dense = list(dense or [])
        self.sparse = list(sparse or [])
        self.sequences = [tuple(s) for s in (sequences or [])]
        self.min_count = int(min_count)
        self.log1p = list(log1p or [])
        self.passthrough = list(passthrough or [])

    # ------------------------------------------------------------------------------ checks
    def check_columns(self, df: pd.DataFrame, where: str = "the data") -> None:
        """Every declared column must exist; raise DataError naming the first that does not."""
        roles = [("labels", self.labels), ("dense", self.dense), ("sparse", self.sparse),
                 ("sequences", [s[0] for s in self.sequences]), ("columns", self.passthrough)]
        for role, cols in roles:
            for c in cols:
                if c not in df.columns:
                    avail = ", ".join(map(str, list(df.columns)[:40]))
                    raise DataError(
                        f"column {c!r} (data.{role}) is not in {where}; available columns: {avail}"
                    )

    def _dense_matrix(self, df: pd.DataFrame, where: str) -> np.ndarray:
        out = np.empty((len(df), len(self.dense)), dtype=np.float64)
        for j, c in enumerate(self.dense):
            col = df[c]
            if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
                num = pd.to_numeric(col, errors="coerce")
                bad = num.isna() & col.notna()
                if bad.any():
                    row = int(np.flatnonzero(bad.to_numpy())[0])
                    raise DataError(
                        f"dense column {c!r} in {where} has non-numeric value {_py(col.iloc[row])!r} at"
                        f" row {row}; list it under data.sparse instead"
                    )
                col = num
            out[:, j] = col.to_numpy(dtype=np.float64, na_value=np.nan)
        out[np.isinf(out)] = np.nan
        logged = [j for j, c in enumerate(self.dense) if c in set(self.log1p)]
        if logged:
            x = out[:, logged]
            out[:, logged] = np.sign(x) * np.log1p(np.abs(x))
        huge = np.abs(out) > DENSE_LIMIT
        if huge.any():
            row, j = (int(v) for v in np.argwhere(huge)[0])
            c = self.dense[j]
            raise DataError(
                f"dense column {c!r} in {where} has value {_py(df[c].iloc[row])!r} at row {row}, beyond"
                f" ±{DENSE_LIMIT:g}{' after log1p' if c in set(self.log1p) else ''}; list the column"
                " under data.log1p, or clip or remove the value"
            )
        return out

    # --------------------------------------------------------------------------------- fit
    def fit(self, df: pd.DataFrame) -> Preprocessor:
        """Learn vocabularies and scalers from training rows ``df``; returns self."""
        from sklearn.preprocessing import StandardScaler

        self.check_columns(df, "the training split")
        if len(df) == 0:
            raise DataError("the training split is empty; check the data source and split fractions")
        self.vocab_: dict[str, list[str]] = {}
        for c in self.sparse:
            self.vocab_[c] = self._fit_vocab(category_keys(df[c]))
        for name, sep, _ in self.sequences:
            self.vocab_[name] = self._fit_vocab(self._seq_tokens(df[name], sep)[1])
        x = self._dense_matrix(df, "the training split")
        all_nan = [c for j, c in enumerate(self.dense) if np.isnan(x[:, j]).all()]
        if all_nan:
            raise DataError(
                f"dense column {all_nan[0]!r} is empty (all values missing) in the training split;"
                " remove it from data.dense"
            )
        if self.dense:
            scaler = StandardScaler().fit(x)
            self.mean_ = [float(v) for v in scaler.mean_]
            self.scale_ = [float(v) for v in scaler.scale_]
        else:
            self.mean_, self.scale_ = [], []
        return self

    def _fit_vocab(self, keys: np.ndarray) -> list[str]:
        counts = pd.Series(keys, dtype=object).value_counts(sort=False)
        counts = counts[counts >= self.min_count]
        order = np.lexsort((counts.index.to_numpy(dtype=str), -counts.to_numpy()))
        return [str(k) for k in counts.index.to_numpy()[order]]

    @staticmethod
    def _seq_tokens(col: pd.Series, sep: str) -> tuple[np.ndarray, np.ndarray]:
        """(row index, token key) of every non-empty token in a separator-joined column."""
        text = col.astype("string").fillna("")
        tokens = text.str.split(sep, regex=False).explode()
        tokens = tokens[tokens.notna() & (tokens != "")]
        return tokens.index.to_numpy(), tokens.to_numpy(dtype=object)

    def _check_fitted(self) -> None:
        if not hasattr(self, "vocab_"):
            raise DataError("this Preprocessor is not fitted yet; call fit(train_rows) or load one")

    # --------------------------------------------------------------------------- transform
    def _vocab_index(self, column: str) -> pd.Index:
        """The vocabulary of ``column`` as a ``pd.Index``, built once per fitted/loaded vocabulary.

        Building the index (and its hash table) costs ~1 ms per column (5k keys), which dominated
        encoding small batches; it is cached and rebuilt only when ``vocab_[column]`` is replaced
        (a new :meth:`fit` or :meth:`from_dict`) or changes length.
        """
        vocab = self.vocab_[column]
        cache: dict[str, tuple[list[str], int, pd.Index]] = self.__dict__.setdefault("_index_cache", {})
        hit = cache.get(column)
        if hit is None or hit[0] is not vocab or hit[1] != len(vocab):
            index = pd.Index(vocab, dtype=object)
            index.get_indexer(index[:1])  # build the hash table now, not on the first encode
            hit = cache[column] = (vocab, len(vocab), index)
        return hit[2]

    def encode(self, column: str, keys: np.ndarray) -> np.ndarray:
        """Ids of ``keys`` for ``column`` (unknown → OOV)."""
        # keys as an object Index: given a bare object array, pandas 3 infers the "str" dtype for
        # it and then casts both sides back to object on every call (3-4x slower)
        target = pd.Index(np.asarray(keys, dtype=object), dtype=object, copy=False)
        idx = self._vocab_index(column).get_indexer(target)
        return np.where(idx < 0, OOV, idx + 2).astype(np.int64)

    @property
    def features(self) -> list[str]:
        """The raw input columns the model needs (dense, sparse, sequence), in schema order."""
        return [*self.dense, *self.sparse, *(s[0] for s in self.sequences)]

    def absent_features(self, columns: Any) -> list[tuple[str, str]]:
        """``(role, column)`` of every feature column not among ``columns`` (role as in the
        dataset config: ``dense``, ``sparse``, ``sequences``)."""
        have = set(columns)
        roles = [("dense", self.dense), ("sparse", self.sparse), ("sequences", [s[0] for s in self.sequences])]
        return [(role, c) for role, cols in roles for c in cols if c not in have]

    def transform(self, df: pd.DataFrame, where: str = "the data", features_only: bool = False) -> pd.DataFrame:
        """Encode ``df`` exactly as the training rows were encoded (see the module docstring).

        With ``features_only`` (scoring new rows) only the feature columns are encoded: labels and
        passthrough (group/truth) columns are neither required nor validated nor copied, and a
        feature column that is absent takes its documented default for every row (dense → the
        training mean, sparse → the ``"__missing__"`` category, sequence → all padding). At least
        one feature column must be present.
        """
        self._check_fitted()
        if features_only:
            feats = self.features
            present = [c for c in feats if c in df.columns]
            if feats and not present:
                avail = ", ".join(map(str, list(df.columns)[:40]))
                raise DataError(
                    f"none of the model's feature columns ({', '.join(feats[:40])}) is in {where};"
                    f" available columns: {avail}"
                )
            df = df[present].reset_index(drop=True)
            for c in feats:
                if c not in df.columns:
                    df[c] = np.nan
        else:
            self.check_columns(df, where)
            df = df.reset_index(drop=True)
        cols: dict[str, Any] = {}
        for c in [] if features_only else self.labels:
            cols[c] = self._label(df[c], c, where)
        if self.dense:
            x = self._dense_matrix(df, where)
            x = (x - np.asarray(self.mean_)) / np.asarray(self.scale_)
            x = np.nan_to_num(x, nan=0.0).astype(np.float32)
            for j, c in enumerate(self.dense):
                cols[c] = x[:, j]
        for c in self.sparse:
            cols[c] = self.encode(c, category_keys(df[c]))
        for name, sep, max_len in self.sequences:
            mat = self._encode_sequence(df[name], name, sep, max_len)
            for i in range(max_len):
                cols[f"{name}:{i}"] = mat[:, i]
        for c in [] if features_only else self.passthrough:
            if c not in cols:
                cols[c] = df[c].to_numpy()
        return pd.DataFrame(cols)

    def _encode_sequence(self, col: pd.Series, name: str, sep: str, max_len: int) -> np.ndarray:
        rows, keys = self._seq_tokens(col, sep)
        ids = self.encode(name, keys)
        # position from the end of each row's sequence; keep the last max_len tokens
        n_per_row = np.bincount(rows, minlength=len(col))
        start = np.concatenate([[0], np.cumsum(n_per_row)[:-1]])
        pos = np.arange(len(rows)) - start[rows]
        keep_from = np.maximum(n_per_row - max_len, 0)
        sel = pos >= keep_from[rows]
        out = np.zeros((len(col), max_len), dtype=np.int64)
        out[rows[sel], (pos - keep_from[rows])[sel]] = ids[sel]
        return out

    @staticmethod
    def _label(col: pd.Series, name: str, where: str) -> np.ndarray:
        y = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.flatnonzero(~np.isin(y, (0.0, 1.0)))
        if bad.size:
            raise DataError(
                f"label column {name!r} in {where} must be 0 or 1, found {_py(col.iloc[bad[0]])!r} at"
                f" row {bad[0]}; binarise it first (e.g. rating >= 4)"
            )
        return y.astype(np.float32)

    # ------------------------------------------------------------------------------ schema
    def schema(self) -> ModelSchema:
        """The :class:`ModelSchema` of the encoded data (vocabulary sizes include PAD and OOV)."""
        self._check_fitted()
        return ModelSchema(
            dense=tuple(self.dense),
            sparse=tuple(SparseField(c, len(self.vocab_[c]) + 2) for c in self.sparse),
            sequences=tuple(
                SequenceField(n, len(self.vocab_[n]) + 2, int(m)) for n, _, m in self.sequences
            ),
            tasks=tuple(self.labels),
        )

    # --------------------------------------------------------------------------- save/load
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "format": FORMAT,
            "labels": self.labels,
            "dense": self.dense,
            "sparse": self.sparse,
            "sequences": [list(s) for s in self.sequences],
            "min_count": self.min_count,
            "log1p": self.log1p,
            "passthrough": self.passthrough,
            "mean_": self.mean_,
            "scale_": self.scale_,
            "vocab_": self.vocab_,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        if d.get("format") != FORMAT:
            raise DataError(f"not an adsim preprocessor (format {d.get('format')!r}, expected {FORMAT!r})")
        pre = cls(d["labels"], d["dense"], d["sparse"], [tuple(s) for s in d["sequences"]],
                  d["min_count"], d["log1p"], d["passthrough"])
        pre.mean_, pre.scale_ = list(d["mean_"]), list(d["scale_"])
        pre.vocab_ = {k: list(v) for k, v in d["vocab_"].items()}
        pre._check_state()
        return pre

    def _check_state(self) -> None:
        """Validate loaded state as data (a hand-edited or damaged file is a DataError, not a crash)."""
        def names(field: str, v: Any) -> None:
            if not isinstance(v, list) or not all(isinstance(c, str) and c for c in v):
                raise DataError(f"{field!r} must be a list of column names")

        for field in ("labels", "dense", "sparse", "log1p", "passthrough"):
            names(field, getattr(self, field))
        if not self.labels:
            raise DataError("'labels' is empty: a run needs at least one label column")
        cols = [*self.labels, *self.dense, *self.sparse, *(s[0] for s in self.sequences if s)]
        dup = sorted({c for c in cols if cols.count(c) > 1})
        if dup:
            raise DataError(f"column {dup[0]!r} has two roles (label/dense/sparse/sequence)")
        for s in self.sequences:
            if (len(s) != 3 or not isinstance(s[0], str) or not isinstance(s[1], str) or not s[1]
                    or isinstance(s[2], bool) or not isinstance(s[2], int) or not 1 <= s[2] <= 4096):
                raise DataError(f"'sequences' entry {list(s)!r} must be [name, separator, max_len 1..4096]")
        for field, vals in (("mean_", self.mean_), ("scale_", self.scale_)):
            if len(vals) != len(self.dense):
                raise DataError(f"{field!r} has {len(vals)} values for {len(self.dense)} dense columns")
            arr = np.asarray(vals, dtype=np.float64)
            if not np.isfinite(arr).all() or (np.abs(arr) > DENSE_LIMIT).any():  # fitted on |x| <= DENSE_LIMIT
                raise DataError(f"{field!r} holds a non-finite value or one beyond {DENSE_LIMIT:.0e}")
        if any(v < 1e-12 for v in self.scale_):  # a fitted scaler never goes below: constant columns get 1
            raise DataError("'scale_' must be >= 1e-12 for every dense column (a fitted scaler never"
                            " stores less; the file was edited or damaged)")
        for c in [*self.sparse, *(s[0] for s in self.sequences)]:
            v = self.vocab_.get(c)
            if not isinstance(v, list) or not all(isinstance(k, str) for k in v):
                raise DataError(f"'vocab_' has no list of string keys for column {c!r}")
            if len(set(v)) != len(v):
                raise DataError(f"'vocab_' of column {c!r} lists a key twice")

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> None:
        write_json(path, {**self.to_dict(), **(extra or {})})

    @classmethod
    def load(cls, path: str | Path) -> Preprocessor:
        p = Path(path)
        if not p.exists():
            raise DataError(f"{p}: preprocessor file not found; run `adsim prepare-data` first")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise DataError(
                f"{p}: not a readable preprocessor file ({type(exc).__name__}: {exc}); re-run"
                " `adsim prepare-data` (or retrain the run)"
            ) from None
        if not isinstance(d, dict):
            raise DataError(f"{p}: not an adsim preprocessor (expected a JSON object)")
        try:
            return cls.from_dict(d)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            if isinstance(exc, DataError):
                raise DataError(f"{p}: {exc}") from None
            raise DataError(
                f"{p}: preprocessor file is incomplete or damaged ({type(exc).__name__}: {exc});"
                " re-run `adsim prepare-data` (or retrain the run)"
            ) from None


# ------------------------------------------------------------------------------- preparation
def _resolve_roles(cfg: DatasetConfig, defaults: Any) -> dict[str, Any]:
    dense = list(cfg.dense) if cfg.dense is not None else list(defaults.dense)
    log1p = dense if cfg.log1p == "all" else list(cfg.log1p)
    if cfg.dense is None and not cfg.log1p:
        log1p = [c for c in defaults.log1p if c in dense]
    roles = {
        "labels": list(cfg.labels) if cfg.labels is not None else list(defaults.labels),
        "dense": dense,
        "sparse": list(cfg.sparse) if cfg.sparse is not None else list(defaults.sparse),
        "log1p": log1p,
        "group": cfg.group_column if cfg.group_column is not None else defaults.group_column,
        "truth": cfg.truth_column if cfg.truth_column is not None else defaults.truth_column,
    }
    if not roles["labels"]:
        raise DataError("data.labels is required for this source: name the 0/1 label column(s)")
    if not (roles["dense"] or roles["sparse"] or cfg.sequences):
        raise DataError("no feature columns: list some under data.dense, data.sparse or data.sequences")
    for c in log1p:
        if c not in dense:
            raise DataError(f"data.log1p column {c!r} is not one of the dense columns")
    feats = [("dense", c) for c in roles["dense"]] + [("sparse", c) for c in roles["sparse"]] + [
        ("sequences", s.name) for s in cfg.sequences]
    for role, c in feats:
        if c in roles["labels"] or (roles["truth"] and c == roles["truth"]):
            kind = "label" if c in roles["labels"] else "truth (true probability)"
            raise ConfigError(
                f"data.{role}: {c!r} is the {kind} column; a feature must not be the target (label"
                f" leakage) — remove it from data.{role}"
            )
    dup = sorted({c for c in roles["labels"] if roles["labels"].count(c) > 1})
    if dup:
        raise ConfigError(f"data.labels: {dup[0]!r} is listed twice; list each label column once")
    seen: dict[str, str] = {}
    for role, c in feats:
        if c in seen:
            raise ConfigError(f"data.{role}: column {c!r} is also listed under data.{seen[c]}; give it one role")
        seen[c] = role
    return roles


def _split(df: pd.DataFrame, cfg: DatasetConfig) -> dict[str, pd.DataFrame]:
    s = cfg.split
    n = len(df)
    if s.method == "time":
        if s.time_column not in df.columns:
            raise DataError(f"split.time_column {s.time_column!r} is not a column of the data")
        order = np.argsort(df[s.time_column].to_numpy(), kind="stable")
    else:
        order = np.random.default_rng(s.seed).permutation(n)
    n_test = int(round(n * s.test_fraction))
    n_val = int(round(n * s.val_fraction))
    n_train = n - n_val - n_test
    parts = {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}
    return {k: df.iloc[np.sort(v) if s.method == "random" else v] for k, v in parts.items()}


def is_prepared(cfg: DatasetConfig) -> bool:
    """True when ``processed_dir`` is a finished processed folder (manifest, sizes match) prepared
    from this same data config."""
    from adsim._io import verify_manifest

    d = Path(cfg.processed_dir)
    if not all((d / f"{s}_data.parquet").exists() for s in SPLITS):
        return False
    try:
        verify_manifest(d, [*(f"{s}_data.parquet" for s in SPLITS), "preprocessors.json"], kind="data",
                        check_hash=False)
    except DataError:
        return False
    try:
        meta = json.loads((d / "preprocessors.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("config_hash") == _hash_config(cfg)


def prepare_data(cfg: DatasetConfig) -> Path:
    """Read, split, fit on train, encode every split and write them (see module docstring)."""
    from adsim._io import atomic_dir, check_output_dir
    from adsim.models.readers import generate_synthetic, generate_synthetic_ctcvr, read_source

    out = check_output_dir(cfg.processed_dir, "data.processed_dir")  # before any work
    _check_replaceable(out)
    src = cfg.source
    if src.type in ("synthetic", "synthetic_ctcvr"):
        gen = generate_synthetic if src.type == "synthetic" else generate_synthetic_ctcvr
        df, defaults = gen(src)  # type: ignore[arg-type]
        frames = _split(df, cfg)
    elif src.path is not None:
        df, defaults = read_source(src, src.path)
        frames = _split(df, cfg)
    else:
        frames = {}
        for split, path in zip(SPLITS, (src.train_path, src.val_path, src.test_path)):
            frames[split], defaults = read_source(src, path)  # type: ignore[arg-type]
    roles = _resolve_roles(cfg, defaults)
    for name, part in frames.items():
        if len(part) == 0:
            raise DataError(
                f"the {name} split is empty ({sum(map(len, frames.values()))} rows in all); give more"
                " rows or change data.split fractions"
            )
    passthrough = [c for c in (roles["group"], roles["truth"]) if c]
    pre = Preprocessor(
        roles["labels"], roles["dense"], roles["sparse"],
        [(s.name, s.sep, s.max_len) for s in cfg.sequences], cfg.min_count, roles["log1p"],
        passthrough,
    ).fit(frames["train"])
    encoded = {name: pre.transform(part, f"the {name} split") for name, part in frames.items()}
    # the whole folder is built aside and renamed into place with its manifest: a bad value in any
    # split, an error or a kill leaves the previous folder (or none), never a partial one
    with atomic_dir(out, "data") as tmp:
        for name, enc in encoded.items():
            write_with(tmp / f"{name}_data.parquet", lambda p, e=enc: e.to_parquet(p, index=False))
        pre.save(tmp / "preprocessors.json", {
            "config_hash": _hash_config(cfg), "group_column": roles["group"],
            "truth_column": roles["truth"], "rows": {k: len(v) for k, v in frames.items()},
        })
    return out


_OWN_FILES = {*(f"{s}_data.parquet" for s in SPLITS), "preprocessors.json", "manifest.json"}


def _check_replaceable(out: Path) -> None:
    """``processed_dir`` is replaced as a whole: refuse a folder holding anything adsim did not write."""
    if not out.is_dir():
        return
    foreign = sorted(p.name for p in out.iterdir() if p.name not in _OWN_FILES)
    if foreign:
        raise ConfigError(
            f"data.processed_dir {out}: the folder holds {foreign[0]!r}{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''},"
            " which adsim did not write; it is replaced as a whole when the data are prepared — choose a new"
            " or empty folder"
        )


def load_preprocessor(processed_dir: str | Path) -> tuple[Preprocessor, dict[str, Any]]:
    """The fitted preprocessor of a processed folder and its metadata (group/truth columns)."""
    p = Path(processed_dir) / "preprocessors.json"
    pre = Preprocessor.load(p)
    meta = json.loads(p.read_text(encoding="utf-8"))
    return pre, {k: meta.get(k) for k in ("group_column", "truth_column", "rows", "config_hash")}


# ------------------------------------------------------------------------------------ arrays
@dataclass
class CTRData:
    """One split as arrays (the trainer's input).

    Attributes:
        dense: ``(N, n_dense)`` float32.
        sparse: ``(N, n_sparse)`` int64.
        labels: ``(N, n_tasks)`` float32.
        seq: ``(N, n_seq, L)`` int64, or None.
        group: ``(N,)`` int64 group codes (GAUC/NDCG), or None.
        truth: ``(N,)`` float64 true probability of the first task (synthetic data), or None.
    """

    dense: np.ndarray
    sparse: np.ndarray
    labels: np.ndarray
    seq: np.ndarray | None = None
    group: np.ndarray | None = None
    truth: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @classmethod
    def from_frame(
        cls, df: pd.DataFrame, schema: ModelSchema, group: str | None = None, truth: str | None = None
    ) -> CTRData:
        """Arrays from an encoded frame (output of :meth:`Preprocessor.transform`)."""
        n = len(df)
        dense = df[list(schema.dense)].to_numpy(np.float32) if schema.dense else np.zeros((n, 0), np.float32)
        names = [f.name for f in schema.sparse]
        sparse = df[names].to_numpy(np.int64) if names else np.zeros((n, 0), np.int64)
        seq = None
        if schema.sequences:
            seq = np.stack(
                [df[[f"{s.name}:{i}" for i in range(s.max_len)]].to_numpy(np.int64) for s in schema.sequences],
                axis=1,
            )
        labels = df[list(schema.tasks)].to_numpy(np.float32)
        g = pd.factorize(df[group])[0].astype(np.int64) if group and group in df.columns else None
        t = df[truth].to_numpy(np.float64) if truth and truth in df.columns else None
        return cls(np.ascontiguousarray(dense), np.ascontiguousarray(sparse), labels, seq, g, t)


def load_split(processed_dir: str | Path, split: str) -> tuple[CTRData, ModelSchema]:
    """Load ``{split}_data.parquet`` of a processed folder as :class:`CTRData` and its schema."""
    from adsim._io import MANIFEST, verify_manifest

    d = Path(processed_dir)
    f = d / f"{split}_data.parquet"
    if not f.exists():
        raise DataError(f"{f} not found; run `adsim prepare-data CONFIG` (or `adsim train --prepare-data`)")
    if not (d / MANIFEST).is_file():
        raise DataError(f"{d}: incomplete processed data (no {MANIFEST}: `adsim prepare-data` did not"
                        " finish); run `adsim prepare-data CONFIG` again")
    try:
        verify_manifest(d, [f.name, "preprocessors.json"], kind="data")
    except DataError as exc:
        raise DataError(f"processed data {exc}; run `adsim prepare-data CONFIG` again") from None
    pre, meta = load_preprocessor(d)
    schema = pre.schema()
    data = CTRData.from_frame(pd.read_parquet(f), schema, meta["group_column"], meta["truth_column"])
    if len(data) == 0:
        raise DataError(f"{f} has no rows; prepare the data with more rows or other split fractions")
    return data, schema
