"""The feature distribution of a prepared dataset, fitted so a world can sample synthetic users.

A :class:`FeatureDistribution` is fitted on the **encoded training rows** of a prepared dataset
(the output of :func:`adsim.models.data.prepare_data`: scaled dense columns, label-encoded sparse
ids, sequence positions) and offers two samplers:

* ``rows`` — whole rows drawn (with replacement) from a stored pool of training rows: the
  empirical joint distribution, so every correlation between fields is kept exactly.
* ``copula`` — new rows from a Gaussian copula (Nelsen 2006, "An Introduction to Copulas";
  Liu, Lafferty & Wasserman 2009, "The Nonparanormal", JMLR): each column's marginal is kept (dense: 257
  empirical quantiles, interpolated; sparse: the id frequencies), and the dependence between
  columns is the correlation :math:`R` of their normal scores (each value mapped to the
  conditional mean of a standard normal over its empirical-CDF interval). Sampling draws
  :math:`z \\sim N(0, R)`, :math:`u = Φ(z)` and inverts each marginal at ``u``. Sparse ids are
  ordered by training frequency (data prep's encoding), which makes the rank correlation of two
  categorical columns meaningful. Ties (discrete columns) use conditional-mean normal scores and
  the correlation is divided by their attenuation factors (the classic polyserial correction),
  an approximation. Sequence columns are not modelled by the
  copula (they come out empty, i.e. all padding).

Saved as data: ``world_features.parquet`` (the row pool) and ``world_features.json`` (marginals
and the copula correlation) — never a pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adsim._io import write_json, write_with
from adsim.errors import DataError

__all__ = ["FeatureDistribution", "FORMAT"]

FORMAT = "adsim.feature_distribution/1"
_N_QUANTILES = 257


def _normal_scores(col: np.ndarray) -> tuple[np.ndarray, float]:
    r"""Conditional-mean normal scores of a column and their attenuation factor.

    A value whose empirical CDF spans ``(F⁻, F⁺]`` maps to the latent normal's conditional mean
    :math:`E[Z \mid Φ^{-1}(F⁻) < Z ≤ Φ^{-1}(F⁺)] = (φ(a) - φ(b)) / (F⁺ - F⁻)`; the scores' standard
    deviation ``a`` (1 for a continuous column, < 1 with ties) is the factor by which ties shrink
    correlations with the latent variable.
    """
    from scipy.stats import norm

    values, inverse, counts = np.unique(col, return_inverse=True, return_counts=True)
    hi = np.cumsum(counts) / len(col)
    lo = hi - counts / len(col)
    a, b = norm.ppf(lo), norm.ppf(hi)
    score = (norm.pdf(a) - norm.pdf(b)) / np.maximum(hi - lo, 1e-300)
    att = float(np.sqrt(np.sum(counts / len(col) * score**2)))
    return score[inverse.reshape(-1)], att


@dataclass
class FeatureDistribution:
    """Fitted distribution of encoded feature rows (see the module docstring).

    Attributes:
        dense: dense column names.
        sparse: sparse column names.
        vocab: vocabulary size of each sparse column (ids in ``[0, vocab)``).
        seq_columns: stored sequence position columns (``name:i``), carried by ``rows``.
        rows: pool of encoded training rows (feature columns only).
        quantiles: ``(n_dense, 257)`` quantiles of each dense column.
        probs: per sparse column, the id frequencies ``(vocab,)``.
        corr: ``(p, p)`` copula correlation over ``dense + sparse`` columns.
    """

    dense: list[str]
    sparse: list[str]
    vocab: list[int]
    seq_columns: list[str]
    rows: pd.DataFrame
    quantiles: np.ndarray
    probs: list[np.ndarray]
    corr: np.ndarray

    @property
    def columns(self) -> list[str]:
        return [*self.dense, *self.sparse]

        # ------------------------------------------------------------------------------------ fit
    @classmethod
    def fit(
        cls, frame: pd.DataFrame, dense: list[str], sparse: list[str], vocab: list[int],
        seq_columns: list[str] | None = None, max_rows: int = 200_000, seed: int = 0,
    ) -> FeatureDistribution:
        """Fit on encoded rows ``frame``; keep a pool of at most ``max_rows`` rows (seeded)."""
        seq_columns = list(seq_columns or [])
        need = [*dense, *sparse, *seq_columns]
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise DataError(f"feature column {missing[0]!r} is missing from the prepared rows")
        if len(frame) < 2:
            raise DataError(f"need at least 2 prepared rows to fit a feature distribution, got {len(frame)}")
        rng = np.random.default_rng(seed)
        pool = frame[need]
        if len(pool) > max_rows:
            pool = pool.iloc[np.sort(rng.choice(len(pool), max_rows, replace=False))]
        pool = pool.reset_index(drop=True)
        x = pool[[*dense, *sparse]].to_numpy(np.float64)
        q = np.linspace(0.0, 1.0, _N_QUANTILES)
        quantiles = np.quantile(x[:, : len(dense)], q, axis=0).T if dense else np.zeros((0, _N_QUANTILES))
        probs = []
        for c, v in zip(sparse, vocab):
            ids = pool[c].to_numpy(np.int64)
            if ids.min() < 0 or ids.max() >= v:
                raise DataError(f"sparse column {c!r} has ids outside [0, {v})")
            probs.append(np.bincount(ids, minlength=v) / len(ids))
        if x.shape[1]:
            z, att = np.empty_like(x), np.empty(x.shape[1])
            for j in range(x.shape[1]):
                z[:, j], att[j] = _normal_scores(x[:, j])
            corr = np.corrcoef(z, rowvar=False) if x.shape[1] > 1 else np.ones((1, 1))
            corr = np.nan_to_num(np.atleast_2d(corr), nan=0.0)
            # undo the attenuation of tied (discrete) columns: corr(g(B_i), g(B_j)) ≈ ρ a_i a_j
            att = np.where(att > 1e-6, att, 1.0)
            corr = np.clip(corr / np.outer(att, att), -0.999, 0.999)
            np.fill_diagonal(corr, 1.0)
            # nearest positive-definite by eigenvalue clipping
            w, vecs = np.linalg.eigh(corr)
            corr = (vecs * np.maximum(w, 1e-6)) @ vecs.T
            d = np.sqrt(np.diag(corr))
            corr = corr / np.outer(d, d)
        else:
            corr = np.zeros((0, 0))
        return cls(list(dense), list(sparse), [int(v) for v in vocab], seq_columns, pool,
                   quantiles, probs, corr)

    # -------------------------------------------------------------------------------- sample
    def sample_rows(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """``n`` whole rows of the pool, drawn uniformly with replacement."""
        return self.rows.iloc[rng.integers(0, len(self.rows), size=n)].reset_index(drop=True)

    def sample_copula(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """``n`` new rows from the Gaussian copula (sequence columns all padding)."""
        from scipy.stats import norm

        p = len(self.columns)
        out: dict[str, np.ndarray] = {}
        if p:
            z = rng.multivariate_normal(np.zeros(p), self.corr, size=n, method="cholesky")
            u = norm.cdf(z)
            grid = np.linspace(0.0, 1.0, _N_QUANTILES)
            for j, c in enumerate(self.dense):
                out[c] = np.interp(u[:, j], grid, self.quantiles[j]).astype(np.float32)
            for j, c in enumerate(self.sparse):
                cdf = np.cumsum(self.probs[j])
                ids = np.searchsorted(cdf, u[:, len(self.dense) + j] * cdf[-1], side="right")
                out[c] = np.minimum(ids, self.vocab[j] - 1).astype(np.int64)
        for c in self.seq_columns:
            out[c] = np.zeros(n, np.int64)
        return pd.DataFrame(out)

    def sample(self, n: int, rng: np.random.Generator, method: str = "rows") -> pd.DataFrame:
        if method == "rows":
            return self.sample_rows(n, rng)
        if method == "copula":
            return self.sample_copula(n, rng)
        raise ValueError(f"method must be 'rows' or 'copula', got {method!r}")

    # ------------------------------------------------------------------------------- save/load
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "dense": self.dense, "sparse": self.sparse, "vocab": self.vocab,
            "seq_columns": self.seq_columns, "quantiles": self.quantiles.tolist(),
            "probs": [p.tolist() for p in self.probs], "corr": self.corr.tolist(),
        }

    def save(self, folder: str | Path) -> None:
        """Write ``world_features.parquet`` and ``world_features.json`` atomically."""
        d = Path(folder)
        write_with(d / "world_features.parquet", lambda t: self.rows.to_parquet(t, index=False))
        write_json(d / "world_features.json", self.to_dict())

    @classmethod
    def load(cls, folder: str | Path) -> FeatureDistribution:
        d = Path(folder)
        meta_path, rows_path = d / "world_features.json", d / "world_features.parquet"
        if not meta_path.exists() or not rows_path.exists():
            raise DataError(f"{d}: no world_features.json/.parquet; fit one with save_feature_distribution")
        m = json.loads(meta_path.read_text(encoding="utf-8"))
        if m.get("format") != FORMAT:
            raise DataError(f"{meta_path}: not an adsim feature distribution (format {m.get('format')!r})")
        return cls(
            m["dense"], m["sparse"], [int(v) for v in m["vocab"]], m["seq_columns"],
            pd.read_parquet(rows_path), np.asarray(m["quantiles"], dtype=np.float64).reshape(len(m["dense"]), -1),
            [np.asarray(p, dtype=np.float64) for p in m["probs"]],
            np.asarray(m["corr"], dtype=np.float64).reshape(len(m["dense"]) + len(m["sparse"]), -1),
        )
