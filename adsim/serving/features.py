"""Online feature encoding and the feature spec, derived from a run's fitted preprocessor.

:class:`FeatureEncoder` turns the raw feature values of one request (one user × n candidate ads)
into the model's input arrays, encoding them **exactly** as
:meth:`adsim.models.data.Preprocessor.transform` encoded the training rows (a test checks the two
agree), but without pandas: a request is small, and pandas' per-call overhead (~0.5 ms per
column) would dominate the latency budget. Per column it does one vectorised numpy pass (integer
ids through a lookup table, dense values through ``(x - mean) / scale``) or, for string keys, one
dict lookup per value; all candidates are encoded as one batch.

Encoding rules (the documented defaults of missing features):

* **dense** ``x`` → optional ``sign(x)·log(1+|x|)`` → ``(x - mean) / scale``; a missing value
  (absent, ``null``, NaN, ±inf) becomes 0, i.e. the training mean.
* **sparse** value → its key (integral numbers print without ``.0``, booleans as ``0``/``1``,
  strings as they are); known keys → ids ``2…``; unknown keys → the **OOV bucket** ``1``; a missing
  value is the category ``"__missing__"`` (its own id when training saw missing values, else OOV).
* **sequence** value (a list of ids, or one string joined by the column's separator) → the last
  ``max_len`` ids encoded like a sparse value, left-aligned, padded with ``0``; missing → all
  padding.

A value given in a candidate's ``features`` overrides the user's value of the same feature; a
user-level value applies to every candidate. :func:`feature_spec` describes all of this as a
JSON Schema (``GET /v1/feature-spec``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adsim.errors import DataError
from adsim.models.data import DENSE_LIMIT

__all__ = ["FeatureEncoder", "EncodedBatch", "feature_spec", "raw_key", "dense_column", "check_scalar"]

PAD, OOV = 0, 1
MISSING = "__missing__"
_LUT_LIMIT = 1 << 22  # integer-id lookup tables up to 4M entries (32 MiB of int64)


def raw_key(v: Any) -> str:
    """The category key of one raw value, as ``adsim.models.data.category_keys`` computes it."""
    if v is None:
        return MISSING
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return MISSING
        if f == math.floor(f) and abs(f) < 2**53:
            return str(int(f))
        return str(np.float64(f))
    return str(v)


@dataclass
class EncodedBatch:
    """Model input arrays for n rows (see :mod:`adsim.models.schema`)."""

    dense: np.ndarray  # (n, n_dense) float32
    sparse: np.ndarray  # (n, n_sparse) int64
    seq: np.ndarray | None  # (n, n_seq, L) int64

    def __len__(self) -> int:
        return int(self.sparse.shape[0])

    @staticmethod
    def concat(parts: Sequence[EncodedBatch]) -> EncodedBatch:
        seq = None if parts[0].seq is None else np.concatenate([p.seq for p in parts])  # type: ignore[misc]
        return EncodedBatch(np.concatenate([p.dense for p in parts]),
                            np.concatenate([p.sparse for p in parts]), seq)


class FeatureEncoder:
    """Encode request features with a fitted :class:`~adsim.models.data.Preprocessor`.

    Args:
        preprocessor: the run's fitted preprocessor (``preprocessors.json``).
    """

    def __init__(self, preprocessor: Any) -> None:
        pre = preprocessor
        self.dense: list[str] = list(pre.dense)
        self.sparse: list[str] = list(pre.sparse)
        self.sequences: list[tuple[str, str, int]] = [(s[0], s[1], int(s[2])) for s in pre.sequences]
        self.log1p = np.array([c in set(pre.log1p) for c in self.dense], dtype=bool)
        self.mean = np.asarray(pre.mean_, dtype=np.float64)
        self.scale = np.asarray(pre.scale_, dtype=np.float64)
        self.vocab: dict[str, list[str]] = {k: list(v) for k, v in pre.vocab_.items()}
        self.ids: dict[str, dict[str, int]] = {
            c: {k: i + 2 for i, k in enumerate(keys)} for c, keys in self.vocab.items()
        }
        self.luts: dict[str, np.ndarray] = {}
        for c, keys in self.vocab.items():
            lut = _int_lut(keys)
            if lut is not None:
                self.luts[c] = lut
        self.features: list[str] = [*self.dense, *self.sparse, *(s[0] for s in self.sequences)]
        self.kind: dict[str, str] = {
            **{c: "dense" for c in self.dense}, **{c: "sparse" for c in self.sparse},
            **{s[0]: "sequence" for s in self.sequences},
        }

    # -------------------------------------------------------------------------- encoding
    def encode(self, user: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]]) -> EncodedBatch:
        """Arrays for one user × ``len(candidates)`` candidate feature dicts (one batch)."""
        n = len(candidates)
        dense = np.zeros((n, len(self.dense)), dtype=np.float32)
        if self.dense:
            x = np.empty((n, len(self.dense)), dtype=np.float64)
            for j, c in enumerate(self.dense):
                x[:, j] = dense_column(self._column(c, user, candidates), c, n)
            x[np.isinf(x)] = np.nan
            if self.log1p.any():
                xl = x[:, self.log1p]
                x[:, self.log1p] = np.sign(xl) * np.log1p(np.abs(xl))
            huge = np.abs(x) > DENSE_LIMIT
            if huge.any():
                i, j = (int(v) for v in np.argwhere(huge)[0])
                raise DataError(f"feature {self.dense[j]!r} (dense) of candidate {i} is beyond ±{DENSE_LIMIT:g}"
                                f"{' after log1p' if self.log1p[j] else ''}; send a smaller value or null")
            x = (x - self.mean) / self.scale
            dense = np.nan_to_num(x, nan=0.0).astype(np.float32)
        sparse = np.empty((n, len(self.sparse)), dtype=np.int64)
        for j, c in enumerate(self.sparse):
            sparse[:, j] = self._encode_ids(c, self._column(c, user, candidates), n)
        seq = None
        if self.sequences:
            max_l = self.sequences[0][2]
            if any(s[2] != max_l for s in self.sequences):
                raise DataError("sequence columns of one model must share max_len")
            seq = np.zeros((n, len(self.sequences), max_l), dtype=np.int64)
            for j, (c, sep, max_len) in enumerate(self.sequences):
                seq[:, j, :] = self._encode_seq(c, sep, max_len, self._column(c, user, candidates), n)
        return EncodedBatch(dense, sparse, seq)

    @staticmethod
    def _column(c: str, user: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]]) -> Any:
        """The scalar user value of ``c`` or the list of candidate values (user value as fallback)."""
        uv = user.get(c)
        if any(c in f for f in candidates):
            return [f.get(c, uv) for f in candidates]
        return _Scalar(uv)

    def _encode_ids(self, c: str, col: Any, n: int) -> np.ndarray:
        ids, lut = self.ids[c], self.luts.get(c)
        if isinstance(col, _Scalar):
            return np.full(n, ids.get(raw_key(col.value), OOV), dtype=np.int64)
        if lut is not None:
            try:
                arr = np.asarray(col)
            except (ValueError, TypeError, OverflowError):
                arr = np.empty(0, dtype=object)
            if arr.dtype.kind in "iu":  # all plain integers: one vectorised table lookup
                inside = (arr >= 0) & (arr < lut.shape[0])
                return np.where(inside, lut[np.where(inside, arr, 0)], OOV).astype(np.int64)
        return np.fromiter((ids.get(raw_key(v), OOV) for v in col), dtype=np.int64, count=n)

    def _encode_seq(self, c: str, sep: str, max_len: int, col: Any, n: int) -> np.ndarray:
        ids = self.ids[c]
        values = [col.value] if isinstance(col, _Scalar) else col
        rows = np.zeros((len(values), max_len), dtype=np.int64)
        for i, v in enumerate(values):  # sequences are usually user-level: one row
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            if isinstance(v, str):
                tokens = [t for t in v.split(sep) if t != ""]
            elif isinstance(v, (list, tuple)):
                tokens = list(v)
            else:
                raise DataError(
                    f"feature {c!r} (sequence) must be a list of ids or a {sep!r}-joined string,"
                    f" got {v!r}"
                )
            tail = tokens[-max_len:]
            rows[i, : len(tail)] = [ids.get(raw_key(t), OOV) for t in tail]
        return np.broadcast_to(rows, (n, max_len)) if isinstance(col, _Scalar) else rows

    # ------------------------------------------------------------------------------ checks
    def unknown(self, names: Any) -> list[str]:
        return sorted(set(names) - set(self.kind))


class _Scalar:
    """A user-level value broadcast to every candidate."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def dense_column(col: Any, name: str, n: int) -> np.ndarray | float:
    """Float values of a dense feature (None → NaN); anything but a number or null → DataError."""
    if isinstance(col, _Scalar):
        return _dense_value(col.value, name, None)
    try:
        arr = np.asarray(col)
    except (ValueError, TypeError, OverflowError):  # ragged lists, huge ints: checked one by one below
        arr = np.empty(0, dtype=object)
    if arr.dtype.kind in "iuf" and arr.shape == (n,):  # plain numbers: no per-value work
        return arr.astype(np.float64)
    return np.array([_dense_value(v, name, i) for i, v in enumerate(col)], dtype=np.float64)


