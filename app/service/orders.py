"""The order use cases. Each write: one transaction, the order lock first, rules inside it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from app.adapters import event_data as events
from app.adapters.idempotency import StoredAnswer
from app.adapters.repository import Correcting, History
from app.domain import model
from app.domain.errors import FieldError, NotFound, StaleVersion, StateConflict, field_errors
from app.domain.model import CorrectionResult, Effects, OrderIdentity, check_reverse_charge
from app.service import commands
from app.service.commands import (
    Cancel,
    CorrectInvoice,
    CreateOrder,
    GrantGoodwill,
    ReceivePayment,
    ReturnItems,
)
from app.service.unit_of_work import (
    IdempotencyKeyReused,
    RequestInFlight,
    UnitOfWork,
    run,
)


@dataclass(frozen=True)
class Idempotency:
    """The client's Idempotency-Key (or X-Request-ID) and a fingerprint of its request."""

    key: str
    request_hash: str


@dataclass(frozen=True)
class Context:
    """Who asks about which order, with the client's preconditions."""

    business: str
    customer: str
    order_reference: str
    if_match: int | None = None
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class Outcome:
    """The answer to a write: the presented body and the order's version (its ETag)."""

    body: dict[str, Any]
    version: int | None  # None when nothing was written (dry run, identical correction)
    replayed: bool = False


T = TypeVar("T")
Present = Callable[[model.Order, Any], dict[str, Any]]
Change = Callable[[model.Order, UnitOfWork], tuple[Any, bool]]
# A write's answer, the version stored with it, and whether it is kept (committed).
Written = tuple[dict[str, Any], int | None, bool]


def today() -> date:
    return datetime.now(UTC).date()


def stored_answer(uow: UnitOfWork, business: str, key: Idempotency | None) -> StoredAnswer | None:
    """The answer stored under the client's key, to replay; holds the key for the transaction.

    Refuses a key another request still holds (409) or that came with another request (422).
    """
    if key is None:
        return None
    if not uow.idempotency.try_guard(business, key.key):
        raise RequestInFlight("a request with this Idempotency-Key is still running")
    stored = uow.idempotency.find(business, key.key)
    if stored is not None and stored.request_hash != key.request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with another request",
            [
                FieldError(
                    "Idempotency-Key", "idempotency-key-reused", "send a new key for a new request"
                )
            ],
        )
    return stored


def idempotent(
    business: str, key: Idempotency | None, write: Callable[[UnitOfWork], Written]
) -> Callable[[UnitOfWork], Outcome]:
    """A write's use case: replay the answer stored under the client's key, or write and
    commit, its answer stored in the same transaction as the change itself, so a retry after
    any failure either replays it or finds nothing written. What is not kept rolls back."""

    def use_case(uow: UnitOfWork) -> Outcome:
        stored = stored_answer(uow, business, key)
        if stored is not None:
            return Outcome(stored.body, stored.version, replayed=True)
        body, version, keep = write(uow)
        if not keep:
            uow.rollback()
            return Outcome(body, None)
        if key is not None:
            uow.idempotency.save(business, key.key, key.request_hash, body, version)
        uow.commit()
        return Outcome(body, version)

    return use_case


def _owned(order: model.Order | None, ctx: Context) -> model.Order:
    # An order of another customer reads exactly like no order at all.
    if order is None or order.customer_number != ctx.customer:
        raise NotFound(f"order {ctx.order_reference} not found")
    return order


def check_version(order: model.Order, if_match: int | None) -> None:
    if if_match is not None and if_match != order.version:
        raise StaleVersion(f"the order is at version {order.version}, If-Match names {if_match}")


