"""Orders in PostgreSQL: the round trip, the order lock, the tax report, a balanced journal."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.domain import ledger
from app.domain.model import CANCELLED, INVOICED, NULLIFIED, Effects, Order
from app.service.unit_of_work import DuplicateReference, UnitOfWork, run
from tests.domain_factories import (
    InvoiceSpecFactory,
    ItemSpecFactory,
    OrderAggregateFactory,
    body_refs,
    goodwilled,
    invoice_open,
    restated,
)
from tests.domain_factories import (
    returned as return_lines,
)

Factory = sessionmaker[Session]
Event = Callable[[Order], Effects]
JUNE = date(2024, 6, 15)


def save(session_factory: Factory, order: Order) -> None:
    """Record a new order, as the create-order use case does."""
    with UnitOfWork(session_factory) as uow:
        uow.orders.add(order)
        uow.commit()


def apply(session_factory: Factory, business: str, reference: str, event: Event) -> Effects:
    """One write use case: lock the order, apply the event, store its effects, commit."""
    with UnitOfWork(session_factory) as uow:
        order = uow.orders.lock(business, reference)
        assert order is not None
        effects = event(order)
        uow.orders.store(order, effects)
        uow.commit()
        return effects


def invoiced(**fields: object) -> Event:
    return lambda order: invoice_open(order, **fields)[1]


def paid(amount: int | None = None, when: date = JUNE) -> Event:
    return lambda order: order.receive_payment(amount, "VISA", None, when)[1]


def returned(reference: str, items: list[tuple[int, int]], when: date = JUNE) -> Event:
    return lambda order: order.return_items(reference, None, return_lines(items), when, None)


def goodwill(reference: str, items: list[tuple[int, int]], when: date = JUNE) -> Event:
    return lambda order: order.grant_goodwill(reference, None, goodwilled(items), when, None)


def cancelled(reference: str, refs: list[int]) -> Event:
    return lambda order: order.cancel(reference, None, refs, JUNE, None)


def corrected(invoice_reference: str, **price_changes: int) -> Event:
    def correct(order: Order) -> Effects:
        current = order.invoice(invoice_reference)
        assert current is not None
        spec = InvoiceSpecFactory(
            invoice_reference=invoice_reference,
            item_refs=tuple(current.current.item_refs),
            invoice_date=date(2024, 6, 20),
        )
        _result, effects = order.correct_invoice(
            invoice_reference,
            spec,
            order.restated_header(),
            restated(order, **price_changes),
            body_refs(order),
            None,
        )
        return effects

    return correct


# --- the round trip --------------------------------------------------------------------


def test_an_order_round_trips_with_positions_invoices_versions_and_money(
    session_factory: Factory,
) -> None:
    order = OrderAggregateFactory(
        order_reference="ORD1",
        items=[
            ItemSpecFactory(item_ref=1, extra={"subscription": {"period": "P1M"}}),
            ItemSpecFactory(item_ref=2, unit_gross=2380, quantity_milli=2500),
            ItemSpecFactory(item_ref=3, rate_bp=700, vat_type="REDUCED", unit_gross=1070),
        ],
    )
    save(session_factory, order)
    apply(session_factory, "1000", "ORD1", cancelled("C1", [3]))
    apply(session_factory, "1000", "ORD1", invoiced(invoice_reference="INV1"))
    apply(session_factory, "1000", "ORD1", paid())
    apply(session_factory, "1000", "ORD1", corrected("INV1", p2=2000))

    with UnitOfWork(session_factory) as uow:
        loaded = uow.orders.get("1000", "ORD1", history="INV1")
        assert loaded is not None
        assert loaded is not order
        positions = [
            (p.item_ref, p.state, p.invoice_reference, p.unit_gross, p.quantity_milli, p.extra)
            for p in loaded.positions
        ]
        invoice = loaded.invoice("INV1")
        assert invoice is not None
        versions = [(v.version, v.status, v.gross, v.nullified_by) for v in invoice.versions]
        notes = [(n.reference, n.nullifies_version, n.gross) for n in invoice.credit_notes]
        refunds = [(r.amount, r.status) for r in uow.orders.refunds("1000", "ORD1")]
        kinds = [e.kind for e in uow.orders.journal("1000", "ORD1")]

    assert positions == [
        (1, INVOICED, "INV1", 1190, 1000, {"subscription": {"period": "P1M"}}),
        (2, INVOICED, "INV1", 2000, 2500, {}),
        (3, CANCELLED, None, 1070, 1000, {}),
    ]
    assert versions == [(1, NULLIFIED, 7140, "CN-INV1-1"), (2, "issued", 6190, None)]
    assert invoice.current_version == 2
    assert invoice.current.invoice_date == date(2024, 6, 20)
    assert [[line["gross"] for line in v.lines] for v in invoice.versions] == [
        [1190, 5950],
        [1190, 5000],
    ]
    assert invoice.current.lines == [p.document_line() for p in loaded.positions[:2]]
    assert invoice.current.taxes == [
        {"country": "DE", "vat_type": "NORMAL", "rate_bp": 1900, "net": 5202, "vat": 988}
    ]
    assert notes == [("CN-INV1-1", 1, 7140)]
    assert (loaded.version, loaded.paid_total, loaded.refunded_total) == (5, 7140, 950)
    assert loaded.header == order.header
    assert (loaded.customer_number, loaded.currency) == ("TFI2021072801", "EUR")
    assert refunds == [(950, "pending")]
    assert kinds == ["invoice", "payment", "credit-note", "invoice", "refund"]


def test_an_order_s_header_facts_are_read_from_its_header_as_stored(
    session_factory: Factory,
) -> None:
    """Where the order declares its VAT and its date are kept only in its header, as sent; a
    version issued before 2026-12-04 also named the customer number and currency in its
    header snapshot, and restating it unchanged is still no change."""
    header = {"orderDate": "2024-06-01T10:00:00Z", "vatDeclarationCountry": "AT", "note": "x"}
    save(session_factory, OrderAggregateFactory(order_reference="ORD1", header=header))
    apply(session_factory, "1000", "ORD1", invoiced(invoice_reference="INV1"))
    former = {"customerNumber": "TFI2021072801", "currency": "EUR"}
    with session_factory() as session:
        session.execute(
            text("UPDATE invoice_versions SET header = (header::jsonb || :former)::json"),
            {"former": json.dumps(former)},
        )
        session.commit()

    with UnitOfWork(session_factory) as uow:
        order = uow.orders.get("1000", "ORD1", history="INV1")
        assert order is not None
        facts = (order.declaration_country, order.order_date)
        current = order.invoices[0].current
        spec = InvoiceSpecFactory(
            invoice_reference="INV1",
            invoice_date=current.invoice_date,
            due_date=current.due_date,
            item_refs=tuple(current.item_refs),
            fields=dict(current.fields),
        )
        result, _ = order.correct_invoice(
            "INV1", spec, order.restated_header(), restated(order), body_refs(order), None
        )

    assert facts == ("AT", date(2024, 6, 1))
    assert current.header == header
    assert result.changed is False


@pytest.mark.parametrize(
    "text",
    [
        "O'Brien'; DROP TABLE orders; --",
        "back\\slash \\' and $1 %s %(x)s $$ quoted $$",
        "Zürich, Ærø, 東京, emoji 🧾, tab\tnew\nline",
        "E'\\x00' ::json ; COMMIT; ROLLBACK",
    ],
)
def test_text_of_any_shape_is_stored_and_read_back_as_sent(
    session_factory: Factory, text: str
) -> None:
    """Writes on PostgreSQL go as one batch of SQL with the values quoted by psycopg: text in
    a column and inside JSON comes back byte for byte, and nothing in it is run."""
    order = OrderAggregateFactory(
        order_reference="ORD1",
        customer_number=text[:16],
        header={
            "orderDate": "2024-06-01",
            "supplyingCountry": "DE",
            "vatDeclarationCountry": "DE",
            "note": text,
            text: [text, Decimal("1.5")],
        },
    )
    save(session_factory, order)
    apply(
        session_factory,
        "1000",
        "ORD1",
        lambda o: (o.header.update(street=text), invoice_open(o)[1])[1],
    )
    with UnitOfWork(session_factory) as uow:
        loaded = uow.orders.get("1000", "ORD1")
        assert loaded is not None
        assert loaded.customer_number == text[:16]
        assert loaded.header["note"] == text and loaded.header["street"] == text
        assert loaded.header[text] == [text, Decimal("1.5")]
        assert len(loaded.invoices) == 1


def test_a_failed_write_names_its_statements_but_not_the_customers_data(
    session_factory: Factory,
) -> None:
    save(session_factory, OrderAggregateFactory(order_reference="ORD1"))
    again = OrderAggregateFactory(order_reference="ORD1", customer_number="SECRET-CUSTOMER")
    again.header["billToAddress"] = {"lastName": "Mustermann-Secret"}
    with pytest.raises(IntegrityError) as raised:
        save(session_factory, again)
    message = str(raised.value)
    assert "pk_orders" in message and "INSERT INTO orders: 1 rows" in message
    assert "SECRET-CUSTOMER" not in message and "Mustermann-Secret" not in message


def test_a_write_loads_the_history_only_of_the_invoice_it_names(
    session_factory: Factory,
) -> None:
    save(session_factory, OrderAggregateFactory(order_reference="ORD1"))
    apply(session_factory, "1000", "ORD1", invoiced(invoice_reference="INV1", item_refs=(1,)))
    apply(session_factory, "1000", "ORD1", invoiced(invoice_reference="INV2", item_refs=(2,)))
    apply(session_factory, "1000", "ORD1", corrected("INV1", p1=1000))

    def history(**options: object) -> dict[str, tuple[list[int], list[str]]]:
        with UnitOfWork(session_factory) as uow:
            order = uow.orders.lock("1000", "ORD1", **options)  # type: ignore[arg-type]
            assert order is not None
            return {
                i.invoice_reference: (
                    [v.version for v in i.versions],
                    [n.reference for n in i.credit_notes],
                )
                for i in order.invoices
            }

    assert history() == {"INV1": ([2], []), "INV2": ([1], [])}
    assert history(history="INV1") == {"INV1": ([1, 2], ["CN-INV1-1"]), "INV2": ([1], [])}
    assert history(history=True) == {"INV1": ([1, 2], ["CN-INV1-1"]), "INV2": ([1], [])}


def test_orders_of_another_business_are_not_found(session_factory: Factory) -> None:
    save(session_factory, OrderAggregateFactory(order_reference="ORD1"))
    with UnitOfWork(session_factory) as uow:
        assert uow.orders.get("2000", "ORD1") is None
        assert uow.orders.lock("2000", "ORD1") is None
        assert not uow.orders.exists("2000", "ORD1")
        assert uow.orders.exists("1000", "ORD1")


# --- the order lock --------------------------------------------------------------------


class Locker(threading.Thread):
    """Takes an order's lock in its own transaction and notes when it got it."""

    def __init__(self, session_factory: Factory, reference: str):
        super().__init__(daemon=True)
        self.session_factory, self.reference = session_factory, reference
        self.acquired = threading.Event()
        self.acquired_at = 0.0
        self.version_seen = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with UnitOfWork(self.session_factory) as uow:
                order = uow.orders.lock("1000", self.reference)
                assert order is not None
                self.acquired_at = time.monotonic()
                self.version_seen = order.version
                self.acquired.set()
                uow.commit()
        except BaseException as error:
            self.error = error


