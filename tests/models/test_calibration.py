"""Calibrators: sklearn conventions, JSON round trip, they fix miscalibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from adsim.models.calibration import (
    IsotonicCalibrator,
    PlattScaling,
    TemperatureScaling,
    calibrator_from_dict,
    load_calibrators,
    make_calibrator,
    reliability_diagram,
    save_calibrators,
)
from adsim.models.metrics import ece, log_loss

METHODS = ["isotonic", "platt", "temperature"]


def _overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(-2.0, 1.0, n)
    p_true = 1 / (1 + np.exp(-z))
    y = (rng.random(n) < p_true).astype(float)
    p_model = 1 / (1 + np.exp(-2.0 * z))  # logits doubled: overconfident
    return p_model, y, p_true


@pytest.mark.parametrize("method", METHODS)
def test_fit_returns_self_and_improves_calibration(method: str) -> None:
    p, y, _ = _overconfident(60_000, 0)
    p_test, y_test, _ = _overconfident(60_000, 1)
    cal = make_calibrator(method)
    assert cal.fit(p, y) is cal
    q = cal.predict(p_test)
    assert ece(y_test, q) < 0.01 < ece(y_test, p_test)
    assert log_loss(y_test, q) < log_loss(y_test, p_test)


def test_temperature_recovers_known_scale() -> None:
    p, y, _ = _overconfident(200_000, 2)
    assert TemperatureScaling().fit(p, y).temperature_ == pytest.approx(2.0, rel=0.05)
    platt = PlattScaling().fit(p, y)
    assert platt.coef_ == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize("method", METHODS)
def test_not_fitted_error(method: str) -> None:
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        make_calibrator(method).predict([0.2])


@pytest.mark.parametrize("method", [*METHODS, "none"])
def test_json_round_trip(method: str, tmp_path: Path) -> None:
    p, y, _ = _overconfident(5000, 3)
    cal = make_calibrator(method).fit(p, y)
    save_calibrators(tmp_path / "c.json", {"click": cal})
    again = load_calibrators(tmp_path / "c.json")["click"]
    grid = np.linspace(0, 1, 101)
    np.testing.assert_allclose(again.predict(grid), cal.predict(grid))
    assert type(calibrator_from_dict(cal.to_dict())) is type(cal)


def test_isotonic_is_monotone_and_bounded() -> None:
    p, y, _ = _overconfident(5000, 4)
    q = IsotonicCalibrator().fit(p, y).predict(np.linspace(0, 1, 1001))
    assert (np.diff(q) >= 0).all() and q.min() > 0 and q.max() < 1


def test_reliability_png(tmp_path: Path) -> None:
    p, y, p_true = _overconfident(5000, 5)
    reliability_diagram(tmp_path / "r.png", y, {"raw": p, "truth": p_true})
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
