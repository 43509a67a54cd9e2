"""Accounting-as-a-Service: orders, invoices, corrections and refunds on a double-entry ledger."""

from app.factory import create_app

__all__ = ["create_app"]