def test_a_second_lock_on_an_order_waits_until_the_first_commits(
    session_factory: Factory,
) -> None:
    save(session_factory, OrderAggregateFactory(order_reference="ORD1"))
    with UnitOfWork(session_factory) as first:
        order = first.orders.lock("1000", "ORD1")
        assert order is not None
        second = Locker(session_factory, "ORD1")
        second.start()
        assert not second.acquired.wait(0.5), "the second lock did not wait"
        first.orders.store(order, order.cancel("C1", None, [2], JUNE, None))
        assert not second.acquired.wait(0.2), "the lock was released before the COMMIT"
        # The COMMIT goes to the server with the write's statements, and the lock is free
        # as soon as the server has run it: maybe before commit() has returned here.
        committing_at = time.monotonic()
        first.commit()
    assert second.acquired.wait(5), second.error
    second.join(5)
    assert second.error is None
    assert second.acquired_at >= committing_at
    # The waiter reads the order as the first transaction left it, not as it was.
    assert second.version_seen == 2


def test_a_lock_on_another_order_of_the_same_business_does_not_wait(
    session_factory: Factory,
) -> None:
    save(session_factory, OrderAggregateFactory(order_reference="ORD1"))
    save(session_factory, OrderAggregateFactory(order_reference="ORD2"))
    with UnitOfWork(session_factory) as first:
        assert first.orders.lock("1000", "ORD1") is not None
        other = Locker(session_factory, "ORD2")
        other.start()
        assert other.acquired.wait(2), other.error or "the lock on ORD2 waited for ORD1"
        other.join(5)
        assert other.error is None
        first.commit()


