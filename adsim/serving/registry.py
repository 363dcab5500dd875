"""Model registry: several run folders loaded at once, A/B routing, pinning, cold-start fallback.

**Routing.** A request of user ``u`` goes to version ``k`` when

.. math::  h(u) = \\mathrm{int}(\\mathrm{SHA256}(\\text{salt} + ":" + u)[:8]) / 2^{64},\\qquad
           \\textstyle\\sum_{j<k} w_j \\le h(u)\\,W < \\sum_{j\\le k} w_j

with the configured weights ``w`` (``W = Σ w``). The hash is stable across processes and machines
(not Python's salted ``hash()``), so a user always sees the same arm and the shares converge to
``w_k / W``.

**Resolution order** (:meth:`ModelRegistry.resolve`): a pinned ``version`` if it is loaded, else
the A/B arm; a pinned version that is not loaded → the **default** (cold-start) model, with a
``fallback_reason``. Then, if the chosen model uses a configured feature group of which the
request gives no feature at all (e.g. a new user without user features) → the default model, also
with a reason. The default serves whatever it gets (missing features take their defaults).

Each :class:`ServedModel` scores a request in four timed stages — ``feature_lookup`` (feature store
+ gathering columns), ``preprocess`` (encoding), ``model`` (one forward pass for all candidates)
and ``calibration`` — so the service can export per-stage latency histograms.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adsim.errors import ConfigError, DataError
from adsim.serving.config import ServeConfig
from adsim.serving.features import EncodedBatch, FeatureEncoder

__all__ = ["ab_bucket", "ServedModel", "ModelRegistry", "UserFeatureStore", "Resolution", "ModelOutputError"]


class ModelOutputError(RuntimeError):
    """A served model produced a score that is not a finite probability (HTTP 500 with this message)."""


def ab_bucket(user_id: str, salt: str = "adsim-ab") -> float:
    """Stable uniform number in [0, 1) of a user id (SHA-256 of ``salt:user_id``)."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class UserFeatureStore:
    """User features by id, read once from a parquet table (an in-memory feature store)."""

    def __init__(self, path: str | Path, id_column: str = "user_id") -> None:
        import pandas as pd

        p = Path(path)
        if not p.exists():
            raise ConfigError(f"user_features: {p} not found")
        if not p.is_file():
            raise ConfigError(f"user_features: {p} is not a regular file; give a parquet table")
        try:
            df = pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises many types for a damaged file
            raise ConfigError(f"user_features: {p} is not a readable parquet table ({type(exc).__name__}:"
                              f" {' '.join(str(exc).split())[:200]})") from None
        if id_column not in df.columns:
            raise ConfigError(f"user_features: {p} has no id column {id_column!r} (set user_id_column)")
        ids = [str(v) for v in df[id_column].tolist()]
        cols = [c for c in df.columns if c != id_column]
        records = df[cols].astype(object).where(df[cols].notna(), None).to_dict("records")
        self.rows: dict[str, dict[str, Any]] = dict(zip(ids, records))
        self.columns = cols

    def lookup(self, user_id: str) -> dict[str, Any]:
        return self.rows.get(user_id, {})


@dataclass
class ServedModel:
    """One loaded run folder with its encoder, inference backend and calibrators."""

    version: str
    path: Path
    encoder: FeatureEncoder
    backend: Any  # callable EncodedBatch -> (n, T) float32 logits
    backend_name: str
    calibrators: list[Any]  # one per task, or None
    tasks: tuple[str, ...]
    weight: float
    groups_used: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path, version: str, weight: float, backend: str, threads: int,
             groups: Mapping[str, Sequence[str]]) -> ServedModel:
        from adsim.models.checkpoint import load_run

        run = load_run(path)  # a missing/damaged/mismatched run folder raises a clear DataError
        enc = FeatureEncoder(run.preprocessor)
        if backend == "onnx":
            from adsim.models.export import input_names, load_onnx_for_run, onnx_session

            data, _ = load_onnx_for_run(run)
            fn = _onnx_backend(onnx_session(data, threads), input_names(run.schema))
        else:
            fn = _torch_backend(run.model)
        cals = [run.calibrators.get(t) for t in run.schema.tasks]
        feats = set(enc.features)
        used = {g: [c for c in cols if c in feats] for g, cols in groups.items()}
        return cls(version, Path(path), enc, fn, backend, cals, tuple(run.schema.tasks), weight,
                   {g: cols for g, cols in used.items() if cols})

    def score(self, user: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]],
              timings: dict[str, float]) -> np.ndarray:
        """Calibrated probabilities ``(n, T)`` for one user × candidates; adds stage seconds to
        ``timings``."""
        t0 = time.perf_counter()
        batch = self.encoder.encode(user, candidates)
        t1 = time.perf_counter()
        p = self.predict_encoded(batch, timings)
        timings["preprocess"] = timings.get("preprocess", 0.0) + (t1 - t0)
        return p

    def predict_encoded(self, batch: EncodedBatch, timings: dict[str, float]) -> np.ndarray:
        t1 = time.perf_counter()
        z = np.asarray(self.backend(batch), dtype=np.float64).reshape(len(batch), -1)
        t2 = time.perf_counter()
        if not np.isfinite(z).all():
            i = int(np.flatnonzero(~np.isfinite(z).all(axis=1))[0])
            raise ModelOutputError(f"model version {self.version!r} produced a non-finite score for row {i};"
                                   " the run's weights are damaged — retrain or export it again")
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        for j, cal in enumerate(self.calibrators):
            if cal is not None:
                p[:, j] = cal.predict(p[:, j])
        # calibrators are validated when loaded (outputs within [0, 1]); guard the served range anyway
        if not np.isfinite(p).all():
            raise ModelOutputError(f"model version {self.version!r}: its calibrator produced a non-finite"
                                   " probability; refit it with `adsim calibrate`")
        np.clip(p, 0.0, 1.0, out=p)
        t3 = time.perf_counter()
        timings["model"] = timings.get("model", 0.0) + (t2 - t1)
        timings["calibration"] = timings.get("calibration", 0.0) + (t3 - t2)
        return p