def check_scalar(values: Sequence[Any], name: str, where: Sequence[str]) -> None:
    """A sparse (categorical) feature takes one scalar per row; a list is a DataError."""
    for v, w in zip(values, where):
        if isinstance(v, (list, tuple, dict)):
            raise DataError(f"feature {name!r} (sparse) must be one value (string, number, boolean or null),"
                            f" got {v!r} in {w}")


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool))


def _dense_value(v: Any, name: str, row: int | None) -> float:
    if not _is_number(v):
        where = "the user features" if row is None else f"candidate {row}"
        raise DataError(f"feature {name!r} (dense) must be a number or null, got {v!r} in {where}")
    if v is None:
        return math.nan
    try:
        return float(v)
    except OverflowError:  # an integer beyond float range (JSON allows any length)
        where = "the user features" if row is None else f"candidate {row}"
        raise DataError(f"feature {name!r} (dense) is too large ({str(v)[:20]}…) in {where}") from None


def _int_lut(keys: list[str]) -> np.ndarray | None:
    """A table ``lut[int value] = id`` when every integer-like key is a small non-negative int."""
    ints = []
    for i, k in enumerate(keys):
        if k.lstrip("-").isdigit() and str(int(k)) == k:
            v = int(k)
            if v < 0 or v >= _LUT_LIMIT:
                return None
            ints.append((v, i + 2))
    if not ints:
        return None
    lut = np.full(max(v for v, _ in ints) + 1, OOV, dtype=np.int64)
    for v, idx in ints:
        lut[v] = idx
    return lut


