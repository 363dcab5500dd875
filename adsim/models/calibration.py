"""Post-hoc probability calibration, fitted on validation predictions.

Three calibrators map a predicted probability ``p`` (logit ``z``) to a calibrated one:

* :class:`TemperatureScaling` — :math:`\\sigma(z / T)`, one parameter T > 0 minimising the
  validation log-loss (Guo et al. 2017, "On Calibration of Modern Neural Networks", ICML).
* :class:`PlattScaling` — :math:`\\sigma(a z + b)` fitted by logistic regression on the logit
  (Platt 1999, "Probabilistic outputs for support vector machines").
* :class:`IsotonicCalibrator` — a monotone step function fitted by
  ``sklearn.isotonic.IsotonicRegression`` (Zadrozny & Elkan 2002), stored as its thresholds and
  applied by linear interpolation (``np.interp``), clipped outside the fitted range.

All follow scikit-learn's conventions: ``__init__`` only stores parameters, ``fit(p, y)`` returns
self, learned state ends in ``_``, ``predict(p)`` before ``fit`` raises
``sklearn.exceptions.NotFittedError``. They serialise to plain JSON (:meth:`to_dict`,
:func:`calibrator_from_dict`); a run folder's ``calibrator.json`` holds one per task
(:func:`save_calibrators` / :func:`load_calibrators`). :func:`reliability_diagram` draws the PNG.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from adsim._io import write_json
from adsim.errors import ConfigError, DataError

__all__ = [
    "TemperatureScaling",
    "PlattScaling",
    "IsotonicCalibrator",
    "IdentityCalibrator",
    "make_calibrator",
    "calibrator_from_dict",
    "save_calibrators",
    "load_calibrators",
    "reliability_diagram",
    "plot_reliability",
]

_EPS = 1e-7


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _check_xy(p: Any, y: Any | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise DataError("calibration inputs must be probabilities in [0, 1] without NaN")
    if y is None:
        return p, None
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise DataError(f"labels and predictions differ in length: {y.size} vs {p.size}")
    if p.size == 0:
        raise DataError("no rows to fit the calibrator on")
    if not np.isin(y, (0.0, 1.0)).all():
        raise DataError("calibration labels must be 0 or 1")
    return p, y


class _Calibrator:
    kind = ""

    def _check_fitted(self, attr: str) -> None:
        if not hasattr(self, attr):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call fit(p_val, y_val)"
                " before predict"
            )

    def fit(self, p: Any, y: Any) -> _Calibrator:  # pragma: no cover - interface
        raise NotImplementedError

    def predict(self, p: Any) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def fit_predict(self, p: Any, y: Any) -> np.ndarray:
        return self.fit(p, y).predict(p)

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError


class IdentityCalibrator(_Calibrator):
    """No calibration (``method: none``); kept so every run folder has a calibrator.json."""

    kind = "none"

    def fit(self, p: Any, y: Any) -> IdentityCalibrator:
        _check_xy(p, y)
        self.fitted_ = True
        return self

    def predict(self, p: Any) -> np.ndarray:
        self._check_fitted("fitted_")
        return _check_xy(p)[0]

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted("fitted_")
        return {"method": self.kind}


class TemperatureScaling(_Calibrator):
    """``σ(z / T)``; T minimises the log-loss on (p, y) (bounded search over log T)."""

    kind = "temperature"

    def __init__(self, *, min_temperature: float = 0.05, max_temperature: float = 20.0) -> None:
        self.min_temperature = min_temperature
        self.max_temperature = max_temperature

    def fit(self, p: Any, y: Any) -> TemperatureScaling:
        from scipy.optimize import minimize_scalar

        p, y = _check_xy(p, y)
        z = _logit(p)

        def nll(log_t: float) -> float:
            zt = z / np.exp(log_t)
            return float(np.mean(np.logaddexp(0.0, zt) - y * zt))

        res = minimize_scalar(
            nll, bounds=(np.log(self.min_temperature), np.log(self.max_temperature)),
            method="bounded", options={"xatol": 1e-6},
        )
        self.temperature_ = float(np.exp(res.x))
        return self

    def predict(self, p: Any) -> np.ndarray:
        self._check_fitted("temperature_")
        return _sigmoid(_logit(_check_xy(p)[0]) / self.temperature_)

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted("temperature_")
        return {"method": self.kind, "temperature_": self.temperature_}


class PlattScaling(_Calibrator):
    """``σ(a·z + b)`` fitted by (nearly unregularised) logistic regression on the logit z."""

    kind = "platt"

    def __init__(self, *, C: float = 1e6) -> None:
        self.C = C

    def fit(self, p: Any, y: Any) -> PlattScaling:
        from sklearn.linear_model import LogisticRegression

        p, y = _check_xy(p, y)
        if y.min() == y.max():
            raise DataError("Platt scaling needs both classes in the validation labels")
        lr = LogisticRegression(C=self.C, max_iter=1000).fit(_logit(p)[:, None], y)
        self.coef_ = float(lr.coef_[0, 0])
        self.intercept_ = float(lr.intercept_[0])
        return self

    def predict(self, p: Any) -> np.ndarray:
        self._check_fitted("coef_")
        return _sigmoid(self.coef_ * _logit(_check_xy(p)[0]) + self.intercept_)

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted("coef_")
        return {"method": self.kind, "coef_": self.coef_, "intercept_": self.intercept_}


class IsotonicCalibrator(_Calibrator):
    """Monotone non-decreasing map fitted by ``IsotonicRegression``, stored as thresholds.

    ``y_min``/``y_max`` bound the output away from 0 and 1 so log-loss stays finite.

    ``min_tail`` (default 20): the lowest and the highest block of the step function are pooled
    with their neighbours (pool-adjacent-violators keeps the map monotone) until each holds at
    least that many validation rows. Without it, a top block of a few rows that were all clicks
    maps every score above the validation range — e.g. a cold-start request whose features are
    all missing, on a small run — to ``y_max`` = 0.999999.
    """

    kind = "isotonic"

    def __init__(self, *, y_min: float = 1e-6, y_max: float = 1 - 1e-6, min_tail: int = 20) -> None:
        self.y_min = y_min
        self.y_max = y_max
        self.min_tail = min_tail

    def fit(self, p: Any, y: Any) -> IsotonicCalibrator:
        from sklearn.isotonic import IsotonicRegression

        p, y = _check_xy(p, y)
        iso = IsotonicRegression(
            y_min=self.y_min, y_max=self.y_max, increasing=True, out_of_bounds="clip"
        ).fit(p, y)
        order = np.argsort(p, kind="stable")
        xs, fitted = p[order], iso.predict(p[order])
        ys = y[order]
        # blocks: runs of equal fitted value over the sorted scores
        starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
        ends = np.r_[starts[1:], len(xs)]
        need, last = min(self.min_tail, len(xs)), len(starts) - 1
        lo = 0
        while lo < last and ends[lo] < need:
            lo += 1
        hi = last
        while hi > lo and len(xs) - starts[hi] < need:
            hi -= 1
        if hi <= lo:  # too few rows for two tails: one block
            edges = [(0, len(xs))]
        else:
            edges = [(0, ends[lo]), *((starts[k], ends[k]) for k in range(lo + 1, hi)), (starts[hi], len(xs))]
        x_t, y_t = [], []
        for a, b in edges:
            v = float(np.clip(ys[a:b].mean(), self.y_min, self.y_max))  # PAVA value of the block
            x_t += [xs[a], xs[b - 1]]
            y_t += [v, v]
        self.x_thresholds_ = np.asarray(x_t, dtype=np.float64)
        self.y_thresholds_ = np.asarray(y_t, dtype=np.float64)
        return self

    def predict(self, p: Any) -> np.ndarray:
        self._check_fitted("x_thresholds_")
        return np.interp(_check_xy(p)[0], self.x_thresholds_, self.y_thresholds_)

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted("x_thresholds_")
        return {
            "method": self.kind,
            "y_min": self.y_min,
            "y_max": self.y_max,
            "min_tail": self.min_tail,
            "x_thresholds_": self.x_thresholds_.tolist(),
            "y_thresholds_": self.y_thresholds_.tolist(),
        }


_KINDS: dict[str, type[_Calibrator]] = {
    c.kind: c for c in (IdentityCalibrator, TemperatureScaling, PlattScaling, IsotonicCalibrator)
}


def make_calibrator(method: str) -> _Calibrator:
    """An unfitted calibrator by name: ``isotonic``, ``platt``, ``temperature`` or ``none``."""
    if method not in _KINDS:
        raise ConfigError(f"unknown calibration method {method!r}; use one of {sorted(_KINDS)}")
    return _KINDS[method]()


#: bounds a stored calibrator must respect (a fitted one always does; a hand-edited one may not)
_T_RANGE = (1e-3, 1e3)
_PLATT_MAX = 1e3


def _finite(d: dict[str, Any], key: str) -> float:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
        raise DataError(f"calibrator {d.get('method')!r}: {key} must be a finite number, found {v!r}")
    return float(v)


def calibrator_from_dict(d: dict[str, Any]) -> _Calibrator:
    """Rebuild a fitted calibrator from :meth:`to_dict` output, validating it as data.

    Refused (:class:`DataError`): an unknown method; a temperature outside
    ``[1e-3, 1e3]`` or not finite; Platt coefficients beyond ±1e3; isotonic thresholds that are
    not finite, not increasing (x) / non-decreasing (y), of different lengths, or y outside [0, 1].
    """
    if not isinstance(d, dict):
        raise DataError(f"a calibrator must be a JSON object, found {type(d).__name__}")
    method = d.get("method")
    if method not in _KINDS:
        raise DataError(f"unknown calibration method {method!r}; expected one of {sorted(_KINDS)}")
    cal = make_calibrator(str(method))
    if isinstance(cal, IdentityCalibrator):
        cal.fitted_ = True
    elif isinstance(cal, TemperatureScaling):
        t = _finite(d, "temperature_")
        if not _T_RANGE[0] <= t <= _T_RANGE[1]:
            raise DataError(f"calibrator 'temperature': temperature_ {t!r} is outside {list(_T_RANGE)}")
        cal.temperature_ = t
    elif isinstance(cal, PlattScaling):
        a, b = _finite(d, "coef_"), _finite(d, "intercept_")
        if abs(a) > _PLATT_MAX or abs(b) > _PLATT_MAX:
            raise DataError(f"calibrator 'platt': coef_ {a!r} / intercept_ {b!r} beyond ±{_PLATT_MAX:g}")
        cal.coef_, cal.intercept_ = a, b
    elif isinstance(cal, IsotonicCalibrator):
        cal.y_min, cal.y_max = _finite(d, "y_min"), _finite(d, "y_max")
        cal.min_tail = int(d.get("min_tail", 1))  # files written before min_tail existed: 1 (none)
        x = np.asarray(d["x_thresholds_"], dtype=np.float64)
        y = np.asarray(d["y_thresholds_"], dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape or x.size == 0:
            raise DataError("calibrator 'isotonic': x_thresholds_ and y_thresholds_ must be equal-length lists")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise DataError("calibrator 'isotonic': thresholds must be finite")
        if (y < 0).any() or (y > 1).any() or not 0 <= cal.y_min <= cal.y_max <= 1:
            raise DataError("calibrator 'isotonic': y_thresholds_, y_min and y_max must be probabilities in [0, 1]")
        if (np.diff(x) < 0).any() or (np.diff(y) < 0).any():
            raise DataError("calibrator 'isotonic': thresholds must be non-decreasing")
        cal.x_thresholds_, cal.y_thresholds_ = x, y
    return cal


def save_calibrators(path: str | Path, calibrators: dict[str, _Calibrator]) -> None:
    """Write ``{"format": ..., "tasks": {task: calibrator dict}}`` atomically."""
    write_json(path, {
        "format": "adsim.calibrator/1",
        "tasks": {t: c.to_dict() for t, c in calibrators.items()},
    })


def load_calibrators(path: str | Path) -> dict[str, _Calibrator]:
    """Task name → fitted calibrator, from a ``calibrator.json``; every problem is a DataError
    naming the file (and the task)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: calibrator file not found; run `adsim calibrate RUN_DIR`")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{p}: calibrator.json is damaged ({type(exc).__name__}: {exc}); refit it with"
                        " `adsim calibrate RUN_DIR`") from None
    if not isinstance(d, dict) or d.get("format") != "adsim.calibrator/1" or not isinstance(d.get("tasks"), dict):
        raise DataError(f"{p}: not an adsim calibrator file (format 'adsim.calibrator/1' with a 'tasks' table)")
    out = {}
    for t, c in d["tasks"].items():
        try:
            out[t] = calibrator_from_dict(c)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise DataError(f"{p}: task {t!r}: {exc}; refit it with `adsim calibrate RUN_DIR`") from None
    return out