def test_an_invoice_reference_taken_at_the_same_moment_on_another_order_is_a_409_code(
    session_factory: Factory,
) -> None:
    """Both writes pass their check before either commits; the key decides, and the loser's
    error (raised by its COMMIT's message, which carries its INSERTs) names what was taken."""
    save(session_factory, OrderAggregateFactory(order_reference="ORD1"))
    save(session_factory, OrderAggregateFactory(order_reference="ORD2"))
    outcome: list[BaseException] = []

    def second() -> None:
        def use_case(uow: UnitOfWork) -> None:
            order = uow.orders.lock("1000", "ORD2")
            assert order is not None
            uow.orders.store(order, invoice_open(order, invoice_reference="INV-X")[1])
            uow.commit()

        try:
            run(session_factory, use_case)
        except BaseException as error:
            outcome.append(error)

    def first(uow: UnitOfWork) -> None:
        order = uow.orders.lock("1000", "ORD1")
        assert order is not None
        uow.orders.store(order, invoice_open(order, invoice_reference="INV-X")[1])
        racer = threading.Thread(target=second, daemon=True)
        racer.start()
        racer.join(5)
        assert not racer.is_alive() and outcome == [], "the second write did not commit"
        uow.commit()

    with pytest.raises(DuplicateReference) as raised:
        run(session_factory, first)
    assert raised.value.code == "invoice-exists"
    with UnitOfWork(session_factory) as uow:
        assert uow.orders.invoice_owner("1000", "INV-X") == "ORD2"
        ord1 = uow.orders.get("1000", "ORD1")
        assert ord1 is not None and ord1.invoices == [], "the loser wrote nothing"


