"""The order use cases. Each write: one transaction, the order lock first, rules inside it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.adapters import orm
from app.adapters.repository import OrderRepository
from app.domain import model
from app.domain.errors import FieldError, NotFound, StaleVersion, StateConflict, field_errors
from app.domain.model import CorrectionResult, Effects, check_reverse_charge
from app.service import commands
from app.service.unit_of_work import UnitOfWork, run


@dataclass(frozen=True)
class Context:
    """Who asks about which order, with the client's preconditions."""

    business: str
    customer: str
    order_reference: str
    if_match: int | None = None


def today() -> date:
    return datetime.now(UTC).date()


def _owned(order: model.Order | None, ctx: Context) -> model.Order:
    # An order of another customer reads exactly like no order at all.
    if order is None or order.customer_number != ctx.customer:
        raise NotFound(f"order {ctx.order_reference} not found")
    return order


def _check_version(order: model.Order, ctx: Context) -> None:
    if ctx.if_match is not None and ctx.if_match != order.version:
        raise StaleVersion(
            f"the order is at version {order.version}, If-Match names {ctx.if_match}"
        )


class OrderService:
    """Use cases over orders of one database."""

    def __init__(self, session_factory: sessionmaker[Session]):
        self.session_factory = session_factory

    def _write(
        self,
        ctx: Context,
        change: Callable[[model.Order, OrderRepository], Any],
        dry_run: bool = False,
    ) -> Any:
        """Lock the order, apply a change, store its effects, commit (unless dry run)."""

        def use_case(uow: UnitOfWork) -> Any:
            order = _owned(uow.orders.lock(ctx.business, ctx.order_reference), ctx)
            _check_version(order, ctx)
            result = change(order, uow.orders)
            if dry_run:
                uow.discard()
            else:
                uow.commit()
            return result

        return run(self.session_factory, use_case)

    # --- reads ---------------------------------------------------------------------------

    def get_order(self, ctx: Context) -> model.Order:
        with UnitOfWork(self.session_factory) as uow:
            return _owned(uow.orders.get(ctx.business, ctx.order_reference), ctx)

    def get_invoice(
        self, ctx: Context, invoice_reference: str
    ) -> tuple[model.Order, model.Invoice]:
        order = self.get_order(ctx)
        invoice = order.invoice(invoice_reference)
        if invoice is None:
            raise NotFound(f"invoice {invoice_reference} not found")
        return order, invoice

    def refunds(self, ctx: Context) -> tuple[model.Order, list[model.Refund]]:
        with UnitOfWork(self.session_factory) as uow:
            order = _owned(uow.orders.get(ctx.business, ctx.order_reference), ctx)
            return order, list(uow.orders.refunds(ctx.business, ctx.order_reference))

    def journal(self, ctx: Context) -> tuple[model.Order, list[Any]]:
        with UnitOfWork(self.session_factory) as uow:
            order = _owned(uow.orders.get(ctx.business, ctx.order_reference), ctx)
            return order, list(uow.orders.journal(ctx.business, ctx.order_reference))

    def tax_report(self, business: str, start: date, end: date) -> list[dict[str, Any]]:
        with UnitOfWork(self.session_factory) as uow:
            return uow.orders.tax_report(business, start, end)

    # --- writes --------------------------------------------------------------------------

    def create_order(self, business: str, customer: str, body: dict[str, Any]) -> model.Order:
        """Record an order as sent; nothing is booked yet."""
        currency = body["currency"]
        items = commands.item_specs(body["items"], currency, "items")
        vat_id = (body.get("billToAddress") or {}).get("taxIdentificationNumber")
        check_reverse_charge(items, vat_id, "billToAddress.taxIdentificationNumber")
        if body.get("customerNumber") not in (None, customer):
            raise field_errors(
                FieldError(
                    "customerNumber", "customer-mismatch", "must equal the customer in the path"
                )
            )
        order = model.Order(
            business, body["orderReference"], customer, currency, commands.header_of(body), items
        )

        def use_case(uow: UnitOfWork) -> model.Order:
            if uow.orders.exists(business, order.order_reference):
                raise StateConflict(
                    f"order {order.order_reference} already exists", code="order-exists"
                )
            uow.orders.add(order)
            _outbox(uow.session, order, "order.created", {})
            uow.commit()
            return order

        return run(self.session_factory, use_case)

    def create_invoice(self, ctx: Context, body: dict[str, Any]) -> model.Invoice:
        """Invoice whole open positions; books receivable against revenue and VAT."""
        spec = commands.invoice_spec(body)

        def change(order: model.Order, repo: OrderRepository) -> model.Invoice:
            owner = repo.invoice_owner(ctx.business, spec.invoice_reference)
            if owner is not None:
                raise StateConflict(
                    f"invoice {spec.invoice_reference} already exists", code="invoice-exists"
                )
            invoice, effects = order.create_invoice(spec)
            _store(repo, order, effects, "invoice.created", spec.invoice_reference)
            return invoice

        result: model.Invoice = self._write(ctx, change)
        return result

    def cancel(self, ctx: Context, body: dict[str, Any]) -> tuple[str, Effects]:
        reference = body.get("cancellationReference") or f"C-{uuid.uuid4().hex[:12]}"
        refs = [i["orderItemReference"] for i in body["items"]]

        def change(order: model.Order, repo: OrderRepository) -> Effects:
            if repo.document_taken(ctx.business, orm.cancellations, reference):
                raise _taken("cancellationReference", reference)
            effects = order.cancel(
                reference,
                body.get("reason"),
                refs,
                body.get("cancellationDate") or today(),
                commands.jsonable(body.get("bankDetails")),
            )
            _store(repo, order, effects, "order.cancelled", reference)
            return effects

        effects: Effects = self._write(ctx, change)
        return reference, effects

    def return_items(self, ctx: Context, body: dict[str, Any]) -> Effects:
        reference = body["returnReference"]

        def change(order: model.Order, repo: OrderRepository) -> Effects:
            if repo.document_taken(ctx.business, orm.credits, reference, kind=model.RETURN):
                raise _taken("returnReference", reference)
            items = [
                (i["orderItemReference"], commands.quantity_to_milli(i["quantity"]))
                for i in body["items"]
            ]
            effects = order.return_items(
                reference,
                body.get("reason"),
                items,
                body.get("returnDate") or today(),
                commands.jsonable(body.get("bankDetails")),
            )
            _store(repo, order, effects, "order.returned", reference)
            return effects

        result: Effects = self._write(ctx, change)
        return result

    def grant_goodwill(self, ctx: Context, body: dict[str, Any]) -> Effects:
        reference = body["goodwillReference"]

        def change(order: model.Order, repo: OrderRepository) -> Effects:
            if repo.document_taken(ctx.business, orm.credits, reference, kind=model.GOODWILL):
                raise _taken("goodwillReference", reference)
            items = [
                (
                    i["orderItemReference"],
                    commands.minor(i["grossAmount"], order.currency, f"items[{n}].grossAmount"),
                )
                for n, i in enumerate(body["items"])
            ]
            effects = order.grant_goodwill(
                reference,
                body.get("reason"),
                items,
                body.get("goodwillDate") or today(),
                commands.jsonable(body.get("bankDetails")),
            )
            _store(repo, order, effects, "order.goodwill", reference)
            return effects

        result: Effects = self._write(ctx, change)
        return result

    def receive_payment(self, ctx: Context, body: dict[str, Any]) -> model.Payment:
        def change(order: model.Order, repo: OrderRepository) -> model.Payment:
            amount = body.get("amount")
            minor = None if amount is None else commands.minor(amount, order.currency, "amount")
            payment, effects = order.receive_payment(
                minor,
                body.get("provider"),
                body.get("paymentReference"),
                body.get("paymentDate") or today(),
            )
            _store(repo, order, effects, "payment.received", payment.payment_id)
            return payment

        result: model.Payment = self._write(ctx, change)
        return result

    def correct_invoice(
        self, ctx: Context, invoice_reference: str, body: dict[str, Any], dry_run: bool
    ) -> CorrectionResult:
        """Nullify the current version with a credit note, issue the next, rebook, refund."""
        order_body, invoice_body = body["order"], body["invoice"]
        items = commands.item_specs(order_body["items"], order_body["currency"], "order.items")
        vat_id = (order_body.get("billToAddress") or {}).get("taxIdentificationNumber")
        check_reverse_charge(items, vat_id, "order.billToAddress.taxIdentificationNumber")
        spec = commands.invoice_spec(invoice_body)
        refs = {k: order_body.get(k) for k in ("customerNumber", "orderReference", "currency")}

        def use_case(uow: UnitOfWork) -> CorrectionResult:
            order = uow.orders.lock(ctx.business, ctx.order_reference)
            if order is None:
                raise NotFound(f"order {ctx.order_reference} not found")
            if order.customer_number != ctx.customer:
                raise field_errors(
                    FieldError(
                        "customerNumber",
                        "customer-change-forbidden",
                        "the order belongs to another customer",
                    )
                )
            _check_version(order, ctx)
            if order.invoice(invoice_reference) is None:
                raise NotFound(f"invoice {invoice_reference} not found")
            credit_ref = body.get("goodwillReference")
            result, effects = order.correct_invoice(
                invoice_reference, spec, commands.header_of(order_body), items, refs, credit_ref
            )
            if result.credit_note is not None:
                with uow.session.no_autoflush:  # look for others' notes, not the new one
                    taken = uow.orders.document_taken(
                        ctx.business, orm.credit_notes, result.credit_note.reference
                    )
                if taken:
                    raise _taken("goodwillReference", result.credit_note.reference)
            if dry_run or not result.changed:
                uow.discard()
                return result
            _store(uow.orders, order, effects, "invoice.corrected", invoice_reference)
            uow.commit()
            return result

        return run(self.session_factory, use_case)


def _taken(field_name: str, reference: str) -> StateConflict:
    return StateConflict(
        f"{reference} is already used",
        [FieldError(field_name, "reference-taken", f"{reference} is already used")],
        code="reference-taken",
    )


def _store(
    repo: OrderRepository, order: model.Order, effects: Effects, topic: str, reference: str
) -> None:
    repo.store(order, effects)
    payload = {"reference": reference, "version": order.version}
    if effects.refund is not None:
        payload["refund"] = effects.refund.refund_id
    _outbox(repo.session, order, topic, payload)


def _outbox(session: Session, order: model.Order, topic: str, payload: dict[str, Any]) -> None:
    session.execute(
        orm.outbox.insert().values(
            business_code=order.business_code,
            event_id=str(uuid.uuid4()),
            order_reference=order.order_reference,
            topic=topic,
            payload=payload,
        )
    )
