"""Loading and storing orders and their documents; every query is scoped by business code."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.adapters import orm
from app.domain import ledger, model
from app.domain.model import Effects


class OrderRepository:
    """The order aggregate and what hangs off it."""

    def __init__(self, session: Session):
        self.session = session

    def lock(self, business: str, order_reference: str) -> model.Order | None:
        """Take the order's row lock first, in its own statement, then load the aggregate."""
        return self.session.scalars(
            select(model.Order)
            .where(orm.orders.c.business_code == business)
            .where(orm.orders.c.order_reference == order_reference)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()

    def get(self, business: str, order_reference: str) -> model.Order | None:
        return self.session.get(model.Order, (business, order_reference))

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
        return self.document_taken(business, orm.credit_notes, reference) or self.document_taken(
            business, orm.credits, reference, kind=model.GOODWILL
        )

    def store(self, order: model.Order, effects: Effects) -> None:
        """Persist the documents, payments, refunds and entries a business event created."""
        for item in effects.created:
            if not isinstance(item, ledger.JournalEntry):
                item.business_code = order.business_code  # type: ignore[attr-defined]
                item.order_reference = order.order_reference  # type: ignore[attr-defined]
            self.session.add(item)

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
