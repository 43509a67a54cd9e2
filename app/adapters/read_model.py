"""Reads over whole tables for checks and reports: documents, journal entries, orders in
batches. Plain rows to domain objects, read-only (`accounting verify`)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, func, select

from app.adapters import schema
from app.adapters.mapper import Mapping


def documents(
    connection: Connection, mapping: Mapping, business: str, refs: list[str]
) -> dict[str, list[Any]]:
    """The documents of one table (returns and goodwills, payments, refunds), by order."""
    table = mapping.table
    rows = connection.execute(
        select(*mapping.columns, table.c.order_reference)
        .where(table.c.business_code == business)
        .where(table.c.order_reference.in_(refs))
    )
    found: dict[str, list[Any]] = {}
    for row in rows:
        found.setdefault(row[-1], []).append(mapping.build(row[:-1]))
    return found


def unbalanced_entries(connection: Connection) -> list[str]:
    """Journal entries whose debits and credits differ.

    An entry without lines balances: its document moved no money (a return of what a goodwill
    had already credited in full, an invoice of free articles).
    """
    lines, entries = schema.journal_lines, schema.journal_entries
    totals = (
        select(
            lines.c.business_code,
            lines.c.entry_id,
            func.sum(lines.c.debit).label("debit"),
            func.sum(lines.c.credit).label("credit"),
        )
        .group_by(lines.c.business_code, lines.c.entry_id)
        .subquery()
    )
    rows = connection.execute(
        select(
            entries.c.business_code,
            entries.c.entry_id,
            entries.c.kind,
            entries.c.document_reference,
            totals.c.debit,
            totals.c.credit,
        )
        .outerjoin(
            totals,
            (totals.c.business_code == entries.c.business_code)
            & (totals.c.entry_id == entries.c.entry_id),
        )
        .where(func.coalesce(totals.c.debit, 0) != func.coalesce(totals.c.credit, 0))
    ).all()
    return [
        f"journal entry {r[0]}/{r[1]} ({r[2]} {r[3]}): debit {r[4]} != credit {r[5]}" for r in rows
    ]


def order_batches(connection: Connection, size: int) -> Iterator[tuple[str, list[str]]]:
    """Every order's reference, by business, `size` at a time."""
    keys = connection.execute(
        select(schema.orders.c.business_code, schema.orders.c.order_reference).order_by(
            schema.orders.c.business_code, schema.orders.c.order_reference
        )
    ).all()
    for business, rows in groupby(keys, key=itemgetter(0)):
        refs = [ref for _, ref in rows]
        for start in range(0, len(refs), size):
            yield business, refs[start : start + size]
