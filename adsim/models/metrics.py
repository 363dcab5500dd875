"""CTR metrics: ranking, probability quality, calibration and business figures.

All functions take 1-d arrays ``y`` (0/1 labels) and ``p`` (predicted probabilities) and are
vectorised (grouped metrics use sorting and ``np.bincount``, no Python loop per group).

* **AUC** — area under the ROC curve (``sklearn.metrics.roc_auc_score``).
* **log-loss** — :math:`-\\frac1n\\sum y\\log p + (1-y)\\log(1-p)` (``sklearn.metrics.log_loss``).
* **Brier** — :math:`\\frac1n\\sum (p-y)^2` (``sklearn.metrics.brier_score_loss``).
* **GAUC** — impression-weighted mean of per-group AUCs over groups with both classes
  (Zhou et al. 2018, "Deep Interest Network", KDD):
  :math:`\\mathrm{GAUC} = \\sum_g n_g \\mathrm{AUC}_g / \\sum_g n_g`. Per-group AUC is the
  Mann–Whitney statistic with average ranks for ties.
* **NDCG@K** — mean over groups with at least one positive of
  :math:`\\mathrm{DCG@K}/\\mathrm{IDCG@K}`, :math:`\\mathrm{DCG@K} = \\sum_{i\\le K} (2^{y_i}-1)/\\log_2(i+1)`
  ranking by ``p`` (Järvelin & Kekäläinen 2002).
* **ECE / MCE** — expected / maximum calibration error over ``n_bins`` equal-width bins of ``p``
  (Naeini et al. 2015; Guo et al. 2017): :math:`\\mathrm{ECE} = \\sum_b \\frac{n_b}{n}|\\bar y_b - \\bar p_b|`,
  :math:`\\mathrm{MCE} = \\max_b |\\bar y_b - \\bar p_b|` over non-empty bins.
* **business** — CTR = clicks / impressions; revenue = Σ cost of clicked impressions (CPC);
  eCPM = 1000 · revenue / impressions; ROAS = Σ conversion value / revenue (advertiser spend).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adsim.errors import DataError

__all__ = [
    "auc",
    "log_loss",
    "brier",
    "gauc",
    "ndcg_at_k",
    "calibration_bins",
    "ece",
    "mce",
    "business_metrics",
    "run_business_metrics",
    "classification_metrics",
]

_EPS = 1e-7


def _check(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise DataError(f"labels and predictions differ in length: {y.size} vs {p.size}")
    if y.size == 0:
        raise DataError("no rows to evaluate")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise DataError("predictions must be probabilities in [0, 1] without NaN")
    return y, p


def auc(y: Any, p: Any) -> float:
    """ROC AUC; NaN when only one class is present (AUC is undefined then)."""
    from sklearn.metrics import roc_auc_score

    y, p = _check(y, p)
    if y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, p))


def log_loss(y: Any, p: Any) -> float:
    """Mean binary cross-entropy (probabilities clipped to [1e-7, 1-1e-7])."""
    from sklearn.metrics import log_loss as sk_log_loss

    y, p = _check(y, p)
    return float(sk_log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1]))


def brier(y: Any, p: Any) -> float:
    """Brier score: mean squared error of the probabilities."""
    from sklearn.metrics import brier_score_loss

    y, p = _check(y, p)
    return float(brier_score_loss(y, p))


def _group_sort(group: np.ndarray, key: np.ndarray, descending: bool = False) -> np.ndarray:
    return np.lexsort((-key if descending else key, group))


def gauc(y: Any, p: Any, group: Any) -> float:
    """Impression-weighted mean AUC over groups with both classes (NaN if there is none)."""
    y, p = _check(y, p)
    g = np.unique(np.asarray(group).reshape(-1), return_inverse=True)[1].reshape(-1)
    if g.size != y.size:
        raise DataError(f"group has {g.size} rows, labels have {y.size}")
    order = _group_sort(g, p)
    gs, ps = g[order], p[order]
    # average 1-based rank of each run of equal (group, p) — ties share their mean rank
    new_run = np.r_[True, (gs[1:] != gs[:-1]) | (ps[1:] != ps[:-1])]
    run_start = np.flatnonzero(new_run)
    run_len = np.diff(np.r_[run_start, gs.size])
    ranks = np.repeat(run_start + (run_len + 1) / 2.0, run_len)
    n_g = np.bincount(gs)
    start = np.concatenate([[0], np.cumsum(n_g)[:-1]])
    ranks = ranks - start[gs]
    ys = y[order]
    pos = np.bincount(gs, weights=ys, minlength=n_g.size)
    neg = n_g - pos
    rank_pos = np.bincount(gs, weights=ranks * ys, minlength=n_g.size)
    ok = (pos > 0) & (neg > 0)
    if not ok.any():
        return float("nan")
    auc_g = (rank_pos[ok] - pos[ok] * (pos[ok] + 1) / 2) / (pos[ok] * neg[ok])
    return float(np.sum(n_g[ok] * auc_g) / np.sum(n_g[ok]))


def ndcg_at_k(y: Any, p: Any, group: Any, k: int = 10) -> float:
    """Mean NDCG@K over groups with at least one positive (NaN if there is none).

    Ties in ``p`` are broken by row order (stable), so a constant predictor gets no credit for
    the labels' order beyond chance.
    """
    y, p = _check(y, p)
    g = np.unique(np.asarray(group).reshape(-1), return_inverse=True)[1].reshape(-1)
    if g.size != y.size:
        raise DataError(f"group has {g.size} rows, labels have {y.size}")
    if k < 1:
        raise DataError(f"NDCG@K needs K >= 1, got {k}")
    n_g = np.bincount(g)
    start = np.concatenate([[0], np.cumsum(n_g)[:-1]])
    disc = 1.0 / np.log2(np.arange(2, y.size + 2))

    def dcg(order: np.ndarray) -> np.ndarray:
        gs = g[order]
        pos = np.arange(y.size) - start[gs]
        gain = (2.0 ** y[order] - 1.0) * np.where(pos < k, disc[np.minimum(pos, y.size - 1)], 0.0)
        return np.bincount(gs, weights=gain, minlength=n_g.size)

    dcg_model = dcg(np.lexsort((-p, g)))
    dcg_ideal = dcg(np.lexsort((-y, g)))
    ok = dcg_ideal > 0
    if not ok.any():
        return float("nan")
    return float(np.mean(dcg_model[ok] / dcg_ideal[ok]))


def calibration_bins(y: Any, p: Any, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Equal-width bins of ``p``: count, mean prediction and observed rate per bin."""
    y, p = _check(y, p)
    b = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(b, minlength=n_bins).astype(np.float64)
    sum_p = np.bincount(b, weights=p, minlength=n_bins)
    sum_y = np.bincount(b, weights=y, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "count": count,
            "mean_p": np.where(count > 0, sum_p / count, np.nan),
            "rate": np.where(count > 0, sum_y / count, np.nan),
            "edges": np.linspace(0.0, 1.0, n_bins + 1),
        }


