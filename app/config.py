"""Configuration from the environment, read once by the app factory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def default_database_url() -> str:
    """The embedded default: a SQLite file under ./var/."""
    path = Path(os.environ.get("ACCOUNTING_VAR_DIR", "var")).resolve() / "accounting.db"
    return f"sqlite:///{path}"


def database_url() -> str:
    """DATABASE_URL, or the embedded default."""
    return os.environ.get("DATABASE_URL") or default_database_url()


def from_environment() -> dict[str, Any]:
    return {
        "DATABASE_URL": database_url(),
        "MAX_CONTENT_LENGTH": int(os.environ.get("ACCOUNTING_MAX_BODY_BYTES", 1024 * 1024)),
        "LOG_LEVEL": os.environ.get("ACCOUNTING_LOG_LEVEL", "INFO"),
        "RATE_LIMIT_PER_MINUTE": int(os.environ.get("ACCOUNTING_RATE_LIMIT_PER_MINUTE", 6000)),
    }
