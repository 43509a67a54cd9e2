"""Accounting-as-a-Service: orders, invoices, corrections and refunds on a double-entry ledger."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so batch workers and the CLI do not load Flask and apispec.
    if name == "create_app":
        from app.factory import create_app

        return create_app
    raise AttributeError(name)