def ece(y: Any, p: Any, n_bins: int = 15) -> float:
    """Expected calibration error over equal-width bins."""
    bins = calibration_bins(y, p, n_bins)
    ok = bins["count"] > 0
    gap = np.abs(bins["rate"][ok] - bins["mean_p"][ok])
    return float(np.sum(bins["count"][ok] * gap) / np.sum(bins["count"]))


def mce(y: Any, p: Any, n_bins: int = 15) -> float:
    """Maximum calibration error over non-empty equal-width bins."""
    bins = calibration_bins(y, p, n_bins)
    ok = bins["count"] > 0
    return float(np.max(np.abs(bins["rate"][ok] - bins["mean_p"][ok])))


def business_metrics(
    clicks: Any, cost_per_click: Any = None, conversion_value: Any = None
) -> dict[str, float]:
    """CTR, revenue, eCPM and ROAS of a set of impressions.

    Args:
        clicks: ``(n,)`` 0/1 click per impression.
        cost_per_click: ``(n,)`` price paid if the impression is clicked (CPC), or None.
        conversion_value: ``(n,)`` advertiser value obtained per impression, or None.
    """
    c = np.asarray(clicks, dtype=np.float64).reshape(-1)
    if c.size == 0:
        raise DataError("no impressions to evaluate")
    out = {"impressions": float(c.size), "clicks": float(c.sum()), "ctr": float(c.mean())}
    if cost_per_click is not None:
        cpc = np.asarray(cost_per_click, dtype=np.float64).reshape(-1)
        if cpc.shape != c.shape:
            raise DataError(f"cost_per_click has {cpc.size} rows, clicks have {c.size}")
        revenue = float(np.sum(c * cpc))
        out["revenue"] = revenue
        out["ecpm"] = 1000.0 * revenue / c.size
        if conversion_value is not None:
            v = np.asarray(conversion_value, dtype=np.float64).reshape(-1)
            if v.shape != c.shape:
                raise DataError(f"conversion_value has {v.size} rows, clicks have {c.size}")
            out["roas"] = float(v.sum() / revenue) if revenue > 0 else float("nan")
    return out


