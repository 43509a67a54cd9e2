"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import text

from app.api.errors import problem

ops = Blueprint("ops", __name__)

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "endpoint", "status"])
LATENCY = Histogram("http_request_duration_seconds", "HTTP request latency", ["method", "endpoint"])


@ops.get("/health/live")
def live() -> dict[str, str]:
    return {"status": "ok"}


@ops.get("/health/ready")
def ready() -> Response | dict[str, str]:
    try:
        with current_app.extensions["accounting"].engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # any database failure means "not ready", never a 500
        return problem(
            503,
            "database-unavailable",
            "the database does not answer",
            headers={"Retry-After": "5"},
        )
    return {"status": "ok"}


@ops.get("/metrics")
def metrics() -> Response:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        data = generate_latest(registry)
    else:
        data = generate_latest()
    return Response(data, mimetype=CONTENT_TYPE_LATEST)


def observe(app: Flask) -> None:
    """Count and time every request."""

    @app.after_request
    def _record(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(request.method, endpoint, response.status_code).inc()
        LATENCY.labels(request.method, endpoint).observe(time.perf_counter() - g.started)
        return response
