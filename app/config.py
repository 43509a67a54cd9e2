"""Configuration from the environment, read once by the app factory."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

# The driver the service speaks to PostgreSQL with (psycopg 3). Heroku-style and plain libpq
# URLs (postgres://, postgresql://) mean the same database, so they are taken as this one.
POSTGRESQL = "postgresql+psycopg"
DRIVERS = (POSTGRESQL, "sqlite", "sqlite+pysqlite")
_SHORT_SCHEMES = ("postgres://", "postgresql://")

# The contract keeps an idempotency key's answer at least 24 hours; the worker purges older
# ones once a day, keeping them this long unless told otherwise.
IDEMPOTENCY_MINIMUM = timedelta(hours=24)
IDEMPOTENCY_RETENTION = "48h"
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class BadSetting(ValueError):
    """A setting that cannot be used; its message names the setting, never a secret."""


def default_database_url() -> str:
    """The embedded default: a SQLite file under ./var/."""
    path = Path(os.environ.get("ACCOUNTING_VAR_DIR", "var")).resolve() / "accounting.db"
    return f"sqlite:///{path}"


def normalized_database_url(url: str) -> str:
    """The URL with the service's PostgreSQL driver named: postgres:// and postgresql://
    become postgresql+psycopg://. Refuses (BadSetting) a URL that names no usable database."""
    for scheme in _SHORT_SCHEMES:
        if url.startswith(scheme):
            url = f"{POSTGRESQL}://{url.removeprefix(scheme)}"
    expected = f"expected {POSTGRESQL}://USER:PASSWORD@HOST:PORT/DATABASE or sqlite:///PATH"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # ValueError: a port that is no number. The URL itself is not repeated: it may hold
        # a password.
        raise BadSetting(f"DATABASE_URL is not a database URL ({expected})") from None
    if parsed.drivername not in DRIVERS:
        raise BadSetting(
            f"DATABASE_URL names an unsupported database or driver "
            f"'{parsed.drivername}' ({expected})"
        )
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise BadSetting(f"DATABASE_URL: port {parsed.port} is not between 1 and 65535")
    return url


def database_url() -> str:
    """DATABASE_URL (normalized), or the embedded default."""
    return normalized_database_url(os.environ.get("DATABASE_URL") or default_database_url())


def duration(text: str) -> timedelta:
    """A length of time as a number and a unit: 90m, 48h, 2d."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*([mhd])\s*", text.lower())
    if match is None:
        raise BadSetting(f"'{text}' is not a duration: a whole number and m, h or d, like 48h")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def idempotency_retention(text: str) -> timedelta:
    """How long idempotency keys are kept: a duration of at least 24 hours."""
    kept = duration(text)
    if kept < IDEMPOTENCY_MINIMUM:
        raise BadSetting(
            f"idempotency keys are kept at least 24 h (the contract's replay window), not {text}"
        )
    return kept


def purge_retention(text: str) -> timedelta | None:
    """The worker's retention: as idempotency_retention, or None for 'off' (no purge)."""
    return None if text.strip().lower() == "off" else idempotency_retention(text)


def worker_idempotency_retention() -> timedelta | None:
    """ACCOUNTING_IDEMPOTENCY_RETENTION for the worker's daily purge (default 48h)."""
    return purge_retention(
        os.environ.get("ACCOUNTING_IDEMPOTENCY_RETENTION") or IDEMPOTENCY_RETENTION
    )


@dataclass(frozen=True)
class ServeSettings:
    """How `accounting serve` starts: where it listens, and what it checks first."""

    bind: str  # ACCOUNTING_BIND, host:port (gunicorn.conf.py reads it too)
    migrate_on_start: bool  # ACCOUNTING_MIGRATE_ON_START=1
    require_database_url: bool  # ACCOUNTING_REQUIRE_DATABASE_URL=1 (the image sets it)


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def serve_settings() -> ServeSettings:
    bind = os.environ.get("ACCOUNTING_BIND") or "127.0.0.1:8000"
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadSetting(f"ACCOUNTING_BIND is not HOST:PORT with a port from 1 to 65535: {bind}")
    return ServeSettings(
        bind, _flag("ACCOUNTING_MIGRATE_ON_START"), _flag("ACCOUNTING_REQUIRE_DATABASE_URL")
    )


def _count(name: str, default: int) -> int:
    text = os.environ.get(name) or str(default)
    if not text.isdigit():
        raise BadSetting(f"{name} is not a whole number: {text}")
    return int(text)


def from_environment() -> dict[str, Any]:
    return {
        "DATABASE_URL": database_url(),
        "MAX_CONTENT_LENGTH": _count("ACCOUNTING_MAX_BODY_BYTES", 1024 * 1024),
        "LOG_LEVEL": os.environ.get("ACCOUNTING_LOG_LEVEL", "INFO"),
        "RATE_LIMIT_PER_MINUTE": _count("ACCOUNTING_RATE_LIMIT_PER_MINUTE", 6000),
        "AUTH_FAILURES_PER_MINUTE": _count("ACCOUNTING_AUTH_FAILURES_PER_MINUTE", 30),
    }
