"""Refund payouts: credit-transfer files, payouts through a payment provider, confirmations,
failures and retries. Each is one transaction that takes the orders' locks first.

A refund with bank details goes out in a SEPA credit-transfer file; one without goes back to
the original payment method through a payout adapter (a payment provider). Either way it is in
payout until confirmed (completed: final) or failed (owed again, may be retried).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from app.adapters import event_data as events
from app.adapters.billing import creditor_name
from app.domain import model
from app.domain.bank_account import BankAccount, Transfer, account_problem, compact_account
from app.domain.errors import NotFound
from app.domain.model import Effects
from app.service.orders import Idempotency, Outcome, Written, check_version, idempotent, today
from app.service.unit_of_work import UnitOfWork, run

# Orders locked by one export at most; what is left goes in the next file.
EXPORT_ORDERS = 10_000
# SEPA credit transfers are in euro.
SEPA_CURRENCY = "EUR"
DESCRIPTION_LENGTH = 140  # a credit transfer's unstructured remittance information


# A refund's step: its effects on the order.
Step = Callable[[model.Order, model.Refund], Effects]
# A file's writer: the transfers and the export's id in, its message id and bytes out.
Render = Callable[[list[Transfer], str], tuple[str, bytes]]


@dataclass(frozen=True)
class Export:
    """What an export wrote (no file when nothing was due) and the refunds it left pending."""

    export_id: str | None
    message_id: str | None
    document: bytes | None
    transfers: list[Transfer]
    skipped: list[tuple[str, str]]  # (refund id, why)

    @property
    def total(self) -> int:
        return sum(t.amount for t in self.transfers)


@dataclass(frozen=True)
class ProviderPayout:
    """A refund to the original payment method, as a payment provider is asked to pay it."""

    refund_id: str
    order_reference: str
    amount: int
    currency: str
    idempotency_key: str  # the refund and its attempt: a provider pays each key once


class PayoutAdapter(Protocol):
    """A payment provider that refunds to the original payment method."""

    def pay(self, payout: ProviderPayout) -> str:
        """Ask the provider to pay; returns its reference for the payout."""
        ...


@dataclass(frozen=True)
class Answering:
    """What an HTTP write brings: the client's key, its If-Match (the order's version) and
    how its answer is presented."""

    idempotency: Idempotency | None
    if_match: int | None
    present: Callable[[model.Order, model.Refund], dict[str, Any]]


# A step outside HTTP (the CLI's): no key, no If-Match, nothing to answer.
UNANSWERED = Answering(None, None, lambda order, refund: {})


def _transfer(order: model.Order, refund: model.Refund) -> Transfer:
    account = refund.bank_details
    assert account is not None  # due_transfers hands over checked accounts only
    iban, bic = compact_account(account)
    description = f"Refund {order.order_reference} {refund.cause}"[:DESCRIPTION_LENGTH]
    name = creditor_name(order.header, account, order.customer_number)
    return Transfer(
        refund.refund_id, order.order_reference, refund.amount, name, iban, bic, description
    )


def due_transfers(
    orders: list[model.Order], refunds: dict[str, list[model.Refund]]
) -> tuple[list[tuple[model.Order, model.Refund, Transfer]], list[tuple[str, str]]]:
    """The pending bank refunds of these orders that can go in a file, and those that cannot
    (with the reason): only euro, only to a checksum-valid IBAN (and BIC, when given)."""
    due, skipped = [], []
    for order in orders:
        for refund in refunds[order.order_reference]:
            if refund.status != model.PENDING or refund.method != model.BANK_TRANSFER:
                continue
            problem = account_problem(refund.bank_details)
            if order.currency != SEPA_CURRENCY:
                problem = f"SEPA credit transfers are in euro, the order is in {order.currency}"
            if problem:
                skipped.append((refund.refund_id, problem))
            else:
                due.append((order, refund, _transfer(order, refund)))
    return due, skipped


def _store_step(
    uow: UnitOfWork, order: model.Order, refund: model.Refund, effects: Effects
) -> None:
    """A refund's step: its order, the refund itself, the journal entry and the event."""
    uow.orders.store(order, effects, [events.refund_step(order, refund)], refunds=[refund])