# --- the tax report --------------------------------------------------------------------


def record(session_factory: Factory, order: Order, *events: Event) -> None:
    save(session_factory, order)
    for event in events:
        apply(session_factory, order.business_code, order.order_reference, event)


def test_the_tax_report_sums_booked_net_and_vat_per_country_type_and_rate_in_the_period(
    session_factory: Factory,
) -> None:
    mixed = OrderAggregateFactory(
        items=[
            ItemSpecFactory(item_ref=1),
            ItemSpecFactory(item_ref=2, rate_bp=700, vat_type="REDUCED", unit_gross=1070),
        ]
    )
    record(
        session_factory,
        mixed,
        invoiced(invoice_date=date(2024, 6, 1)),
        paid(when=date(2024, 6, 2)),
        returned("R1", [(1, 1000)], when=date(2024, 6, 20)),
    )
    single = OrderAggregateFactory(items=[ItemSpecFactory(item_ref=1, unit_gross=2380)])
    record(session_factory, single, invoiced(invoice_date=date(2024, 6, 30)))
    austrian = OrderAggregateFactory(
        header={"vatDeclarationCountry": "AT"},
        items=[ItemSpecFactory(item_ref=1, unit_gross=1200, rate_bp=2000)],
    )
    record(session_factory, austrian, invoiced(invoice_date=date(2024, 6, 15)))
    yen = OrderAggregateFactory(currency="JPY", items=[ItemSpecFactory(item_ref=1)])
    record(session_factory, yen, invoiced(invoice_date=date(2024, 6, 15)))
    for outside in (date(2024, 5, 31), date(2024, 7, 1)):
        order = OrderAggregateFactory(items=[ItemSpecFactory(item_ref=1)])
        record(session_factory, order, invoiced(invoice_date=outside))
    late_return = OrderAggregateFactory(items=[ItemSpecFactory(item_ref=1)])
    record(
        session_factory,
        late_return,
        invoiced(invoice_date=date(2024, 6, 10)),
        goodwill("G1", [(1, 119)], when=date(2024, 7, 2)),
    )
    elsewhere = OrderAggregateFactory(business_code="2000", items=[ItemSpecFactory(item_ref=1)])
    record(session_factory, elsewhere, invoiced(invoice_date=date(2024, 6, 15)))

    with UnitOfWork(session_factory) as uow:
        rows = uow.orders.tax_report("1000", date(2024, 6, 1), date(2024, 6, 30))

    def row(
        currency: str, country: str, vat_type: str, rate_bp: int, net: int, vat: int
    ) -> dict[str, object]:
        return {
            "currency": currency,
            "country": country,
            "vat_type": vat_type,
            "rate_bp": rate_bp,
            "net": net,
            "vat": vat,
        }

    assert rows == [
        row("EUR", "AT", "NORMAL", 2000, 1000, 200),
        # invoices 11.90 + 23.80 + 11.90 (late_return's invoice), less the 11.90 returned
        row("EUR", "DE", "NORMAL", 1900, 3000, 570),
        row("EUR", "DE", "REDUCED", 700, 1000, 70),
        row("JPY", "DE", "NORMAL", 1900, 1000, 190),
    ]


