"""One-call off-policy evaluation of a target policy on a log: the Python side of ``adsim ope``.

>>> result = evaluate(log, action_dist, reward_model="logistic")      # doctest: +SKIP
>>> result.table()                                                    # doctest: +SKIP
>>> run_ope("log.parquet", "target.csv", out="ope_out/")              # doctest: +SKIP

:func:`evaluate` validates the inputs once, computes the overlap diagnostics once, fits (or checks)
the reward model once with K-fold cross-fitting, and runs every requested estimator.
:func:`run_ope` does the same from file paths and writes ``estimates.csv``, ``report.json`` and
``estimates.png`` — all rendered in memory first and each written atomically, so an error leaves
no partial output.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adsim.env.logs import BanditLog, check_log_size, read_log
from adsim.errors import DataError
from adsim.estimators.base import (
    MAX_BOOTSTRAP_DRAWS,
    Estimate,
    check_action_dist,
    check_reward_model,
)
from adsim.estimators.diagnostics import OverlapDiagnostics, OverlapWarning, overlap_diagnostics
from adsim.estimators.ope import shared_terms
from adsim.estimators.registry import ESTIMATORS, parse_estimator_spec
from adsim.estimators.reward_models import REWARD_MODELS, cross_fit_predict, log_features
from adsim.estimators.slate import SLATE_ESTIMATORS
from adsim.estimators.targets import (
    predictions_from_frame,
    read_table,
    target_from_frame,
    target_n_actions,
)

__all__ = ["DEFAULT_ESTIMATORS", "OPEResult", "evaluate", "run_ope", "OUTPUT_FILES", "check_ope_out"]

#: SLOPE-tuned estimators are left out: their intervals ignore the λ selection and under-cover
DEFAULT_ESTIMATORS: tuple[str, ...] = ("dm", "ips", "snips", "dr", "sndr")
#: shown next to estimates whose interval ignores a data-driven selection (SLOPE)
SELECTION_NOTE = ("interval treats the λ that SLOPE selected as fixed; such intervals held the"
                  " truth in only 12–64% of seeds at 95% in adsim's validation")
OUTPUT_FILES = ("estimates.csv", "report.json", "estimates.png")


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf → None, numpy scalars → Python."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


@dataclass
class OPEResult:
    """Estimates of one target policy on one log, with diagnostics and provenance."""

    estimates: list[Estimate]
    diagnostics: OverlapDiagnostics
    reward_model: str
    n_rounds: int
    n_actions: int
    problems: list[str] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """One row per estimator: value, std_err, ci_low, ci_high, … and selected λ if any;
        ``interval_note`` flags intervals that ignore a data-driven selection (SLOPE)."""
        rows = []
        for e in self.estimates:
            row = e.to_dict()
            row.update({f"selected_{k}": v for k, v in e.details.items()
                        if k != "interval_ignores_selection"})
            row["interval_note"] = SELECTION_NOTE if _flagged(e) else ""
            rows.append(row)
        return pd.DataFrame(rows)

    @property
    def interval_warnings(self) -> list[str]:
        """One line per estimate whose interval is not honest (SLOPE), for printing."""
        return [f"{e.estimator}: {SELECTION_NOTE}" for e in self.estimates if _flagged(e)]

    def report(self) -> dict[str, Any]:
        from adsim import __version__

        return _clean({
            "adsim_version": __version__,
            "n_rounds": self.n_rounds,
            "n_actions": self.n_actions,
            "reward_model": self.reward_model,
            "inputs": self.inputs,
            "overlap": self.diagnostics.to_dict(),
            "trusted": not self.problems,
            "problems": self.problems,
            "interval_warnings": self.interval_warnings,
            "estimates": [dict(e.to_dict(), details=e.details) for e in self.estimates],
        })

    def plot_png(self) -> bytes:
        """A PNG of every estimate with its interval (rendered in memory)."""
        from adsim._figures import figure_bytes, new_figure

        names = [e.estimator + (" *" if _flagged(e) else "") for e in self.estimates]
        vals = np.array([e.value for e in self.estimates])
        lo = np.array([e.ci_low for e in self.estimates])
        hi = np.array([e.ci_high for e in self.estimates])
        y = np.arange(len(names))[::-1]
        fig, ax = new_figure((7, 0.45 * len(names) + 1.5))
        ax.errorbar(vals, y, xerr=[vals - lo, hi - vals], fmt="o", capsize=4, color="C0")
        ax.set_yticks(y, names)
        conf = self.estimates[0].confidence if self.estimates else 0.95
        ax.set_xlabel(f"estimated policy value ({100 * conf:.0f}% interval)")
        title = f"off-policy estimates, n = {self.n_rounds:,}"
        if any(_flagged(e) for e in self.estimates):
            title += "\n* interval ignores the λ selection (under-covers)"
        if self.problems:
            title += "  (overlap warning: see report.json)"
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        return figure_bytes(fig)

    def write(self, out_dir: str | os.PathLike[str]) -> list[Path]:
        """Write ``estimates.csv``, ``report.json`` and ``estimates.png`` into ``out_dir``.

        The folder is written as a whole (:func:`adsim._io.atomic_dir`, kind ``"ope"``, with
        ``manifest.json`` last) and replaces an earlier result; a folder holding other files is
        refused rather than replaced.
        """
        import json

        from adsim._io import atomic_dir

        csv = self.table().to_csv(index=False)
        js = json.dumps(self.report(), indent=2, sort_keys=True, allow_nan=False) + "\n"
        png = self.plot_png()
        out = Path(out_dir)
        check_ope_out(out)
        with atomic_dir(out, "ope") as tmp:
            (tmp / OUTPUT_FILES[0]).write_text(csv, encoding="utf-8")
            (tmp / OUTPUT_FILES[1]).write_text(js, encoding="utf-8")
            (tmp / OUTPUT_FILES[2]).write_bytes(png)
        return [out / name for name in OUTPUT_FILES]


def check_ope_out(out: Path, flag: str = "--out") -> None:
    """An OPE output folder is replaced as a whole: refuse a non-folder, or a folder holding files
    that an OPE run did not write (checked before any work by the CLI, and again when writing)."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{flag} {out}: exists and is not a folder; choose another path")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in {*OUTPUT_FILES, "manifest.json"})
        if foreign:
            raise DataError(f"{flag} {out}: the folder holds {foreign[0]!r}, which adsim ope did not write;"
                            " results replace the folder as a whole — choose a new or empty folder")