def _export_rows(
    business: str,
    fmt: str,
    export: Export,
    due: list[tuple[model.Order, model.Refund, Transfer]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The export's record and its items: each refund's payout attempt, once."""
    record = {
        "business_code": business,
        "export_id": export.export_id,
        "format": fmt,
        "message_id": export.message_id,
        "currency": SEPA_CURRENCY,
        "count": len(export.transfers),
        "total": export.total,
        "document": export.document,
        "created_at": datetime.now(UTC),
    }
    items = [
        {
            "business_code": business,
            "refund_id": refund.refund_id,
            "attempt": refund.attempt,
            "export_id": export.export_id,
            "order_reference": order.order_reference,
            "amount": refund.amount,
        }
        for order, refund, _ in due
    ]
    return record, items


class RefundPayouts:
    """The payout use cases over one database."""

    def __init__(self, session_factory: sessionmaker[Session]):
        self.session_factory = session_factory

    def export(self, business: str, fmt: str, render: Render) -> Export:
        """Write the due bank refunds into one credit-transfer file and put them in payout,
        in the transaction that records the file: a refund is never in two files."""

        def use_case(uow: UnitOfWork) -> Export:
            orders = uow.orders.lock_orders_owing_refunds(business, EXPORT_ORDERS)
            refunds = uow.orders.refunds_of(business, [o.order_reference for o in orders])
            due, skipped = due_transfers(orders, refunds)
            if not due:
                uow.rollback()
                return Export(None, None, None, [], skipped)
            export_id = str(uuid.uuid4())
            transfers = [transfer for _, _, transfer in due]
            message_id, document = render(transfers, export_id)
            for order, refund, _ in due:
                effects = order.start_refund_payout(refund, export_id, today())
                _store_step(uow, order, refund, effects)
            export = Export(export_id, message_id, document, transfers, skipped)
            uow.orders.add_export(*_export_rows(business, fmt, export, due))
            uow.commit()
            return export

        return run(self.session_factory, use_case)

    def document(self, business: str, export_id: str) -> bytes:
        """A credit-transfer file as its export wrote it."""

        def read(uow: UnitOfWork) -> bytes:
            document = uow.orders.export_document(business, export_id)
            if document is None:
                raise NotFound(f"export {export_id} not found")
            return document

        return run(self.session_factory, read, snapshot=True)

    def pay_to_providers(
        self, business: str, adapter: PayoutAdapter, when: date | None = None
    ) -> list[model.Refund]:
        """Hand every pending refund to the original payment method to the provider."""

        def use_case(uow: UnitOfWork) -> list[model.Refund]:
            orders = uow.orders.lock_orders_owing_refunds(business, EXPORT_ORDERS)
            refunds = uow.orders.refunds_of(business, [o.order_reference for o in orders])
            started = []
            for order in orders:
                for refund in refunds[order.order_reference]:
                    if refund.status != model.PENDING or refund.method != model.ORIGINAL_METHOD:
                        continue
                    key = f"{refund.refund_id}/{refund.attempt + 1}"
                    payout = ProviderPayout(
                        refund.refund_id, order.order_reference, refund.amount, order.currency, key
                    )
                    reference = adapter.pay(payout)
                    effects = order.start_refund_payout(refund, reference, when or today())
                    _store_step(uow, order, refund, effects)
                    started.append(refund)
            uow.commit()
            return started

        return run(self.session_factory, use_case)

    def confirm(
        self,
        business: str,
        refund_id: str,
        when: date | None = None,
        answering: Answering = UNANSWERED,
    ) -> Outcome:
        """The payout arrived: the refund is completed, its money booked as gone."""
        return self.answer(
            business, refund_id, lambda o, r: o.complete_refund(r, when or today()), answering
        )

    def fail(
        self,
        business: str,
        refund_id: str,
        reason: str,
        when: date | None = None,
        answering: Answering = UNANSWERED,
    ) -> Outcome:
        """The payout came back: the refund is failed and owed again."""
        return self.answer(
            business, refund_id, lambda o, r: o.fail_refund(r, reason, when or today()), answering
        )

    def retry(
        self,
        business: str,
        refund_id: str,
        bank_details: BankAccount | None,
        answering: Answering = UNANSWERED,
    ) -> Outcome:
        """A failed refund is pending again, to new bank details if given."""
        return self.answer(
            business, refund_id, lambda o, r: o.retry_refund(r, bank_details), answering
        )

    def answer(self, business: str, refund_id: str, step: Step, answering: Answering) -> Outcome:
        """One refund's step under its order's lock, with its journal entry and event, in one
        transaction; an HTTP write's answer is stored under the client's key in it and replayed
        on a retry."""

        def write(uow: UnitOfWork) -> Written:
            # A refund's order never changes: looked up before the lock, checked after it.
            order_reference = uow.orders.refund_owner(business, refund_id)
            order = uow.orders.lock(business, order_reference) if order_reference else None
            if order is None:
                raise NotFound(f"refund {refund_id} not found")
            check_version(order, answering.if_match)
            refunds = uow.orders.refunds_of(business, [order.order_reference])
            refund = next(r for r in refunds[order.order_reference] if r.refund_id == refund_id)
            effects = step(order, refund)
            _store_step(uow, order, refund, effects)
            return answering.present(order, refund), order.version, True

        return run(self.session_factory, idempotent(business, answering.idempotency, write))