def run_business_metrics(
    y: Any, p: Any, tasks: tuple[str, ...] | list[str], cost_per_click: Any = None,
    conversion_value: Any = None,
) -> dict[str, dict[str, float]]:
    """Business figures per task for a run's ``test_metrics.json`` (observed and predicted).

    Observed: :func:`business_metrics` of the task's labels. Without a price column each click is
    worth one unit, so ``revenue_unit`` = clicks and ``ecpm_unit`` = 1000 · CTR; with
    ``cost_per_click`` (and ``conversion_value``) the real revenue, eCPM (and ROAS) are added.
    Predicted: ``pred_ctr`` = mean predicted probability and ``pred_ecpm_unit`` = 1000 · pred_ctr,
    the eCPM a CPC auction at unit price would expect from the model — its ratio to ``ecpm_unit``
    is the calibration of the revenue forecast.

    Args:
        y: ``(n, T)`` labels; p: ``(n, T)`` predicted probabilities; tasks: the T task names.
        cost_per_click, conversion_value: optional ``(n,)`` arrays (see :func:`business_metrics`).
    """
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    p = np.asarray(p, dtype=np.float64).reshape(len(p), -1)
    if y.shape != p.shape or y.shape[1] != len(tasks):
        raise DataError(f"labels {y.shape}, predictions {p.shape} and {len(tasks)} tasks do not match")
    out = {}
    for j, t in enumerate(tasks):
        unit = business_metrics(y[:, j], np.ones(len(y)))
        m = {"impressions": unit["impressions"], "clicks": unit["clicks"], "ctr": unit["ctr"],
             "revenue_unit": unit["revenue"], "ecpm_unit": unit["ecpm"],
             "pred_ctr": float(p[:, j].mean()), "pred_ecpm_unit": 1000.0 * float(p[:, j].mean())}
        if cost_per_click is not None:
            priced = business_metrics(y[:, j], cost_per_click, conversion_value)
            m.update({k: priced[k] for k in ("revenue", "ecpm", "roas") if k in priced})
        out[t] = m
    return out


def classification_metrics(
    y: Any, p: Any, group: Any = None, k: int = 10, n_bins: int = 15
) -> dict[str, float]:
    """AUC, log-loss, Brier, ECE, MCE, mean prediction/label, and GAUC/NDCG@K with ``group``."""
    y, p = _check(y, p)
    out = {
        "auc": auc(y, p),
        "logloss": log_loss(y, p),
        "brier": brier(y, p),
        "ece": ece(y, p, n_bins),
        "mce": mce(y, p, n_bins),
        "mean_pred": float(p.mean()),
        "ctr": float(y.mean()),
        "n": float(y.size),
    }
    if group is not None:
        out["gauc"] = gauc(y, p, group)
        out[f"ndcg@{k}"] = ndcg_at_k(y, p, group, k)
    return out