# -------------------------------------------------------------------------------- the spec
def feature_spec(encoder: FeatureEncoder, version: str, groups: Mapping[str, Sequence[str]] | None = None,
                 max_vocab_listed: int = 50) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the ``features`` objects a model version accepts.

    Every feature is optional; ``default`` is the raw value a missing feature stands for and
    ``x-adsim`` carries the kind, vocabulary size (including PAD and OOV), the OOV id and the
    feature group.
    """
    group_of = {c: g for g, cols in (groups or {}).items() for c in cols}
    props: dict[str, Any] = {}
    for j, c in enumerate(encoder.dense):
        m = float(encoder.mean[j])
        raw_default = float(np.sign(m) * np.expm1(abs(m))) if encoder.log1p[j] else m
        props[c] = {
            "type": ["number", "null"], "default": raw_default,
            "description": (f"dense feature; {'sign(x)·log1p(|x|), then ' if encoder.log1p[j] else ''}"
                            f"standardised with mean {m:.6g} and scale {float(encoder.scale[j]):.6g};"
                            " missing → the training mean"),
            "x-adsim": {"kind": "dense", "log1p": bool(encoder.log1p[j]), "mean": m,
                        "scale": float(encoder.scale[j]), "group": group_of.get(c)},
        }
    for c in encoder.sparse:
        vocab = encoder.vocab[c]
        props[c] = {
            "type": ["string", "integer", "number", "boolean", "null"], "default": None,
            "description": (f"categorical feature with {len(vocab)} known values; unknown values → the OOV"
                            " bucket (id 1); missing → the category '__missing__'"),
            "x-adsim": {"kind": "sparse", "vocab_size": len(vocab) + 2, "n_known": len(vocab), "oov_id": OOV,
                        "examples": vocab[:max_vocab_listed], "group": group_of.get(c)},
        }
    for c, sep, max_len in encoder.sequences:
        vocab = encoder.vocab[c]
        props[c] = {
            "type": ["array", "string", "null"], "items": {"type": ["string", "integer"]}, "default": None,
            "description": (f"behaviour sequence (list of ids or one {sep!r}-joined string); the last"
                            f" {max_len} ids are used; unknown ids → OOV; missing → empty"),
            "x-adsim": {"kind": "sequence", "vocab_size": len(vocab) + 2, "max_len": max_len, "sep": sep,
                        "oov_id": OOV, "group": group_of.get(c)},
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"adsim:feature-spec:{version}",
        "title": f"features of model version {version}",
        "type": "object",
        "properties": props,
        "additionalProperties": False,
        "required": [],
        "x-adsim-groups": {g: list(cols) for g, cols in (groups or {}).items()},
    }