def _torch_backend(model: Any) -> Any:
    import torch

    @torch.inference_mode()
    def run(b: EncodedBatch) -> np.ndarray:
        batch = {"dense": torch.from_numpy(b.dense), "sparse": torch.from_numpy(b.sparse)}
        if b.seq is not None:
            batch["seq"] = torch.from_numpy(np.ascontiguousarray(b.seq))
        return model(batch).float().numpy()

    return run


def _onnx_backend(session: Any, names: list[str]) -> Any:
    def run(b: EncodedBatch) -> np.ndarray:
        feeds = {"dense": b.dense, "sparse": b.sparse, "seq": b.seq}
        return session.run(None, {k: np.ascontiguousarray(feeds[k]) for k in names})[0]

    return run


@dataclass
class Resolution:
    """Which model serves a request, and why."""

    model: ServedModel
    routed_by: str  # "ab" | "pinned" | "fallback"
    fallback_reason: str | None = None


class ModelRegistry:
    """All served versions, the A/B weights and the cold-start default (see module docstring)."""

    def __init__(self, models: Sequence[ServedModel], default: str | None = None,
                 feature_groups: Mapping[str, Sequence[str]] | None = None, salt: str = "adsim-ab",
                 user_store: UserFeatureStore | None = None) -> None:
        if not models:
            raise ConfigError("serve at least one model (give a run folder)")
        self.models: dict[str, ServedModel] = {}
        for m in models:
            if m.version in self.models:
                raise ConfigError(f"model version {m.version!r} is given twice; name them with version=")
            self.models[m.version] = m
        if default is not None and default not in self.models:
            raise ConfigError(f"default version {default!r} is not among the served versions"
                              f" ({', '.join(self.models)})")
        self.default = self.models[default] if default is not None else models[0]
        self.feature_groups = {g: list(c) for g, c in (feature_groups or {}).items()}
        known = set().union(*(m.encoder.features for m in models))
        for g, cols in self.feature_groups.items():
            bad = [c for c in cols if c not in known]
            if bad:
                raise ConfigError(f"feature_groups.{g}: {bad[0]!r} is not a feature of any served model")
        self.salt = salt
        self.user_store = user_store
        arms = [m for m in models if m.weight > 0]
        if not arms:
            raise ConfigError("at least one model needs a weight > 0 to receive A/B traffic")
        self.arms = arms
        self.primary = max(arms, key=lambda m: m.weight)
        w = np.array([m.weight for m in arms], dtype=np.float64)
        self.cum = np.cumsum(w) / w.sum()
        self.known_features = known
        self.dense_features = set().union(*(m.encoder.dense for m in models))
        self.sparse_features = set().union(*(m.encoder.sparse for m in models))

    @classmethod
    def from_config(cls, cfg: ServeConfig) -> ModelRegistry:
        if cfg.backend == "torch":
            import torch

            torch.set_num_threads(cfg.threads)
        models = [
            ServedModel.load(e.path, e.version or Path(e.path).resolve().name, e.weight, cfg.backend,
                             cfg.threads, cfg.feature_groups)
            for e in cfg.models
        ]
        store = UserFeatureStore(cfg.user_features, cfg.user_id_column) if cfg.user_features else None
        return cls(models, cfg.default, cfg.feature_groups, cfg.salt, store)

    # ------------------------------------------------------------------------------ routing
    def route(self, user_id: str) -> ServedModel:
        """The A/B arm of ``user_id`` (stable hash, configured weights)."""
        k = int(np.searchsorted(self.cum, ab_bucket(user_id, self.salt), side="right"))
        return self.arms[min(k, len(self.arms) - 1)]

    def resolve(self, user_id: str, version: str | None, present: set[str]) -> Resolution:
        """The model serving a request with the given pin and present feature names."""
        if version is not None:
            if version in self.models:
                res = Resolution(self.models[version], "pinned")
            else:
                res = Resolution(self.default, "fallback",
                                 f"requested version {version!r} is not served (versions:"
                                 f" {', '.join(self.models)}); using the default {self.default.version!r}")
        else:
            res = Resolution(self.route(user_id), "ab")
        if res.model is not self.default:
            for g, cols in res.model.groups_used.items():
                if not present.intersection(cols):
                    return Resolution(self.default, "fallback",
                                      f"feature group {g!r} is missing (none of {', '.join(cols)} given);"
                                      f" using the default {self.default.version!r}")
        return res

    def check_features(self, names: set[str], where: str) -> None:
        unknown = sorted(names - self.known_features)
        if unknown:
            raise DataError(f"unknown feature {unknown[0]!r} in {where}; known features:"
                            f" {', '.join(sorted(self.known_features))}")
