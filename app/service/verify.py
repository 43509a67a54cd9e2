"""`accounting verify`: every invariant over the whole database, each violation named."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.adapters import schema
from app.adapters.repository import OrderRepository
from app.domain import ledger
from app.domain.invariants import OrderFacts, order_violations

BATCH = 500


def _sums(
    session: Session, table: schema.Table, column: str, business: str, refs: list[str]
) -> dict[str, int]:
    rows = session.execute(
        select(table.c.order_reference, func.sum(table.c[column]))
        .where(table.c.business_code == business)
        .where(table.c.order_reference.in_(refs))
        .group_by(table.c.order_reference)
    ).all()
    return {r[0]: int(r[1]) for r in rows}


def _position_credits(
    session: Session, business: str, refs: list[str]
) -> dict[str, dict[int, int]]:
    """Gross credited per position by the lines of every return and goodwill, by order."""
    rows = session.execute(
        select(schema.credits.c.order_reference, schema.credits.c.lines)
        .where(schema.credits.c.business_code == business)
        .where(schema.credits.c.order_reference.in_(refs))
    ).all()
    credited: dict[str, dict[int, int]] = {}
    for order_reference, lines in rows:
        per_position = credited.setdefault(order_reference, {})
        for line in lines:
            item_ref = int(line["item_ref"])
            per_position[item_ref] = per_position.get(item_ref, 0) + int(line["gross"])
    return credited


def _receivables(session: Session, business: str, refs: list[str]) -> dict[str, int]:
    lines, entries = schema.journal_lines, schema.journal_entries
    rows = session.execute(
        select(entries.c.order_reference, func.sum(lines.c.debit - lines.c.credit))
        .join(
            entries,
            (entries.c.business_code == lines.c.business_code)
            & (entries.c.entry_id == lines.c.entry_id),
        )
        .where(lines.c.business_code == business)
        .where(lines.c.account == ledger.RECEIVABLE)
        .where(entries.c.order_reference.in_(refs))
        .group_by(entries.c.order_reference)
    ).all()
    return {r[0]: int(r[1]) for r in rows}


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
    """Check every order and every journal entry; returns (orders checked, violations)."""
    violations: list[str] = []
    checked = 0
    with session_factory() as session:
        violations.extend(unbalanced_entries(session))
        for business, refs in _order_batches(session):
            orders = OrderRepository(session.connection()).get_many(business, refs)
            payments = _sums(session, schema.payments, "amount", business, refs)
            refunds = _sums(session, schema.refunds, "amount", business, refs)
            credits = _sums(session, schema.credits, "gross", business, refs)
            receivables = _receivables(session, business, refs)
            position_credits = _position_credits(session, business, refs)
            for order in orders:
                ref = order.order_reference
                facts = OrderFacts(
                    payments.get(ref, 0),
                    refunds.get(ref, 0),
                    credits.get(ref, 0),
                    receivables.get(ref, 0),
                    position_credits.get(ref, {}),
                )
                violations.extend(order_violations(order, facts))
                checked += 1
    return checked, violations
