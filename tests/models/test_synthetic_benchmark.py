"""The synthetic benchmark (slow): test AUC / log-loss vs the Bayes-optimal truth, ECE after calibration.

Run: ``PYTHONPATH=. python -m pytest -q -m slow tests/models/test_synthetic_benchmark.py -s``
(or ``adsim train configs/ctr_synthetic.yaml``). Targets from issue 6: AUC within 0.003 of the
Bayes-optimal AUC; ECE <= 0.002 after calibration.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adsim.models.config import load_run_config
from adsim.models.run import train_run

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_synthetic_benchmark_near_bayes_optimal(tmp_path: Path) -> None:
    cfg = load_run_config(REPO / "configs/ctr_synthetic.yaml")
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"processed_dir": str(tmp_path / "p")})})
    out = train_run(cfg, tmp_path / "run", progress=False)
    m = json.loads((out / "test_metrics.json").read_text())
    raw, cal, bayes = m["raw"]["click"], m["calibrated"]["click"], m["bayes_optimal"]["click"]
    print(f"\nrows {m['n_test']} test; AUC {raw['auc']:.4f} vs Bayes {bayes['auc']:.4f} "
          f"(gap {bayes['auc'] - raw['auc']:.4f}); log-loss {raw['logloss']:.4f} / calibrated "
          f"{cal['logloss']:.4f} vs Bayes {bayes['logloss']:.4f}; ECE raw {raw['ece']:.4f} -> "
          f"calibrated {cal['ece']:.4f} (truth {bayes['ece']:.4f})")
    assert bayes["auc"] - raw["auc"] <= 0.003
    assert cal["ece"] <= 0.002
