"""`accounting verify`: every invariant over the whole database, each violation named."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from app.adapters import read_model
from app.adapters.mapper import CREDIT, PAYMENT, REFUND
from app.adapters.repository import OrderRepository
from app.domain import ledger, model
from app.domain.invariants import OrderFacts, bookings, journal_violations, order_violations

BATCH = 500  # orders read at a time


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


def verify(session_factory: sessionmaker[Session]) -> tuple[int, list[str]]:
    """Check every order and every journal entry; returns (orders checked, violations).

    Each journal entry is also compared with the entry its document implies, rebuilt from
    the document's stored amounts, so a line changed after booking is named even when its
    entry still balances."""
    violations: list[str] = []
    checked = 0
    with session_factory() as session:
        db = session.connection()
        violations.extend(read_model.unbalanced_entries(db))
        for business, refs in read_model.order_batches(db, BATCH):
            repository = OrderRepository(db)
            orders = repository.get_many(business, refs)
            credits = read_model.documents(db, CREDIT, business, refs)
            payments = read_model.documents(db, PAYMENT, business, refs)
            refunds = read_model.documents(db, REFUND, business, refs)
            journal = repository.journals(business, refs)
            for order in orders:
                ref = order.order_reference
                entries = journal.get(ref, [])
                facts = OrderFacts(
                    sum(p.amount for p in payments.get(ref, [])),
                    sum(r.amount for r in refunds.get(ref, [])),
                    sum(c.gross for c in credits.get(ref, [])),
                    _receivable(entries),
                    _position_credits(credits.get(ref, [])),
                    sum(r.amount for r in refunds.get(ref, []) if r.status == model.COMPLETED),
                )
                violations.extend(order_violations(order, facts))
                implied = bookings(
                    order, credits.get(ref, []), payments.get(ref, []), refunds.get(ref, [])
                )
                violations.extend(journal_violations(order, entries, implied))
                checked += 1
    return checked, violations
