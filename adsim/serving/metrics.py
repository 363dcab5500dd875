"""Prometheus metrics of the prediction service (``GET /metrics``), one registry per app.

=================================== =========== ============================================
name                                type        labels
=================================== =========== ============================================
``adsim_requests_total``            counter     ``path``, ``status`` (every HTTP request)
``adsim_request_latency_seconds``   histogram   ``path`` (whole request inside the server)
``adsim_predictions_total``         counter     ``endpoint``, ``version``, ``routed_by``
``adsim_candidates_per_request``    histogram   (none)
``adsim_stage_latency_seconds``     histogram   ``stage`` (feature_lookup … serialisation)
=================================== =========== ============================================
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["ServingMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_STAGE_BUCKETS = (1e-5, 3e-5, 1e-4, 3e-4, 0.001, 0.003, 0.01, 0.03, 0.1)
_PATHS = {"/v1/predict", "/v1/predict/batch", "/v1/feature-spec", "/v1/models", "/healthz", "/metrics"}


class ServingMetrics:
    """The collectors of one app, and an ASGI middleware that times every request."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("adsim_requests_total", "HTTP requests.", ["path", "status"], registry=r)
        self.latency = Histogram("adsim_request_latency_seconds", "Request latency inside the server.",
                                 ["path"], buckets=_LATENCY_BUCKETS, registry=r)
        self.predictions = Counter("adsim_predictions_total", "Scored requests by served version.",
                                   ["endpoint", "version", "routed_by"], registry=r)
        self.candidates = Histogram("adsim_candidates_per_request", "Candidates per scored request.",
                                    buckets=(1, 10, 50, 100, 200, 500, 1000, 5000, 10000), registry=r)
        self.stages = Histogram("adsim_stage_latency_seconds", "Seconds per request stage.", ["stage"],
                                buckets=_STAGE_BUCKETS, registry=r)
        metrics = self

        class _Timing:
            def __init__(self, app: Any) -> None:
                self.app = app

            async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
                if scope["type"] != "http":
                    await self.app(scope, receive, send)
                    return
                t0 = time.perf_counter()
                status = [500]

                async def send_status(msg: Any) -> None:
                    if msg["type"] == "http.response.start":
                        status[0] = msg["status"]
                    await send(msg)

                try:
                    await self.app(scope, receive, send_status)
                finally:
                    path = scope.get("path", "")
                    path = path if path in _PATHS else "other"
                    metrics.requests.labels(path, str(status[0])).inc()
                    metrics.latency.labels(path).observe(time.perf_counter() - t0)

        self.asgi_middleware = _Timing

    def observe_prediction(self, endpoint: str, version: str, routed_by: str, n_candidates: int,
                           timings: dict[str, float] | None) -> None:
        self.predictions.labels(endpoint, version, routed_by).inc()
        self.candidates.observe(n_candidates)
        if timings:
            self.observe_stages(timings)

    def observe_stages(self, timings: dict[str, float]) -> None:
        for stage, sec in timings.items():
            self.stages.labels(stage).observe(sec)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