def _flagged(e: Estimate) -> bool:
    return bool(e.details.get("interval_ignores_selection"))


def _reward_predictions(
    log: BanditLog, reward_model: str | np.ndarray | None, n_folds: int, random_state: int
) -> tuple[np.ndarray | None, str]:
    if reward_model is None:
        return None, "none"
    if isinstance(reward_model, str):
        kind = reward_model
        x = log_features(log.context, log.n_rounds)
        if kind == "auto":
            kind = "logistic" if x.shape[1] else "mean"
        if kind not in REWARD_MODELS:
            raise DataError(
                f"unknown reward model {reward_model!r}; use auto, {', '.join(REWARD_MODELS)} or"
                " a predictions file with columns q_0 … q_{K-1}"
            )
        folds = min(n_folds, log.n_rounds)
        q = cross_fit_predict(kind, x, log.action, log.reward, log.n_actions, folds, random_state)
        return q, f"{kind} (cross-fitted, {folds} folds, {x.shape[1]} features)"
    return check_reward_model(reward_model, log, "reward_model"), "user predictions"


def evaluate(
    log: BanditLog,
    action_dist: np.ndarray,
    reward_model: str | np.ndarray | None = "auto",
    estimators: Sequence[str] = DEFAULT_ESTIMATORS,
    confidence: float = 0.95,
    interval: str = "clt",
    n_bootstrap: int = 1000,
    bootstrap_scheme: str = "half",
    n_folds: int = 5,
    random_state: int = 0,
    warn: bool = True,
) -> OPEResult:
    """Run ``estimators`` for the target ``action_dist`` on ``log``.

    Args:
        log: the logged bandit feedback.
        action_dist: target probabilities ``(n, K)`` or ``(n, K, n_positions)``.
        reward_model: q̂ as an ``(n, K)`` array, or a model to fit with cross-fitting
            (``"auto"`` = logistic if the log has context columns, else per-action means;
            ``"logistic"``, ``"gbm"``, ``"mean"``), or None (only estimators without q̂).
        estimators: names from :data:`adsim.estimators.registry.ESTIMATORS`, optionally with
            hyperparameters: ``"switch_dr:lambda=5"``, ``"dr_os:lambda=100"``,
            ``"switch_dr_slope:lambdas=[inf,100,10,1]"`` (see
            :func:`~adsim.estimators.registry.parse_estimator_spec`); estimates with parameters are
            labelled e.g. ``switch_dr(lambda=5)``.
        confidence, interval, n_bootstrap, bootstrap_scheme: interval settings of every
            estimator.
        n_folds: cross-fitting folds for a fitted reward model.
        random_state: seed of the folds and the bootstrap.
        warn: issue one :class:`OverlapWarning` if the diagnostics find problems.
    """
    if not estimators:
        raise DataError("no estimators requested")
    specs = []
    for e in estimators:
        try:
            specs.append(parse_estimator_spec(e))
        except ValueError as exc:
            raise DataError(f"estimator {e!r}: {exc}") from None
    if log.n_rounds < 2:
        raise DataError(f"the log has {log.n_rounds} row; off-policy estimates need at least 2 (for a"
                        " standard error)")
    if interval == "bootstrap" and n_bootstrap * log.n_rounds > MAX_BOOTSTRAP_DRAWS:
        raise DataError(
            f"--n-bootstrap {n_bootstrap:,} on {log.n_rounds:,} rows would draw"
            f" {n_bootstrap * log.n_rounds:.3g} bootstrap weights per estimator (limit"
            f" {MAX_BOOTSTRAP_DRAWS:.0e}); use fewer replicates or --interval clt"
        )
    raw = np.asarray(action_dist, dtype=np.float64)
    pi = check_action_dist(raw, log)
    diag = overlap_diagnostics(log, pi)
    needs_q = any(ESTIMATORS[sp.name].needs_reward_model for sp in specs)
    if needs_q and reward_model is None:
        names = [sp.label for sp in specs if ESTIMATORS[sp.name].needs_reward_model]
        raise DataError(f"estimators {names} need a reward model; pass reward_model=")
    q, q_desc = _reward_predictions(log, reward_model if needs_q else None, n_folds, random_state)
    out = []
    with warnings.catch_warnings(), shared_terms():
        warnings.simplefilter("ignore", OverlapWarning)
        for sp in specs:
            est = sp.build(confidence=confidence, interval=interval, n_bootstrap=n_bootstrap,
                           bootstrap_scheme=bootstrap_scheme, random_state=random_state,
                           warn=False)
            if sp.name in SLATE_ESTIMATORS:
                res = est.estimate(log, raw)
            else:
                res = est._estimate_checked(log, pi, q, diag)
            out.append(replace(res, estimator=sp.label) if sp.params else res)
    for e in out:  # every reported figure is finite, or the run is an error (never NaN with exit 0)
        figures = {"value": e.value, "std_err": e.std_err, "ci_low": e.ci_low, "ci_high": e.ci_high}
        bad = [k for k, v in figures.items() if not math.isfinite(v)]
        if bad:
            why = ("the target gives no probability to any logged action (no overlap)"
                   if diag.ess == 0 or not np.isfinite(diag.ess) else
                   "weights or rewards too extreme for this estimator")
            raise DataError(
                f"estimator {e.estimator!r} is undefined on this log ({bad[0]} is {figures[bad[0]]}): {why};"
                " leave it out with --estimators, or check the log and target"
            )
    problems = diag.problems()
    if warn and problems:
        diag.warn(stacklevel=2)
    return OPEResult(out, diag, q_desc, log.n_rounds, log.n_actions, problems)


