"""Feature spec and batched contexts.

A *context* is what a policy sees for one request: a user's dense features and sparse
(categorical) features. :class:`Contexts` holds a whole batch as arrays — never one Python object
per request — and converts to a design matrix (dense + one-hot sparse) for linear models, or to a
pandas table for logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from adsim.errors import DataError

__all__ = ["FeatureSpec", "Contexts", "as_features"]


@dataclass(frozen=True)
class FeatureSpec:
    """Names and sizes of the user features."""

    n_dense: int
    sparse_names: tuple[str, ...] = ()
    vocab_sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if len(self.sparse_names) != len(self.vocab_sizes):
            raise ValueError("sparse_names and vocab_sizes must have the same length")

    @property
    def dense_names(self) -> tuple[str, ...]:
        return tuple(f"x{i}" for i in range(self.n_dense))

    @property
    def n_sparse(self) -> int:
        return len(self.sparse_names)

    @property
    def design_dim(self) -> int:
        """Width of :meth:`Contexts.design_matrix` (dense + one-hot of every sparse field)."""
        return self.n_dense + int(sum(self.vocab_sizes))

    def to_dict(self) -> dict[str, object]:
        return {
            "n_dense": self.n_dense,
            "sparse_names": list(self.sparse_names),
            "vocab_sizes": list(self.vocab_sizes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> FeatureSpec:
        return cls(
            n_dense=int(d["n_dense"]),  # type: ignore[arg-type]
            sparse_names=tuple(d.get("sparse_names", ())),  # type: ignore[arg-type]
            vocab_sizes=tuple(int(v) for v in d.get("vocab_sizes", ())),  # type: ignore[union-attr]
        )


@dataclass
class Contexts:
    """A batch of request contexts.

    Attributes:
        spec: the feature spec.
        user_id: ``(n,)`` int64 index of the user in the population.
        dense: ``(n, n_dense)`` float64.
        sparse: ``(n, n_sparse)`` int64, each column in ``[0, vocab_size)``.
    """

    spec: FeatureSpec
    user_id: np.ndarray
    dense: np.ndarray
    sparse: np.ndarray
    _design: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.user_id.shape[0])

    def take(self, idx: np.ndarray) -> Contexts:
        """Rows ``idx`` as a new batch."""
        return Contexts(self.spec, self.user_id[idx], self.dense[idx], self.sparse[idx])

    def design_matrix(self) -> np.ndarray:
        """``(n, n_dense + Σ vocab)`` float64: dense features then one-hot sparse fields (cached)."""
        if self._design is None:
            n = len(self)
            out = np.zeros((n, self.spec.design_dim), dtype=np.float64)
            out[:, : self.spec.n_dense] = self.dense
            offset = self.spec.n_dense
            rows = np.arange(n)
            for j, v in enumerate(self.spec.vocab_sizes):
                out[rows, offset + self.sparse[:, j]] = 1.0
                offset += v
            self._design = out
        return self._design

    def to_frame(self) -> pd.DataFrame:
        """Columns ``user_id``, ``x0..x{d-1}`` and one column per sparse field."""
        cols: dict[str, np.ndarray] = {"user_id": self.user_id}
        for i, name in enumerate(self.spec.dense_names):
            cols[name] = self.dense[:, i]
        for j, name in enumerate(self.spec.sparse_names):
            cols[name] = self.sparse[:, j]
        return pd.DataFrame(cols)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, spec: FeatureSpec) -> Contexts:
        """Inverse of :meth:`to_frame`; raises :class:`DataError` naming a missing column."""
        need = ["user_id", *spec.dense_names, *spec.sparse_names]
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise DataError(f"context column {missing[0]!r} is missing from the log table")
        sparse = (
            df[list(spec.sparse_names)].to_numpy(np.int64)
            if spec.n_sparse
            else np.zeros((len(df), 0), np.int64)
        )
        for j, (name, v) in enumerate(zip(spec.sparse_names, spec.vocab_sizes)):
            bad = np.flatnonzero((sparse[:, j] < 0) | (sparse[:, j] >= v))
            if bad.size:
                raise DataError(
                    f"column {name!r}: value {sparse[bad[0], j]} at row {bad[0]} is outside"
                    f" [0, {v})"
                )
        dense = (
            df[list(spec.dense_names)].to_numpy(np.float64)
            if spec.n_dense
            else np.zeros((len(df), 0), np.float64)
        )
        return cls(spec, df["user_id"].to_numpy(np.int64), dense, sparse)


def as_features(contexts: Contexts | np.ndarray) -> np.ndarray:
    """A float design matrix from :class:`Contexts` or an array already in that form."""
    if isinstance(contexts, Contexts):
        return contexts.design_matrix()
    x = np.asarray(contexts, dtype=np.float64)
    return x.reshape(len(x), -1)
