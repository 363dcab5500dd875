"""The prediction service without HTTP: request body → response body, with stage timings.

:class:`PredictionService` is what the FastAPI handlers call and what the in-process benchmark
times. One request is scored as one batch: the user's features are looked up once, all candidates
are encoded together and go through **one** forward pass; calibration and bids are numpy
operations over the candidate axis. Stages (seconds, per request): ``feature_lookup``,
``preprocess``, ``model``, ``calibration``, ``serialisation``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

import numpy as np

from adsim.errors import DataError
from adsim.serving.bidding import compute_bids
from adsim.serving.features import _Scalar, check_scalar, dense_column
from adsim.serving.registry import ModelOutputError, ModelRegistry, Resolution
from adsim.serving.schemas import BatchPredictRequest, PredictRequest

__all__ = ["PredictionService", "STAGES", "ModelOutputError"]

STAGES = ("feature_lookup", "preprocess", "model", "calibration", "serialisation")


class PredictionService:
    """Scores requests with a :class:`ModelRegistry`.

    Args:
        registry: the loaded model versions.
        max_candidates: most candidates per request (more → 422).
        max_batch_requests: most requests per batch call.
    """

    def __init__(self, registry: ModelRegistry, max_candidates: int = 10_000,
                 max_batch_requests: int = 1_000, max_batch_candidates: int = 20_000) -> None:
        self.registry = registry
        self.max_candidates = max_candidates
        self.max_batch_requests = max_batch_requests
        self.max_batch_candidates = max_batch_candidates

    # --------------------------------------------------------------------------- one request
    def _gather(self, req: PredictRequest, where: str) -> tuple[dict[str, Any], list[dict[str, Any]], set[str]]:
        n = len(req.candidates)
        if n > self.max_candidates:
            raise DataError(f"{where}candidates has {n} ads; at most {self.max_candidates} per request"
                            " (split it, or raise max_candidates in the serve config)")
        uid = str(req.user_id)
        store = self.registry.user_store
        user = {**store.lookup(uid), **req.user} if store is not None else req.user
        cands = [c.features for c in req.candidates]
        cand_names: set[str] = set().union(*cands) if n else set()
        self.registry.check_features(set(req.user), f"{where}user")
        if cand_names - self.registry.known_features:
            i, bad = next((i, k) for i, c in enumerate(cands) for k in c if k not in self.registry.known_features)
            self.registry.check_features({bad}, f"{where}candidates[{i}].features")
        dense = self.registry.dense_features  # value types are checked whichever model serves
        for c in dense.intersection(req.user):
            dense_column(_Scalar(req.user[c]), c, n)
        for c in dense.intersection(cand_names):
            dense_column([f.get(c) for f in cands], c, n)
        for c in self.registry.sparse_features.intersection(req.user):
            check_scalar([req.user[c]], c, ["the user features"])
        for c in self.registry.sparse_features.intersection(cand_names):
            col = [f.get(c) for f in cands]
            if any(isinstance(v, list) for v in col):
                check_scalar(col, c, [f"candidate {i}" for i in range(n)])
        present = {k for k, v in user.items() if v is not None} | cand_names
        return user, cands, present

    def _body(self, req: PredictRequest, res: Resolution, p: np.ndarray) -> dict[str, Any]:
        m = res.model
        pctr = p[:, 0]
        pcvr = p[:, 1] if p.shape[1] > 1 else None
        bids = None
        if req.bidding is not None:
            b = req.bidding
            vals = [c.value for c in req.candidates]
            if any(v is None for v in vals):
                if b.value is None:
                    i = next(i for i, v in enumerate(vals) if v is None)
                    raise DataError(f"candidates[{i}].value is missing and bidding.value is not set; give"
                                    " each candidate a value or a default bidding.value")
                vals = [b.value if v is None else v for v in vals]
            bid_arr = compute_bids(b.policy, np.asarray(vals, dtype=np.float64), pctr, pcvr, b.shading,
                                   b.max_bid)
            if not np.isfinite(bid_arr).all():  # values are bounded by the schema; never send NaN/inf
                i = int(np.flatnonzero(~np.isfinite(bid_arr))[0])
                raise DataError(f"candidates[{i}]: the bid is not a finite number; check its value")
            bids = bid_arr.tolist()
        ids = [c.id for c in req.candidates]
        tasks = list(m.tasks)
        cols = p.T.tolist()
        pctr_l = cols[0]
        pcvr_l = cols[1] if pcvr is not None else [None] * len(ids)
        out = [
            {"id": ids[i], "pctr": pctr_l[i], "pcvr": pcvr_l[i],
             "scores": {t: cols[j][i] for j, t in enumerate(tasks)},
             "bid": None if bids is None else bids[i]}
            for i in range(len(ids))
        ]
        return {"model_version": m.version, "routed_by": res.routed_by,
                "fallback_reason": res.fallback_reason, "tasks": tasks, "candidates": out}

    def predict(self, req: PredictRequest, timings: dict[str, float] | None = None) -> dict[str, Any]:
        """Response body (a dict) for one request; stage seconds are added to ``timings``."""
        timings = {} if timings is None else timings
        t0 = time.perf_counter()
        user, cands, present = self._gather(req, "")
        res = self.registry.resolve(str(req.user_id), req.version, present)
        timings["feature_lookup"] = timings.get("feature_lookup", 0.0) + time.perf_counter() - t0
        p = res.model.score(user, cands, timings)
        return self._body(req, res, p)

    def predict_json(self, req: PredictRequest, timings: dict[str, float] | None = None) -> tuple[bytes, dict[str, Any]]:
        """``(JSON bytes, body)``; serialisation time goes to ``timings["serialisation"]``."""
        timings = {} if timings is None else timings
        body = self.predict(req, timings)
        t0 = time.perf_counter()
        data = json.dumps(body, separators=(",", ":")).encode()
        timings["serialisation"] = timings.get("serialisation", 0.0) + time.perf_counter() - t0
        return data, body

    # ------------------------------------------------------------------------------- batches
    def predict_batch(self, batch: BatchPredictRequest, timings: dict[str, float] | None = None) -> dict[str, Any]:
        """Responses for many requests: requests served by the same version share one forward pass."""
        from adsim.serving.features import EncodedBatch

        timings = {} if timings is None else timings
        if len(batch.requests) > self.max_batch_requests:
            raise DataError(f"requests has {len(batch.requests)} items; at most {self.max_batch_requests}"
                            " (split the batch, or raise max_batch_requests in the serve config)")
        total = sum(len(r.candidates) for r in batch.requests)
        if total > self.max_batch_candidates:
            raise DataError(f"requests hold {total} candidates in all; at most {self.max_batch_candidates} per"
                            " batch call (split the batch, or raise max_batch_candidates in the serve config)")
        t0 = time.perf_counter()
        plan = []
        for i, req in enumerate(batch.requests):
            user, cands, present = self._gather(req, f"requests[{i}].")
            plan.append((req, self.registry.resolve(str(req.user_id), req.version, present), user, cands))
        t1 = time.perf_counter()
        timings["feature_lookup"] = timings.get("feature_lookup", 0.0) + t1 - t0
        by_model: dict[str, list[int]] = defaultdict(list)
        encoded = []
        for i, (_, res, user, cands) in enumerate(plan):
            encoded.append(res.model.encoder.encode(user, cands))
            by_model[res.model.version].append(i)
        timings["preprocess"] = timings.get("preprocess", 0.0) + time.perf_counter() - t1
        probs: list[np.ndarray | None] = [None] * len(plan)
        for version, idx in by_model.items():
            model = self.registry.models[version]
            p = model.predict_encoded(EncodedBatch.concat([encoded[i] for i in idx]), timings)
            starts = np.cumsum([0] + [len(encoded[i]) for i in idx])
            for k, i in enumerate(idx):
                probs[i] = p[starts[k]:starts[k + 1]]
        return {"responses": [self._body(req, res, probs[i]) for i, (req, res, _, _) in enumerate(plan)]}