def run_ope(
    log: str | os.PathLike[str] | BanditLog,
    target: str | os.PathLike[str] | pd.DataFrame | np.ndarray,
    reward_model: str | os.PathLike[str] | np.ndarray | None = "auto",
    out: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> OPEResult:
    """:func:`evaluate` from files: a log (parquet/CSV), a target table and optionally a
    predictions file; writes the three outputs to ``out`` when given (see module docstring)."""
    inputs: dict[str, Any] = {}
    tdf: pd.DataFrame | None = None
    if not isinstance(log, BanditLog) and not Path(log).exists():
        raise DataError(f"{log}: log file not found")
    if isinstance(target, (str, os.PathLike)):
        inputs["target"] = str(target)
        tdf = read_table(target, "target")
    elif isinstance(target, pd.DataFrame):
        tdf = target
    k_target = target_n_actions(tdf) if tdf is not None else (
        np.shape(target)[1] if np.ndim(target) >= 2 else None)
    tname = inputs.get("target", "the target")
    if isinstance(log, BanditLog):
        blog = log
    else:
        inputs["log"] = str(log)
        blog = read_log(log)  # its own n_actions (parquet metadata, else max action + 1)
    if k_target is not None:
        # the target decides the action set; it must cover every logged action (else the target
        # is what is wrong: name it) and fit in memory with the log
        check_log_size(blog.n_rounds, k_target, what=f"{tname} (with {blog.n_rounds:,} logged rows)")
        bad = np.flatnonzero(blog.action >= k_target)
        if bad.size:
            r = int(bad[0])
            raise DataError(
                f"{tname}: the target gives probabilities for {k_target} actions (0 … {k_target - 1}), but"
                f" the log {inputs.get('log', '')} has action {int(blog.action[r])} at row {r}; give the target"
                " one probability per action of the log (or fix the log's action ids)"
            )
        if k_target != blog.n_actions:
            blog = BanditLog(blog.action, blog.reward, blog.pscore, k_target, blog.context,
                             blog.position, None)
    if tdf is not None:
        try:
            pi = target_from_frame(tdf, blog.n_rounds, blog.n_actions)
        except DataError as exc:
            raise DataError(f"{inputs.get('target', 'target')}: {exc}") from None
    else:
        pi = np.asarray(target, dtype=np.float64)
    q: str | np.ndarray | None
    if isinstance(reward_model, (str, os.PathLike)) and (
        str(reward_model) == "auto" or str(reward_model) in REWARD_MODELS
    ):
        q = str(reward_model)
    elif isinstance(reward_model, (str, os.PathLike)):
        inputs["reward_model"] = str(reward_model)
        pdf = read_table(reward_model, "reward-model predictions")
        try:
            q = predictions_from_frame(pdf, blog.n_rounds, blog.n_actions)
        except DataError as exc:
            raise DataError(f"{reward_model}: {exc}") from None
    else:
        q = reward_model
    result = evaluate(blog, pi, q, **kwargs)
    result.inputs = inputs
    if out is not None:
        result.write(out)
    return result