class OrderService:
    """Use cases over orders of one database."""

    def __init__(self, session_factory: sessionmaker[Session]):
        self.session_factory = session_factory

    def run(self, use_case: Callable[[UnitOfWork], T], snapshot: bool = False) -> T:
        """Run a use case in a unit of work of its own (tests put a fake one here)."""
        return run(self.session_factory, use_case, snapshot=snapshot)

    def _execute(
        self,
        ctx: Context,
        act: Callable[[UnitOfWork], tuple[model.Order, Any, bool]],
        present: Present,
        dry_run: bool = False,
    ) -> Outcome:
        """One write, its answer kept under the client's key (`idempotent`); a dry run
        neither replays nor keeps anything."""

        def write(uow: UnitOfWork) -> Written:
            order, result, changed = act(uow)
            return present(order, result), order.version, changed and not dry_run

        return self.run(idempotent(ctx.business, None if dry_run else ctx.idempotency, write))

    def _write(self, ctx: Context, change: Change, present: Present) -> Outcome:
        """Lock the order first, in its own statement, then check and apply the change."""

        def act(uow: UnitOfWork) -> tuple[model.Order, Any, bool]:
            order = _owned(uow.orders.lock(ctx.business, ctx.order_reference), ctx)
            check_version(order, ctx.if_match)
            result, changed = change(order, uow)
            return order, result, changed

        return self._execute(ctx, act, present)

    # --- reads ---------------------------------------------------------------------------

    def _read(self, read: Callable[[UnitOfWork], T]) -> T:
        """A read in one snapshot (see UnitOfWork)."""
        return self.run(read, snapshot=True)

    def get_order(self, ctx: Context, history: History = False) -> model.Order:
        """The order, with the history asked for: an invoice's (its reference) or all (True)."""
        return self._read(
            lambda uow: _owned(uow.orders.get(ctx.business, ctx.order_reference, history), ctx)
        )

    def get_invoice(
        self, ctx: Context, invoice_reference: str
    ) -> tuple[model.Order, model.Invoice]:
        order = self.get_order(ctx, history=invoice_reference)
        invoice = order.invoice(invoice_reference)
        if invoice is None:
            raise NotFound(f"invoice {invoice_reference} not found")
        return order, invoice

    def refunds(self, ctx: Context) -> tuple[model.Order, list[model.Refund]]:
        def read(uow: UnitOfWork) -> tuple[model.Order, list[model.Refund]]:
            order = _owned(uow.orders.get(ctx.business, ctx.order_reference), ctx)
            return order, uow.orders.refunds(ctx.business, ctx.order_reference)

        return self._read(read)

    def journal(self, ctx: Context) -> tuple[model.Order, list[Any]]:
        def read(uow: UnitOfWork) -> tuple[model.Order, list[Any]]:
            order = _owned(uow.orders.get(ctx.business, ctx.order_reference), ctx)
            return order, uow.orders.journal(ctx.business, ctx.order_reference)

        return self._read(read)

    def tax_report(self, business: str, start: date, end: date) -> list[dict[str, Any]]:
        return self._read(lambda uow: uow.orders.tax_report(business, start, end))

    # --- writes --------------------------------------------------------------------------

    def create_order(self, ctx: Context, command: CreateOrder, present: Present) -> Outcome:
        """Record an order as sent; nothing is booked yet."""
        items = commands.item_specs(command.items, command.currency, "items")
        check_reverse_charge(items, command.vat_id, "vat_id")
        if command.customer_number not in (None, ctx.customer):
            raise field_errors(
                FieldError(
                    "customer_number", "customer-mismatch", "must equal the customer in the path"
                )
            )

        def act(uow: UnitOfWork) -> tuple[model.Order, None, bool]:
            if uow.orders.exists(ctx.business, ctx.order_reference):
                raise StateConflict(
                    f"order {ctx.order_reference} already exists", code="order-exists"
                )
            order = model.Order(
                ctx.business,
                ctx.order_reference,
                ctx.customer,
                command.currency,
                command.header,
                items,
            )
            uow.orders.add(order, events.order_created(order))
            return order, None, True

        return self._execute(ctx, act, present)

    def create_invoice(self, ctx: Context, spec: model.InvoiceSpec, present: Present) -> Outcome:
        """Invoice whole open positions; books receivable against revenue and VAT."""

        def change(order: model.Order, uow: UnitOfWork) -> tuple[model.Invoice, bool]:
            if uow.orders.invoice_owner(ctx.business, spec.invoice_reference) is not None:
                raise StateConflict(
                    f"invoice {spec.invoice_reference} already exists", code="invoice-exists"
                )
            invoice, effects = order.create_invoice(spec)
            told = events.invoice_created(order, effects, spec.invoice_reference)
            uow.orders.store(order, effects, told)
            return invoice, True

        return self._write(ctx, change, present)

    def cancel(self, ctx: Context, command: Cancel, present: Present) -> Outcome:
        """Cancel whole open positions; refund what was paid for them, if anything."""
        reference = f"C-{uuid.uuid4().hex[:12]}"

        def change(order: model.Order, uow: UnitOfWork) -> tuple[Effects, bool]:
            effects = order.cancel(
                reference,
                command.reason,
                list(command.item_refs),
                command.when,
                command.bank_details,
                command.invoice_reference,
            )
            uow.orders.store(order, effects, events.cancelled(order, effects, reference))
            return effects, True

        return self._write(ctx, change, present)

    def return_items(self, ctx: Context, command: ReturnItems, present: Present) -> Outcome:
        """Take back whole or partial quantities of invoiced positions."""
        reference = command.return_reference

        def change(order: model.Order, uow: UnitOfWork) -> tuple[Effects, bool]:
            if uow.orders.return_reference_taken(ctx.business, reference):
                raise _taken("return_reference", reference)
            effects = order.return_items(
                reference,
                command.reason,
                commands.credit_items(command.items, order.currency),
                command.when or today(),
                command.bank_details,
                command.invoice_reference,
            )
            uow.orders.store(order, effects, events.credited(order, effects))
            return effects, True

        return self._write(ctx, change, present)

    def grant_goodwill(self, ctx: Context, command: GrantGoodwill, present: Present) -> Outcome:
        """Credit quantity x unit price on invoiced positions."""
        reference = command.goodwill_reference

        def change(order: model.Order, uow: UnitOfWork) -> tuple[Effects, bool]:
            if uow.orders.goodwill_reference_taken(ctx.business, reference):
                raise _taken("goodwill_reference", reference)
            effects = order.grant_goodwill(
                reference,
                command.reason,
                commands.credit_items(command.items, order.currency),
                command.when or today(),
                command.bank_details,
                command.invoice_reference,
                command.credit_date,
            )
            uow.orders.store(order, effects, events.credited(order, effects))
            return effects, True

        return self._write(ctx, change, present)

    def receive_payment(self, ctx: Context, command: ReceivePayment, present: Present) -> Outcome:
        """Book money received; without an amount, everything that is open."""

        def change(order: model.Order, uow: UnitOfWork) -> tuple[Effects, bool]:
            amount = command.amount
            minor = None if amount is None else commands.minor(amount, order.currency, "amount")
            payment, effects = order.receive_payment(
                minor, command.provider, command.reference, command.when or today()
            )
            uow.orders.store(order, effects, events.payment_received(order, effects, payment))
            return effects, True

        return self._write(ctx, change, present)

    def correct_invoice(
        self,
        ctx: Context,
        invoice_reference: str,
        command: CorrectInvoice,
        present: Present,
        dry_run: bool = False,
    ) -> Outcome:
        """Nullify the current version with a credit note, issue the next, rebook, refund."""
        restated = command.order
        items = commands.item_specs(restated.items, restated.currency, "order.items")
        check_reverse_charge(items, restated.vat_id, "order.vat_id")
        identity = OrderIdentity(
            restated.order_reference, restated.currency, restated.customer_number
        )
        credit_note_reference = command.credit_note_reference

        def act(uow: UnitOfWork) -> tuple[model.Order, CorrectionResult, bool]:
            correcting = Correcting(invoice_reference, credit_note_reference)
            order = uow.orders.lock(ctx.business, ctx.order_reference, correcting=correcting)
            if order is None:
                raise NotFound(f"order {ctx.order_reference} not found")
            if order.customer_number != ctx.customer:
                raise field_errors(
                    FieldError(
                        "customer_number",
                        "customer-change-forbidden",
                        "the order belongs to another customer",
                    )
                )
            check_version(order, ctx.if_match)
            if order.invoice(invoice_reference) is None:
                raise NotFound(f"invoice {invoice_reference} not found")
            result, _ = correct_locked(
                uow,
                order,
                invoice_reference,
                command.invoice,
                restated.header,
                items,
                identity,
                credit_note_reference,
            )
            return order, result, result.changed

        return self._execute(ctx, act, present, dry_run)


def correct_locked(
    uow: UnitOfWork,
    order: model.Order,
    invoice_reference: str,
    spec: model.InvoiceSpec,
    header: model.OrderHeader,
    items: list[model.ItemSpec],
    identity: OrderIdentity,
    credit_note_reference: str | None,
    store: bool = True,
) -> tuple[CorrectionResult, Effects]:
    """The correction once its order is locked: rules, documents, reference check, storage.

    The one path of every correction, the PUT's and the batch tax corrections' alike.
    """
    result, effects = order.correct_invoice(
        invoice_reference, spec, header, items, identity, credit_note_reference
    )
    if result.credit_note is not None:
        taken = uow.orders.goodwill_reference_taken(
            order.business_code, result.credit_note.reference
        )
        if taken:
            raise _taken("credit_note_reference", result.credit_note.reference)
    if result.changed and store:
        uow.orders.store(order, effects, events.invoice_corrected(order, effects, result))
    return result, effects


def _taken(field_name: str, reference: str) -> StateConflict:
    return StateConflict(
        f"{reference} is already used",
        [FieldError(field_name, "reference-taken", f"{reference} is already used")],
        code="reference-taken",
    )
