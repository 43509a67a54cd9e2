"""The order use cases with an in-memory unit of work: what is stored, when, and exactly once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from app.domain import ledger, model
from app.domain.errors import NotFound, StaleVersion, StateConflict
from app.service.commands import CorrectInvoice, CreateOrder, OrderItem, ReceivePayment
from app.service.orders import Context, Idempotency
from app.service.unit_of_work import IdempotencyKeyReused
from tests.domain_factories import order_header
from tests.service.conftest import Books, FakeOrderService

BUSINESS, CUSTOMER, ORDER = "1000", "TFI2021072801", "ORD1"
INVOICE = "INV1"


def ctx(**preconditions: Any) -> Context:
    return Context(BUSINESS, CUSTOMER, ORDER, **preconditions)


def item(ref: int, price: str, vat: str) -> OrderItem:
    return OrderItem(ref, Decimal(1), Decimal(price), Decimal(19), Decimal(vat), "NORMAL",
                     "SALES_ARTICLE", f"SKU-{ref}", "Blumentopf")  # fmt: skip


def order_command(*items: OrderItem) -> CreateOrder:
    header = {"orderDate": "2024-06-01", "vatDeclarationCountry": "DE", "supplyingCountry": "DE"}
    return CreateOrder(ORDER, "EUR", items, order_header(header), CUSTOMER)


def invoice_spec() -> model.InvoiceSpec:
    return model.InvoiceSpec(INVOICE, date(2024, 6, 10), date(2024, 7, 10), (1, 2))


def version_of(order: model.Order, _: object) -> dict[str, Any]:
    return {"version": order.version}


def invoiced(service: FakeOrderService) -> None:
    service.create_order(ctx(), order_command(item(1, "11.90", "1.90"), item(2, "23.80", "3.80")),
                         version_of)  # fmt: skip
    service.create_invoice(ctx(), invoice_spec(), version_of)


def lowered(price: str, vat: str, reference: str | None = None) -> CorrectInvoice:
    return CorrectInvoice(
        invoice_spec(),
        order_command(item(1, "11.90", "1.90"), item(2, price, vat)),
        reference,
    )


def entries(books: Books) -> list[ledger.JournalEntry]:
    return [d for d in books.created[(BUSINESS, ORDER)] if isinstance(d, ledger.JournalEntry)]


def refunds(books: Books) -> list[model.Refund]:
    return [d for d in books.created[(BUSINESS, ORDER)] if isinstance(d, model.Refund)]


def test_an_invoice_is_stored_with_its_balanced_sale_booking_in_one_commit(
    service: FakeOrderService, books: Books
) -> None:
    service.create_order(ctx(), order_command(item(1, "11.90", "1.90"), item(2, "23.80", "3.80")),
                         version_of)  # fmt: skip
    commits = books.commits

    outcome = service.create_invoice(ctx(), invoice_spec(), version_of)

    assert (outcome.body, outcome.version, books.commits) == ({"version": 2}, 2, commits + 1)
    (entry,) = entries(books)
    assert entry.kind == "invoice"
    assert sum(line.debit for line in entry.lines) == sum(line.credit for line in entry.lines)
    assert [e.topic for e in books.events] == [
        "orderCreated",
        "invoiceCreated",
        "documentCreated",
        "balanceUpdated",
    ]


def test_a_keyed_write_is_replayed_and_stored_once(service: FakeOrderService, books: Books) -> None:
    invoiced(service)
    key = Idempotency("pay-1", "hash-of-the-request")
    pay = ReceivePayment("VISA", Decimal("10.00"))

    first = service.receive_payment(ctx(idempotency=key), pay, version_of)
    again = service.receive_payment(ctx(idempotency=key), pay, version_of)

    assert (first.replayed, again.replayed) == (False, True)
    assert again.body == first.body
    assert books.orders[(BUSINESS, ORDER)].paid_total == 1000
    assert [e.kind for e in entries(books)] == ["invoice", "payment"]


def test_a_key_used_again_for_another_request_is_refused_and_nothing_is_stored(
    service: FakeOrderService, books: Books
) -> None:
    invoiced(service)
    service.receive_payment(ctx(idempotency=Idempotency("k", "one")),
                            ReceivePayment("VISA", Decimal("1.00")), version_of)  # fmt: skip

    with pytest.raises(IdempotencyKeyReused):
        service.receive_payment(ctx(idempotency=Idempotency("k", "another")),
                                ReceivePayment("VISA", Decimal("2.00")), version_of)  # fmt: skip

    assert books.orders[(BUSINESS, ORDER)].paid_total == 100


def test_a_lowering_correction_refunds_the_overpayment_once_and_repeating_it_changes_nothing(
    service: FakeOrderService, books: Books
) -> None:
    invoiced(service)
    service.receive_payment(ctx(), ReceivePayment("VISA"), version_of)

    first = service.correct_invoice(ctx(), INVOICE, lowered("20.00", "3.19"), version_of)
    commits = books.commits
    repeated = service.correct_invoice(ctx(), INVOICE, lowered("20.00", "3.19"), version_of)

    assert first.version == 4  # created 1, invoiced 2, paid 3
    assert [r.amount for r in refunds(books)] == [380]
    assert (repeated.version, books.commits) == (None, commits)  # nothing written
    order = books.orders[(BUSINESS, ORDER)]
    assert [v.status for v in order.invoice(INVOICE).versions] == ["nullified", "issued"]
    assert order.balance == 0


def test_a_dry_run_computes_the_correction_and_stores_nothing(
    service: FakeOrderService, books: Books
) -> None:
    invoiced(service)
    stored_before = dict(books.created)

    outcome = service.correct_invoice(ctx(), INVOICE, lowered("20.00", "3.19"), version_of,
                                      dry_run=True)  # fmt: skip

    assert outcome.version is None
    assert books.created == stored_before
    assert books.orders[(BUSINESS, ORDER)].invoice(INVOICE).current_version == 1


def test_a_write_naming_a_stale_version_is_refused_before_anything_changes(
    service: FakeOrderService, books: Books
) -> None:
    invoiced(service)

    with pytest.raises(StaleVersion):
        service.receive_payment(ctx(if_match=1), ReceivePayment("VISA"), version_of)

    assert books.orders[(BUSINESS, ORDER)].paid_total == 0


def test_an_invoice_reference_of_another_order_is_refused(
    service: FakeOrderService, books: Books
) -> None:
    invoiced(service)
    other = Context(BUSINESS, CUSTOMER, "ORD2")
    second = CreateOrder("ORD2", "EUR", (item(1, "11.90", "1.90"),), order_command().header)
    service.create_order(other, second, version_of)

    with pytest.raises(StateConflict) as refused:
        service.create_invoice(other, model.InvoiceSpec(INVOICE, date(2024, 6, 10), None, (1,)),
                               version_of)  # fmt: skip

    assert refused.value.code == "invoice-exists"
    assert books.orders[(BUSINESS, "ORD2")].invoices == []


def test_another_customers_order_reads_as_no_order(service: FakeOrderService) -> None:
    invoiced(service)

    with pytest.raises(NotFound):
        service.get_order(Context(BUSINESS, "SOMEONE-ELSE", ORDER))
