"""`accounting verify`: every invariant over the whole database, each violation named."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.adapters import schema
from app.adapters.mapper import CREDIT, ENTRY, LINE, PAYMENT, REFUND, Mapping
from app.adapters.repository import OrderRepository
from app.domain import ledger, model
from app.domain.invariants import OrderFacts, bookings, journal_violations, order_violations

BATCH = 500


def _documents(
    session: Session, mapping: Mapping, business: str, refs: list[str]
) -> dict[str, list[Any]]:
    """The documents of one table (returns and goodwills, payments, refunds), by order."""
    table = mapping.table
    rows = session.execute(
        select(*mapping.columns, table.c.order_reference)
        .where(table.c.business_code == business)
        .where(table.c.order_reference.in_(refs))
    )
    found: dict[str, list[Any]] = {}
    for row in rows:
        found.setdefault(row[-1], []).append(mapping.build(row[:-1]))
    return found


def _journal(
    session: Session, business: str, refs: list[str]
) -> dict[str, list[ledger.JournalEntry]]:
    """Every journal entry with its lines, by order, each order's in the order booked."""
    entries, lines = schema.journal_entries, schema.journal_lines
    by_id: dict[str, ledger.JournalEntry] = {}
    by_order: dict[str, list[ledger.JournalEntry]] = {}
    for row in session.execute(
        select(*ENTRY.columns)
        .where(entries.c.business_code == business)
        .where(entries.c.order_reference.in_(refs))
        .order_by(entries.c.created_at, entries.c.entry_id)
    ):
        entry = ENTRY.build(row)
        entry.lines = []
        by_id[entry.entry_id] = entry
        by_order.setdefault(entry.order_reference, []).append(entry)
    for row in session.execute(
        select(*LINE.columns, lines.c.entry_id)
        .join(
            entries,
            (entries.c.business_code == lines.c.business_code)
            & (entries.c.entry_id == lines.c.entry_id),
        )
        .where(lines.c.business_code == business)
        .where(entries.c.order_reference.in_(refs))
        .order_by(lines.c.entry_id, lines.c.line_no)
    ):
        by_id[row[-1]].lines.append(LINE.build(row[:-1]))
    return by_order


def _position_credits(credits: list[model.Credit]) -> dict[int, int]:
    """Gross credited per position by the lines of every return and goodwill."""
    credited: dict[int, int] = {}
    for credit in credits:
        for line in credit.lines:
            item_ref = int(line["item_ref"])
            credited[item_ref] = credited.get(item_ref, 0) + int(line["gross"])
    return credited


def _receivable(entries: list[ledger.JournalEntry]) -> int:
    return sum(
        line.debit - line.credit
        for entry in entries
        for line in entry.lines
        if line.account == ledger.RECEIVABLE
    )


def unbalanced_entries(session: Session) -> list[str]:
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
    rows = session.execute(
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


def _order_batches(session: Session) -> Iterator[tuple[str, list[str]]]:
    keys = session.execute(
        select(schema.orders.c.business_code, schema.orders.c.order_reference).order_by(
            schema.orders.c.business_code, schema.orders.c.order_reference
        )
    ).all()
    batch: list[str] = []
    business = None
    for code, ref in keys:
        if code != business or len(batch) >= BATCH:
            if batch and business is not None:
                yield business, batch
            business, batch = code, []
        batch.append(ref)
    if batch and business is not None:
        yield business, batch


def verify(session_factory: sessionmaker[Session]) -> tuple[int, list[str]]:
    """Check every order and every journal entry; returns (orders checked, violations).

    Each journal entry is also compared with the entry its document implies, rebuilt from
    the document's stored amounts, so a line changed after booking is named even when its
    entry still balances."""
    violations: list[str] = []
    checked = 0
    with session_factory() as session:
        violations.extend(unbalanced_entries(session))
        for business, refs in _order_batches(session):
            orders = OrderRepository(session.connection()).get_many(business, refs)
            credits = _documents(session, CREDIT, business, refs)
            payments = _documents(session, PAYMENT, business, refs)
            refunds = _documents(session, REFUND, business, refs)
            journal = _journal(session, business, refs)
            for order in orders:
                ref = order.order_reference
                entries = journal.get(ref, [])
                facts = OrderFacts(
                    sum(p.amount for p in payments.get(ref, [])),
                    sum(r.amount for r in refunds.get(ref, [])),
                    sum(c.gross for c in credits.get(ref, [])),
                    _receivable(entries),
                    _position_credits(credits.get(ref, [])),
                )
                violations.extend(order_violations(order, facts))
                implied = bookings(
                    order, credits.get(ref, []), payments.get(ref, []), refunds.get(ref, [])
                )
                violations.extend(journal_violations(order, entries, implied))
                checked += 1
    return checked, violations
