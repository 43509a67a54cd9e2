"""Loading and storing orders and their documents; every query is scoped by business code."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date
from typing import Any, cast

from sqlalchemy import String, bindparam, case, exists, func, insert, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, lazyload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from app.adapters import orm
from app.domain import ledger, model
from app.domain.model import Effects


def _invoices_on_demand() -> Any:
    """A loader option: the order's invoices at once, each one's history when it is read."""
    order, invoice = cast(Any, model.Order), cast(Any, model.Invoice)
    return selectinload(order.invoices).options(
        lazyload(invoice.versions), lazyload(invoice.credit_notes)
    )


# Statements of the hot paths, built once (they are constant but for their parameters), so
# that SQLAlchemy neither rebuilds them nor recomputes their cache keys on every request.


@functools.cache
def _order_query(lock: bool, history: bool) -> Any:
    """The order by its key; lock: FOR UPDATE; history=False: see OrderRepository.lock."""
    query = (
        select(model.Order)
        .where(orm.orders.c.business_code == bindparam("business"))
        .where(orm.orders.c.order_reference == bindparam("order_reference"))
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    if not history:
        query = query.options(_invoices_on_demand())
    return query


@functools.cache
def _goodwill_reference_query() -> Any:
    """One statement: is the reference taken by a credit note or by a goodwill?"""
    notes, credits = orm.credit_notes, orm.credits
    business, reference = bindparam("business", type_=String), bindparam("reference", type_=String)
    note = select(notes.c.reference).where(
        (notes.c.business_code == business) & (notes.c.reference == reference)
    )
    goodwill = select(credits.c.reference).where(
        (credits.c.business_code == business)
        & (credits.c.reference == reference)
        & (credits.c.kind == model.GOODWILL)
    )
    return select(exists(note) | exists(goodwill))


def _no_credit_notes_before_a_correction(order: model.Order) -> None:
    """An invoice still at version 1 was never corrected, so it has no credit note yet.

    Every correction nullifies the current version with exactly one credit note and issues the
    next version (Order.correct_invoice; `accounting verify` checks it), so the collection is
    known to be empty without asking the database.
    """
    for invoice in order.invoices:
        if invoice.current_version == 1 and "credit_notes" not in _loaded(invoice):
            set_committed_value(invoice, "credit_notes", [])


def _loaded(instance: object) -> Any:
    return cast(Any, sa_inspect(instance)).dict


class OrderRepository:
    """The order aggregate and what hangs off it."""

    def __init__(self, session: Session):
        self.session = session

    def lock(self, business: str, order_reference: str, history: bool = True) -> model.Order | None:
        """Take the order's row lock first, in its own statement, then load the aggregate.

        history=False is for writes that touch at most one existing invoice (creating an
        invoice, correcting one): each invoice's versions and credit notes are then loaded
        only when that invoice is read, so a write to an order with a long history does not
        load all of it.
        """
        order = self.session.scalars(
            _order_query(lock=True, history=history),
            {"business": business, "order_reference": order_reference},
        ).one_or_none()
        if order is not None and not history:
            _no_credit_notes_before_a_correction(order)
        return order

    def get(self, business: str, order_reference: str) -> model.Order | None:
        return self.session.get(model.Order, (business, order_reference))

    def get_for_invoice(
        self, business: str, order_reference: str, invoice_reference: str
    ) -> model.Order | None:
        """The order with the history of one invoice loaded, the other invoices' left out.

        For a read of that invoice: the objects are used after the session is closed, so
        what the reader needs is loaded here: the order, its positions and invoices, and the
        versions and credit notes of invoice_reference.
        """
        order = self.session.scalars(
            _order_query(lock=False, history=False),
            {"business": business, "order_reference": order_reference},
        ).one_or_none()
        if order is None:
            return None
        _no_credit_notes_before_a_correction(order)
        invoice = order.invoice(invoice_reference)
        if invoice is not None:
            _ = invoice.versions, invoice.credit_notes  # load them while the session is open
        return order

    def add(self, order: model.Order) -> None:
        self.session.add(order)

    def exists(self, business: str, order_reference: str) -> bool:
        return (
            self.session.execute(
                select(orm.orders.c.order_reference)
                .where(orm.orders.c.business_code == business)
                .where(orm.orders.c.order_reference == order_reference)
            ).first()
            is not None
        )

    def invoice_owner(self, business: str, invoice_reference: str) -> str | None:
        """The order an invoice reference belongs to, if it is taken in this business."""
        return self.session.scalar(
            select(orm.invoices.c.order_reference)
            .where(orm.invoices.c.business_code == business)
            .where(orm.invoices.c.invoice_reference == invoice_reference)
        )

    def document_taken(self, business: str, table: Any, reference: str, **extra: str) -> bool:
        query = select(table.c.reference).where(table.c.business_code == business)
        query = query.where(table.c.reference == reference)
        for column, value in extra.items():
            query = query.where(table.c[column] == value)
        return self.session.execute(query).first() is not None

    def goodwill_reference_taken(self, business: str, reference: str) -> bool:
        """Goodwills and correction credit notes (automatic goodwills) share references."""
        taken = self.session.scalar(
            _goodwill_reference_query(), {"business": business, "reference": reference}
        )
        return bool(taken)

    def store(self, order: model.Order, effects: Effects) -> None:
        """Persist the documents, payments, refunds and entries a business event created."""
        entries = []
        for item in effects.created:
            if isinstance(item, ledger.JournalEntry):
                entries.append(item)
                continue
            item.business_code = order.business_code  # type: ignore[attr-defined]
            item.order_reference = order.order_reference  # type: ignore[attr-defined]
            self.session.add(item)
        self._insert_entries(entries)

    def _insert_entries(self, entries: list[ledger.JournalEntry]) -> None:
        """Journal entries and their lines: written once and never read back by the write, so
        they go in as two Core executemany INSERTs (one round trip each) instead of through
        the ORM's unit of work, one tracked object per entry and per line.

        The rows are those the mapping writes (created_at from the column's default, per row
        in order, as the ORM does); the entries stay out of the session.
        """
        if not entries:
            return
        self.session.execute(
            insert(orm.journal_entries),
            [
                {
                    "business_code": e.business_code,
                    "entry_id": e.entry_id,
                    "order_reference": e.order_reference,
                    "kind": e.kind,
                    "document_reference": e.document_reference,
                    "document_date": e.document_date,
                }
                for e in entries
            ],
        )
        lines = [
            {
                "business_code": e.business_code,
                "entry_id": e.entry_id,
                "line_no": line.line_no,
                "account": line.account,
                "tax_country": line.tax_country,
                "vat_type": line.vat_type,
                "rate_bp": line.rate_bp,
                "debit": line.debit,
                "credit": line.credit,
            }
            for e in entries
            for line in e.lines
        ]
        if lines:
            self.session.execute(insert(orm.journal_lines), lines)

    def refunds(self, business: str, order_reference: str) -> Sequence[model.Refund]:
        return self.session.scalars(
            select(model.Refund)
            .where(orm.refunds.c.business_code == business)
            .where(orm.refunds.c.order_reference == order_reference)
            .order_by(orm.refunds.c.created_at, orm.refunds.c.refund_id)
        ).all()

    def journal(self, business: str, order_reference: str) -> Sequence[ledger.JournalEntry]:
        return self.session.scalars(
            select(ledger.JournalEntry)
            .where(orm.journal_entries.c.business_code == business)
            .where(orm.journal_entries.c.order_reference == order_reference)
            .order_by(orm.journal_entries.c.created_at, orm.journal_entries.c.document_date)
        ).all()

    def tax_report(self, business: str, start: date, end: date) -> list[dict[str, Any]]:
        """Net and VAT booked per declaration country, VAT type and rate in the period."""
        lines, entries, orders = orm.journal_lines, orm.journal_entries, orm.orders
        signed = lines.c.credit - lines.c.debit
        net = func.sum(case((lines.c.account == ledger.REVENUE, signed), else_=0))
        vat = func.sum(case((lines.c.account == ledger.VAT_PAYABLE, signed), else_=0))
        rows = self.session.execute(
            select(
                orders.c.currency, lines.c.tax_country, lines.c.vat_type, lines.c.rate_bp, net, vat
            )
            .join(
                entries,
                (entries.c.business_code == lines.c.business_code)
                & (entries.c.entry_id == lines.c.entry_id),
            )
            .join(
                orders,
                (orders.c.business_code == entries.c.business_code)
                & (orders.c.order_reference == entries.c.order_reference),
            )
            .where(lines.c.business_code == business)
            .where(entries.c.document_date.between(start, end))
            .where(lines.c.tax_country.is_not(None))
            .group_by(orders.c.currency, lines.c.tax_country, lines.c.vat_type, lines.c.rate_bp)
            .order_by(orders.c.currency, lines.c.tax_country, lines.c.vat_type, lines.c.rate_bp)
        ).all()
        return [
            {
                "currency": r[0],
                "country": r[1],
                "vat_type": r[2],
                "rate_bp": r[3],
                "net": int(r[4]),
                "vat": int(r[5]),
            }
            for r in rows
        ]