def test_the_tax_report_of_an_empty_period_is_empty(session_factory: Factory) -> None:
    record(session_factory, OrderAggregateFactory(), invoiced(invoice_date=date(2024, 6, 1)))
    with UnitOfWork(session_factory) as uow:
        assert uow.orders.tax_report("1000", date(2024, 7, 1), date(2024, 7, 31)) == []


# --- the journal -----------------------------------------------------------------------


def test_an_unbalanced_entry_cannot_be_built_so_it_never_reaches_the_journal() -> None:
    with pytest.raises(ledger.UnbalancedEntry):
        ledger.JournalEntry(
            "1000",
            "ORD1",
            "invoice",
            "INV1",
            JUNE,
            [ledger.JournalLine(ledger.RECEIVABLE, 1190, 0)],
        )


def test_every_entry_written_by_the_use_cases_balances(
    session_factory: Factory, engine: Engine
) -> None:
    order = OrderAggregateFactory(
        order_reference="ORD1",
        items=[
            ItemSpecFactory(item_ref=1, quantity_milli=3000),
            ItemSpecFactory(item_ref=2, unit_gross=1070, rate_bp=700, vat_type="REDUCED"),
            ItemSpecFactory(item_ref=3, unit_gross=999, quantity_milli=1333),
            ItemSpecFactory(item_ref=4, unit_gross=-500, position_type="DISCOUNT"),
        ],
    )
    record(
        session_factory,
        order,
        paid(1000),
        invoiced(invoice_reference="INV1", item_refs=(1, 2)),
        invoiced(invoice_reference="INV2", item_refs=(3, 4)),
        paid(),
        returned("R1", [(1, 1000)]),
        goodwill("G1", [(2, 333)]),
        corrected("INV2", p3=899),
    )
    with engine.connect() as connection:
        sums = connection.execute(
            text(
                "SELECT e.kind, sum(l.debit), sum(l.credit) FROM journal_entries e"
                " JOIN journal_lines l"
                " ON l.business_code = e.business_code AND l.entry_id = e.entry_id"
                " GROUP BY e.business_code, e.entry_id, e.kind"
            )
        ).all()
    assert Counter(kind for kind, _debit, _credit in sums) == {
        "invoice": 3,
        "payment": 2,
        "return": 1,
        "goodwill": 1,
        "credit-note": 1,
        "refund": 3,
    }
    assert [(kind, debit) for kind, debit, credit in sums if debit != credit] == []


def test_the_database_refuses_a_line_with_both_a_debit_and_a_credit(
    session_factory: Factory, engine: Engine
) -> None:
    record(session_factory, OrderAggregateFactory(order_reference="ORD1"))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO journal_entries (business_code, entry_id, order_reference, kind,"
                " document_reference, document_date, created_at)"
                " VALUES ('1000', 'E1', 'ORD1', 'invoice', 'INV1', '2024-06-15', now())"
            )
        )
        connection.execute(
            text(
                "INSERT INTO journal_lines (business_code, entry_id, line_no, account, debit,"
                " credit) VALUES ('1000', 'E1', 1, 'receivable', 100, 100)"
            )
        )
