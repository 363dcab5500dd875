"""The estimator registry: every off-policy estimator by its short name, and estimator specs.

:data:`ESTIMATORS` is the single source of estimator names: ``adsim ope --estimators``, the
Python API (:func:`adsim.estimators.api.evaluate`) and scenario files
(``evaluation.estimators``, typed by :data:`adsim.config.EstimatorName`, which
``tests/test_registries.py`` checks against :data:`BANDIT_ESTIMATORS`) all take their names from
here. A spec adds hyperparameters to a name: ``switch_dr:lambda=5``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from adsim.estimators.base import BaseEstimator
from adsim.estimators.ope import (
    DirectMethod,
    DoublyRobust,
    DROptimisticShrinkage,
    InverseProbabilityWeighting,
    SelfNormalizedDR,
    SelfNormalizedIPS,
    SwitchDR,
)
from adsim.estimators.slate import SLATE_ESTIMATORS
from adsim.estimators.tuning import DROSSlope, SwitchDRSlope

__all__ = [
    "BANDIT_ESTIMATORS",
    "ESTIMATORS",
    "make_estimator",
    "EstimatorSpec",
    "parse_estimator_spec",
    "split_specs",
    "estimator_params",
]


BANDIT_ESTIMATORS: dict[str, type[BaseEstimator]] = {
    cls.name: cls
    for cls in (
        DirectMethod,
        InverseProbabilityWeighting,
        SelfNormalizedIPS,
        DoublyRobust,
        SelfNormalizedDR,
        SwitchDR,
        DROptimisticShrinkage,
        SwitchDRSlope,
        DROSSlope,
    )
}
#: every estimator: the single-slot ones above and the slate (multi-position) ones
ESTIMATORS: dict[str, type[BaseEstimator]] = {**BANDIT_ESTIMATORS, **SLATE_ESTIMATORS}


def make_estimator(name: str, **kwargs: Any) -> BaseEstimator:
    """Estimator by its short name (see :data:`ESTIMATORS`), e.g. ``make_estimator("dr")``."""
    try:
        cls = ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator {name!r}; choose from {sorted(ESTIMATORS)}") from None
    return cls(**kwargs)


# ----------------------------------------------------------------------------------- specs
#: interval settings every estimator shares; not settable through a spec
_COMMON = frozenset(f.name for f in fields(BaseEstimator))


def estimator_params(name: str) -> dict[str, str]:
    """Spec parameter → dataclass field of estimator ``name`` (``lambda`` → ``lambda_``)."""
    cls = ESTIMATORS[name]
    return {f.name.rstrip("_"): f.name for f in fields(cls) if f.name not in _COMMON}


def _number(text: str) -> float:
    t = text.strip().lower()
    if t in ("inf", "+inf", "infinity"):
        return float("inf")
    v = float(t)  # ValueError for non-numbers
    if math.isnan(v):
        raise ValueError(text)
    return v


def split_specs(text: str) -> list[str]:
    """Comma-separated estimator specs; commas inside ``[...]`` belong to a grid."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return [s for s in out if s]


@dataclass(frozen=True)
class EstimatorSpec:
    """An estimator name with hyperparameters, e.g. ``switch_dr:lambda=5`` or
    ``switch_dr_slope:lambdas=[inf,100,10,1]`` (a grid: ``[a,b,…]`` or ``a|b|…``)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """How the estimate is named in tables: ``switch_dr(lambda=5)``; the bare name if no
        parameters were given."""
        if not self.params:
            return self.name

        def fmt(v: Any) -> str:
            if isinstance(v, tuple):
                return "[" + ",".join(fmt(x) for x in v) + "]"
            return "inf" if v == float("inf") else f"{v:g}"

        return f"{self.name}(" + ",".join(f"{k.rstrip('_')}={fmt(v)}" for k, v in self.params) + ")"

    def build(self, **common: Any) -> BaseEstimator:
        """The estimator with these parameters and the shared interval settings ``common``."""
        return make_estimator(self.name, **dict(self.params), **common)


def parse_estimator_spec(spec: str) -> EstimatorSpec:
    """Parse ``name[:param=value[:param=value…]]``; raises ValueError naming what is wrong
    (unknown estimator, unknown parameter with the valid ones, a value that is not a number,
    or one the estimator rejects)."""
    name, *parts = [p.strip() for p in spec.split(":")]
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; choose from {', '.join(sorted(ESTIMATORS))}")
    valid = estimator_params(name)
    params: dict[str, Any] = {}
    for part in parts:
        key, eq, raw = part.partition("=")
        key = key.strip()
        if not eq or not raw.strip():
            raise ValueError(f"{name}: {part!r} is not param=value"
                             + (f"; valid parameters: {', '.join(valid)}" if valid else ""))
        if key not in valid:
            hint = (f"valid parameters: {', '.join(valid)}" if valid
                    else "it takes no parameters")
            raise ValueError(f"{name} has no parameter {key!r}; {hint}")
        field_name = valid[key]
        try:
            if field_name == "lambdas":
                items = raw.strip().strip("[]").replace("|", ",").split(",")
                params[field_name] = tuple(_number(x) for x in items if x.strip())
                if not params[field_name]:
                    raise ValueError(raw)
            else:
                params[field_name] = _number(raw)
        except ValueError:
            raise ValueError(f"{name}:{key}={raw.strip()} is not a number"
                             + (" list such as [inf,100,10,1]" if field_name == "lambdas" else "")
                             + " (inf is allowed)") from None
    try:
        make_estimator(name, **params)
    except (TypeError, ValueError) as exc:
        msg = str(exc).replace("lambda_", "lambda")
        raise ValueError(f"{name}:{', '.join(valid)}: {msg}") from None
    return EstimatorSpec(name, tuple(params.items()))
