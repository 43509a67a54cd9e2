"""Accounting-as-a-Service: orders, invoices, corrections and refunds on a double-entry ledger."""