def plot_reliability(
    y: Any,
    curves: dict[str, Any],
    n_bins: int = 15,
    title: str = "Reliability diagram",
    axes: Any = None,
) -> Any:
    """Observed click rate vs mean prediction per bin for each named set of predictions.

    The x and y axes zoom onto the predictions' range, since CTRs usually sit well below 0.5;
    the lower panel shows the share of rows per bin. ``axes``: a pair (diagram, histogram) to
    draw into. Returns the Figure (no pyplot; save with :func:`adsim._figures.save_figure`).
    """
    from adsim._figures import figure_of, new_figure
    from adsim.models.metrics import calibration_bins, ece

    if axes is None:
        _, axes = new_figure((6, 6.5), 2, 1, height_ratios=[3, 1], sharex=True)
    ax, axh = axes
    hi = max(float(np.quantile(np.asarray(p), 0.999)) for p in curves.values())
    hi = min(1.0, max(hi * 1.1, 1e-3))
    ax.plot([0, hi], [0, hi], color="grey", lw=1, ls="--", label="perfect calibration (y = x)")
    edges = np.linspace(0.0, hi, n_bins + 1)
    for i, (name, p) in enumerate(curves.items()):
        p = np.clip(np.asarray(p, dtype=np.float64), 0, 1)
        scaled = np.minimum(p / hi, 1.0)  # bins over [0, hi]
        b = calibration_bins(y, scaled, n_bins)
        ok = b["count"] > 0
        mean_p = b["mean_p"][ok] * hi
        ax.plot(mean_p, b["rate"][ok], marker="o", ms=3, color=f"C{i % 10}",
                label=f"{name} (ECE {ece(y, p, n_bins):.4f})")
        axh.bar(edges[:-1], b["count"] / b["count"].sum(), width=hi / n_bins, align="edge",
                alpha=0.5, color=f"C{i % 10}", label=name)
    ax.set_ylabel("observed rate")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    axh.set_xlabel("predicted probability")
    axh.set_ylabel("share of rows")
    axh.set_xlim(0, hi)
    return figure_of(ax)


def reliability_diagram(
    path: str | Path,
    y: Any,
    curves: dict[str, Any],
    n_bins: int = 15,
    title: str = "Reliability diagram",
) -> None:
    """:func:`plot_reliability` written to ``path`` as PNG and SVG."""
    from adsim._figures import save_figure

    save_figure(plot_reliability(y, curves, n_bins, title), path)
