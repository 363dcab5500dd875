"""Metrics against scikit-learn references and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import ndcg_score, roc_auc_score

from adsim.errors import DataError
from adsim.models import metrics as M


@pytest.fixture()
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 4000
    g = rng.integers(0, 80, n)
    p = np.round(rng.random(n), 2)  # ties on purpose
    y = (rng.random(n) < p).astype(float)
    return y, p, g


def test_gauc_matches_per_group_sklearn(data) -> None:
    y, p, g = data
    aucs, w = [], []
    for k in np.unique(g):
        m = g == k
        if 0 < y[m].sum() < m.sum():
            aucs.append(roc_auc_score(y[m], p[m]))
            w.append(m.sum())
    assert M.gauc(y, p, g) == pytest.approx(np.average(aucs, weights=w), abs=1e-12)
    assert M.gauc(y, p, np.zeros_like(g)) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_ndcg_matches_sklearn_on_equal_groups() -> None:
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(40), 25)
    p = rng.random(1000)
    y = (rng.random(1000) < 0.15).astype(float)
    keep = np.array([y[g == i].sum() > 0 for i in range(40)])
    ref = ndcg_score(y.reshape(40, 25)[keep], p.reshape(40, 25)[keep], k=5)
    assert M.ndcg_at_k(y, p, g, k=5) == pytest.approx(ref, abs=1e-12)
    assert M.ndcg_at_k(y, y, g, k=5) == pytest.approx(1.0)


def test_ece_mce_by_hand() -> None:
    # two bins used: p=0.1 (rate 0.0) and p=0.9 (rate 1.0) → gaps 0.1, 0.1
    p = np.array([0.1, 0.1, 0.9, 0.9])
    y = np.array([0, 0, 1, 1])
    assert M.ece(y, p, 10) == pytest.approx(0.1)
    assert M.mce(y, np.array([0.1, 0.1, 0.9, 0.6]), 10) == pytest.approx(0.4)


def test_perfectly_calibrated_has_small_ece() -> None:
    rng = np.random.default_rng(2)
    p = rng.beta(1, 10, 200_000)
    y = (rng.random(p.size) < p).astype(float)
    assert M.ece(y, p) < 0.003
    assert M.ece(y, np.clip(p * 1.5, 0, 1)) > 0.02


def test_classification_metrics_and_business() -> None:
    y = np.array([0, 1, 1, 0, 1.0])
    p = np.array([0.1, 0.8, 0.7, 0.3, 0.6])
    m = M.classification_metrics(y, p, group=np.array([1, 1, 2, 2, 2]), k=2)
    assert m["auc"] == 1.0 and m["gauc"] == 1.0 and m["ndcg@2"] == pytest.approx(1.0)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["logloss"] == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    b = M.business_metrics(y, cost_per_click=[2, 2, 2, 2, 4], conversion_value=[0, 5, 0, 0, 11])
    assert b["ctr"] == pytest.approx(0.6) and b["revenue"] == 8.0
    assert b["ecpm"] == pytest.approx(1600.0) and b["roas"] == pytest.approx(2.0)
    assert np.isnan(M.auc([1, 1], [0.2, 0.3]))


def test_run_business_metrics_per_task() -> None:
    y = np.array([[0, 0], [1, 0], [1, 1], [0, 0], [1, 0.0]])
    p = np.array([[0.1, 0.0], [0.8, 0.2], [0.7, 0.4], [0.3, 0.1], [0.6, 0.3]])
    b = M.run_business_metrics(y, p, ("click", "conv"))
    assert b["click"]["ctr"] == pytest.approx(0.6) and b["click"]["ecpm_unit"] == pytest.approx(600.0)
    assert b["click"]["revenue_unit"] == 3.0 and b["click"]["impressions"] == 5.0
    assert b["click"]["pred_ctr"] == pytest.approx(0.5) and b["click"]["pred_ecpm_unit"] == pytest.approx(500.0)
    assert b["conv"]["ctr"] == pytest.approx(0.2) and b["conv"]["pred_ecpm_unit"] == pytest.approx(200.0)
    assert "revenue" not in b["click"]  # no price column: only unit-value figures
    priced = M.run_business_metrics(y, p, ("click", "conv"), [2, 2, 2, 2, 4], [0, 5, 0, 0, 11])
    assert priced["click"]["ecpm"] == pytest.approx(1600.0) and priced["click"]["roas"] == pytest.approx(2.0)
    with pytest.raises(DataError, match="3 tasks do not match"):
        M.run_business_metrics(y, p, ("a", "b", "c"))


@pytest.mark.parametrize(("y", "p", "message"), [
    ([0, 1], [0.5], "differ in length: 2 vs 1"),
    ([], [], "no rows"),
    ([0, 1], [0.5, 1.5], "probabilities in [0, 1]"),
    ([0, 1], [0.5, np.nan], "probabilities in [0, 1]"),
])
def test_bad_inputs(y, p, message) -> None:
    with pytest.raises(DataError) as err:
        M.auc(y, p)
    assert message in str(err.value)
