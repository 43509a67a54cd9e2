"""The app factory: nothing is built at import time."""

from __future__ import annotations

import inspect
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MethodType
from typing import Any

from flask import Flask, Response, g, request
from flask_smorest import Api
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import NotFound, UnsupportedMediaType

from app import config as app_config
from app import logs
from app.adapters import migrations
from app.adapters.cii import cii_xml
from app.adapters.db import make_engine, make_probe_engine, make_session_factory
from app.adapters.keys import Principal
from app.adapters.pdf import PdfRenderer
from app.api import docs, documents, errors, jobs, ops, ratelimit, refunds, views, webhooks
from app.api.jsonio import DecimalJSONProvider
from app.service.documents import DocumentService, Renderers
from app.service.orders import OrderService

log = logging.getLogger("app.request")

API_PREFIX = "/accounting/"
JSON_TYPES = ("application/json",)
WRITES = ("POST", "PUT", "PATCH")


class AccountingFlask(Flask):
    """Flask, with its check for coroutine views and hooks done once per function.

    Flask asks, for every hook and view on every request, whether it is a coroutine function
    (`inspect.iscoroutinefunction`, several calls each time); the answer never changes.
    """

    def __init__(self, import_name: str) -> None:
        super().__init__(import_name)
        self._synchronous: dict[Any, bool] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        # A bound method is made anew on each access: its function is what is remembered.
        key = func.__func__ if isinstance(func, MethodType) else func
        synchronous = self._synchronous.get(key)
        if synchronous is None:
            if len(self._synchronous) >= 4096:  # only closures made per request could get here
                self._synchronous.clear()
            synchronous = self._synchronous[key] = not inspect.iscoroutinefunction(func)
        return func if synchronous else super().ensure_sync(func)


@dataclass
class Accounting:
    """What the app holds for its requests: the engine, sessions and the use cases."""

    engine: Engine
    session_factory: sessionmaker[Session]
    orders: OrderService
    probe: Engine  # fresh connections for /health/ready
    schema_heads: frozenset[str]  # the migrations' heads the database must be at
    # API keys looked up live, by hash, each until its lookup expires (app/api/auth.py)
    known_keys: dict[bytes, tuple[Principal, float]] = field(default_factory=dict)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app for a configuration (the environment's when none is given)."""
    settings = {**app_config.from_environment(), **(config or {})}
    logs.configure(settings["LOG_LEVEL"])
    app = AccountingFlask(__name__)
    app.json = DecimalJSONProvider(app)
    app.config.update(settings)
    app.config.update(
        API_TITLE="Accounting as a Service",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    engine = settings.get("ENGINE") or make_engine(settings["DATABASE_URL"])
    session_factory = make_session_factory(engine)
    app.extensions["accounting"] = Accounting(
        engine,
        session_factory,
        OrderService(session_factory),
        make_probe_engine(settings["DATABASE_URL"]),
        migrations.heads(),
    )

    app.extensions["documents"] = _documents(app.extensions["accounting"].orders, settings)
    api = Api(app)
    docs.register(app, api)  # before any API blueprint: it documents them
    api.register_blueprint(views.blp)
    api.register_blueprint(jobs.blp)
    api.register_blueprint(refunds.blp)
    api.register_blueprint(webhooks.blp)
    api.register_blueprint(documents.blp)
    app.register_blueprint(ops.ops)
    errors.register(app)
    ops.observe(app)
    _request_hooks(app)
    ratelimit.register(app)  # after the request-id hook: a 429 carries the request id
    return app


def _documents(orders: OrderService, settings: dict[str, Any]) -> DocumentService:
    """Documents per business's seller (ACCOUNTING_SELLERS), laid out with the templates of
    ACCOUNTING_DOCUMENT_TEMPLATES or the service's own; both read once, here."""
    templates = app_config.document_templates(settings.get("DOCUMENT_TEMPLATES"))
    pdf = PdfRenderer(templates) if templates else PdfRenderer()
    sellers = app_config.sellers(settings.get("SELLERS_FILE"))
    return DocumentService(orders, sellers, Renderers(cii_xml, pdf.pdf))


def _request_hooks(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        g.request_id = str(uuid.uuid4())
        if "\x00" in request.path:  # no reference holds NUL; PostgreSQL cannot even compare it
            raise NotFound("no such resource")
        # An unknown route or method answers 404 / 405 before the body's media type matters.
        routed = request.routing_exception is None
        if routed and request.path.startswith(API_PREFIX) and request.method in WRITES:
            mimetype = request.mimetype or ""
            if mimetype not in JSON_TYPES and not mimetype.endswith("+json"):
                raise UnsupportedMediaType("send the body as application/json")

    @app.after_request
    def _finish(response: Response) -> Response:
        response = views.add_etag(response)
        response.headers["X-Request-ID"] = g.request_id
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.started) * 1000, 2),
                "key_prefix": g.get("key_prefix"),
                "client_request_id": (request.headers.get("X-Request-ID") or "")[:128] or None,
            },
        )
        return response
