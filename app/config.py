"""Configuration from the environment, read once by the app factory."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from app.domain.documents import Seller

# The driver the service speaks to PostgreSQL with (psycopg 3). Heroku-style and plain libpq
# URLs (postgres://, postgresql://) mean the same database, so they are taken as this one.
POSTGRESQL = "postgresql+psycopg"
DRIVERS = (POSTGRESQL, "sqlite", "sqlite+pysqlite")
_SHORT_SCHEMES = ("postgres://", "postgresql://")

# The contract keeps an idempotency key's answer at least 24 hours; the worker purges older
# ones once a day, keeping them this long unless told otherwise.
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


def at_least_a_day(text: str, rule: str) -> timedelta:
    """A duration of at least 24 hours; else BadSetting: the rule (saying 24 h), not text."""
    kept = duration(text)
    if kept < timedelta(hours=24):
        raise BadSetting(f"{rule}, not {text}")
    return kept


def idempotency_retention(text: str) -> timedelta:
    """How long idempotency keys are kept: a duration of at least 24 hours."""
    return at_least_a_day(
        text, "idempotency keys are kept at least 24 h (the contract's replay window)"
    )


def worker_idempotency_retention(text: str | None = None) -> timedelta | None:
    """The worker's daily purge: keys older than text, else ACCOUNTING_IDEMPOTENCY_RETENTION,
    else 48h; None for 'off' (no purge)."""
    if text is None:
        text = os.environ.get("ACCOUNTING_IDEMPOTENCY_RETENTION") or IDEMPOTENCY_RETENTION
    return None if text.strip().lower() == "off" else idempotency_retention(text)


def flag(name: str) -> bool:
    """An environment variable set to 1, true, yes or on."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _count(name: str, default: int) -> int:
    text = os.environ.get(name) or str(default)
    if not text.isdigit():
        raise BadSetting(f"{name} is not a whole number: {text}")
    return int(text)


_SELLER_FIELDS = {f.name: f for f in dataclasses.fields(Seller)}
_SELLER_REQUIRED = ("name", "street", "postal_code", "city", "country_code")


def _seller(business: str, entry: Any, source: str) -> Seller:
    where = f'{source}: [businesses."{business}"]'
    if not isinstance(entry, dict):
        raise BadSetting(f"{where} is not a table")
    unknown = sorted(set(entry) - set(_SELLER_FIELDS))
    missing = [name for name in _SELLER_REQUIRED if not entry.get(name)]
    if unknown or missing:
        raise BadSetting(f"{where}: unknown keys {unknown}, missing keys {missing}")
    if not isinstance(entry["country_code"], str) or not re.fullmatch(
        "[A-Z]{2}", entry["country_code"]
    ):
        raise BadSetting(f"{where}: country_code is two capital letters, like DE")
    if not (entry.get("vat_id") or entry.get("tax_number")):
        raise BadSetting(f"{where}: an invoice names the seller's vat_id or tax_number")
    if any(not isinstance(value, str) for value in entry.values()):
        raise BadSetting(f"{where}: every value is a string")
    return Seller(**entry)


def sellers(path: str | None) -> dict[str, Seller]:
    """The issuer of each business's documents, from the TOML file ACCOUNTING_SELLERS names
    (`[businesses."1000"]` tables; README, "Documents"). None: no business has one."""
    if not path:
        return {}
    try:
        with open(path, "rb") as file:
            loaded = tomllib.load(file)
    except OSError as error:
        raise BadSetting(f"ACCOUNTING_SELLERS: cannot read {path} ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise BadSetting(f"ACCOUNTING_SELLERS: {path} is not TOML ({error})") from None
    businesses = loaded.get("businesses", {})
    if not isinstance(businesses, dict):
        raise BadSetting(f'ACCOUNTING_SELLERS: {path} has no [businesses."CODE"] tables')
    return {str(code): _seller(str(code), entry, path) for code, entry in businesses.items()}


def document_templates(path: str | None) -> Path | None:
    """ACCOUNTING_DOCUMENT_TEMPLATES: a directory holding document.html (and what it links
    to); None for the templates that come with the service."""
    if not path:
        return None
    directory = Path(path)
    if not (directory / "document.html").is_file():
        raise BadSetting(f"ACCOUNTING_DOCUMENT_TEMPLATES: {path} holds no document.html")
    return directory


def from_environment() -> dict[str, Any]:
    return {
        "DATABASE_URL": database_url(),
        "SELLERS_FILE": os.environ.get("ACCOUNTING_SELLERS"),
        "DOCUMENT_TEMPLATES": os.environ.get("ACCOUNTING_DOCUMENT_TEMPLATES"),
        "MAX_CONTENT_LENGTH": _count("ACCOUNTING_MAX_BODY_BYTES", 1024 * 1024),
        "LOG_LEVEL": os.environ.get("ACCOUNTING_LOG_LEVEL", "INFO"),
        "RATE_LIMIT_PER_MINUTE": _count("ACCOUNTING_RATE_LIMIT_PER_MINUTE", 6000),
        "AUTH_FAILURES_PER_MINUTE": _count("ACCOUNTING_AUTH_FAILURES_PER_MINUTE", 30),
    }
