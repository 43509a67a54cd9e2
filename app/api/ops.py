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

from app.adapters import migrations
from app.api.errors import problem

ops = Blueprint("ops", __name__)

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "endpoint", "status"])
LATENCY = Histogram("http_request_duration_seconds", "HTTP request latency", ["method", "endpoint"])


@ops.get("/health/live")
def live() -> dict[str, str]:
    return {"status": "ok"}


@ops.get("/health/ready")
def ready() -> Response | dict[str, str]:
    """Ready when the database answers within its connect timeout, on a connection of its
    own (not one a stalled request may hold), at the migrations' head."""
    accounting = current_app.extensions["accounting"]
    try:
        with accounting.probe.connect() as connection:
            revisions = migrations.current(connection)
    except Exception:  # any database failure means "not ready", never a 500
        return _not_ready("database-unavailable", "the database does not answer")
    if revisions != accounting.schema_heads:
        return _not_ready(
            "migrations-pending",
            "the database is not at the migrations' head; run `accounting db upgrade`",
        )
    return {"status": "ok"}


def _not_ready(code: str, detail: str) -> Response:
    return problem(503, code, detail, headers={"Retry-After": "5"})


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
