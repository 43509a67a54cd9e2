"""`accounting verify` names every broken invariant of an order (no database).

Each test builds a sound order through the aggregate's own verbs, plants one defect the way a
lost update or a race would leave it, and expects the violation to be named.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

import pytest

from app.domain import ledger
from app.domain.invariants import (
    Booking,
    OrderFacts,
    bookings,
    journal_violations,
    order_violations,
)
from app.domain.model import (
    CANCELLED,
    ISSUED,
    NULLIFIED,
    Credit,
    CreditNote,
    Effects,
    Invoice,
    InvoiceSpec,
    InvoiceVersion,
    Order,
    Payment,
    Position,
    Refund,
)
from tests.domain_factories import (
    InvoiceSpecFactory,
    ItemSpecFactory,
    OrderAggregateFactory,
    body_refs,
    entries,
    goodwilled,
    restated,
    returned,
)

TODAY = date(2024, 6, 20)


@dataclass
class Books:
    """An order with every document it created, as the database would hold them."""

    order: Order
    effects: list[Effects]

    def facts(self) -> OrderFacts:
        """What the payment, refund, credit and journal tables would say about the order."""
        created = [item for e in self.effects for item in e.created]
        receivable = sum(
            line.debit - line.credit
            for e in self.effects
            for entry in entries(e)
            for line in entry.lines
            if line.account == ledger.RECEIVABLE
        )
        position_credits: dict[int, int] = {}
        for credit in (i for i in created if isinstance(i, Credit)):
            for line in credit.lines:
                ref = line["item_ref"]
                position_credits[ref] = position_credits.get(ref, 0) + line["gross"]
        return OrderFacts(
            payments=sum(i.amount for i in created if isinstance(i, Payment)),
            refunds=sum(i.amount for i in created if isinstance(i, Refund)),
            credits=sum(i.gross for i in created if isinstance(i, Credit)),
            receivable=receivable,
            position_credits=position_credits,
        )

    def position(self, ref: int) -> Position:
        position = self.order.position(ref)
        assert position is not None
        return position

    def invoice(self, reference: str) -> Invoice:
        invoice = self.order.invoice(reference)
        assert invoice is not None
        return invoice


def new_order(**fields: Any) -> Order:
    return cast(Order, OrderAggregateFactory(**fields))


def spec(reference: str, *refs: int) -> InvoiceSpec:
    return cast(InvoiceSpec, InvoiceSpecFactory(invoice_reference=reference, item_refs=refs))


def settled_books() -> Books:
    """Three positions: 1 on INV-A (corrected from 11.90 to 9.90), 2 (2 x 23.80) on INV-B,
    3 cancelled; paid in full before the correction, so the correction refunded 2.00."""
    order = new_order(
        order_reference="ORD1",
        items=[
            ItemSpecFactory(item_ref=1, unit_gross=1190),
            ItemSpecFactory(item_ref=2, unit_gross=2380, quantity_milli=2000),
            ItemSpecFactory(item_ref=3, unit_gross=500),
        ],
    )
    effects = [
        order.create_invoice(spec("INV-A", 1))[1],
        order.create_invoice(spec("INV-B", 2))[1],
        order.cancel("C1", None, [3], TODAY, None),
        order.receive_payment(None, "VISA", None, TODAY)[1],
    ]
    result, corrected = order.correct_invoice(
        "INV-A",
        spec("INV-A", 1),
        order.restated_header(),
        restated(order, p1=990),
        body_refs(order),
        None,
    )
    assert result.changed and corrected.refund is not None
    effects.append(corrected)
    return Books(order, effects)


def returned_and_goodwilled_books() -> Books:
    """The settled order after a return of one unit of position 2 and a goodwill on it."""
    books = settled_books()
    order = books.order
    books.effects.append(order.return_items("R1", None, returned([(2, 1000)]), TODAY, None))
    books.effects.append(order.grant_goodwill("G1", None, goodwilled([(2, 500)]), TODAY, None))
    return books


def violations(books: Books, facts: OrderFacts | None = None) -> list[str]:
    return order_violations(books.order, facts or books.facts())


def named(found: list[str], message: str) -> None:
    """The violation is reported, prefixed by the order it belongs to."""
    assert f"order 1000/ORD1: {message}" in found, found


# --- a sound order ----------------------------------------------------------------------


def test_a_sound_order_has_no_violations() -> None:
    assert violations(settled_books()) == []


def test_an_order_with_returns_goodwills_and_refunds_has_no_violations() -> None:
    books = returned_and_goodwilled_books()
    facts = books.facts()
    assert (facts.refunds, facts.credits) == (200 + 2380 + 500, 2380 + 500)
    assert violations(books) == []


def test_a_fresh_order_has_no_violations() -> None:
    books = Books(new_order(order_reference="ORD1"), [])
    assert violations(books) == []


# --- counters against the documents ------------------------------------------------------


@pytest.mark.parametrize(
    ("counter", "message"),
    [
        ("paid_total", "paid total 6050 != payments 5950"),
        ("refunded_total", "refunded total 100 != refunds 200"),
        ("credited_total", "credited total 100 != returns and goodwills 0"),
    ],
)
def test_a_counter_that_disagrees_with_its_documents_is_named(counter: str, message: str) -> None:
    books = settled_books()
    facts = books.facts()
    assert (facts.payments, facts.refunds, facts.credits) == (5950, 200, 0)
    setattr(books.order, counter, {"paid_total": 6050}.get(counter, 100))
    named(violations(books, facts), message)


def test_refunds_above_payments_are_named() -> None:
    books = settled_books()
    books.order.refunded_total = books.order.paid_total + 100
    facts = dataclasses.replace(books.facts(), refunds=books.order.refunded_total)
    named(violations(books, facts), "refunds 6050 exceed payments 5950")


def test_an_overpayment_left_unrefunded_is_named() -> None:
    books = settled_books()
    books.order.refunded_total = 0  # the refund of the correction was never created
    facts = dataclasses.replace(books.facts(), refunds=0, receivable=-200)
    found = violations(books, facts)
    named(found, "an overpayment of 200 was not refunded")
    assert not [v for v in found if "receivable" in v]


def test_a_receivable_that_disagrees_with_the_documents_is_named() -> None:
    books = settled_books()
    facts = dataclasses.replace(books.facts(), receivable=books.facts().receivable + 1)
    named(violations(books, facts), "receivable 1 != documents' balance 0")


# --- invoices against the order ----------------------------------------------------------


def test_live_invoices_above_the_order_total_are_named() -> None:
    books = settled_books()
    books.invoice("INV-B").current.gross += 1000  # invoiced at a price the order no longer has
    facts = dataclasses.replace(books.facts(), receivable=1000)
    named(violations(books, facts), "live invoices 6750 exceed the order total 5750")


def test_a_position_on_two_live_invoices_is_named() -> None:
    books = settled_books()
    order = books.order
    twice = InvoiceVersion(
        1,
        spec("INV-C", 2),
        {},
        "DE",
        [books.position(2).document_line()],
    )
    order.invoices.append(Invoice("INV-C", twice))
    found = violations(books)
    named(found, "position 2 is on 2 live invoices")
    named(found, "live invoices 10510 exceed the order total 5750")


def test_an_invoiced_position_missing_from_its_invoice_is_named() -> None:
    books = settled_books()
    books.position(2).invoice_reference = "INV-A"
    named(violations(books), "position 2 reads invoiced on INV-A but no live version has it")


def test_an_invoiced_position_whose_invoice_lost_its_line_is_named() -> None:
    books = settled_books()
    books.invoice("INV-B").current.lines = []
    named(violations(books), "position 2 reads invoiced on INV-B but no live version has it")


def test_a_cancelled_position_on_a_live_invoice_is_named() -> None:
    books = settled_books()
    books.position(2).state = CANCELLED  # seed 000: a cancellation raced past an invoice
    found = violations(books)
    named(found, "position 2 is cancelled but on live invoice INV-B")
    named(found, "live invoices 5750 exceed the order total 990")


def test_an_open_position_on_a_live_invoice_is_named() -> None:
    books = settled_books()
    books.position(1).state = "open"  # seed 002: an invoice's position update was lost
    named(violations(books), "position 1 is open but on live invoice INV-A")


def test_a_position_in_no_known_state_is_named() -> None:
    books = settled_books()
    books.position(3).state = "shipped"
    named(violations(books), "position 3 is in no known state (shipped)")


# --- credits against positions -----------------------------------------------------------


def test_a_return_above_the_quantity_is_named() -> None:
    books = returned_and_goodwilled_books()
    books.position(2).returned_milli = 3000
    named(violations(books), "position 2: returned 3000 above invoiced 2000")


def test_a_goodwill_above_the_position_is_named() -> None:
    books = returned_and_goodwilled_books()
    books.position(2).goodwill_amount = 4761
    named(violations(books), "position 2: goodwill 4761 above the position's gross 4760")


def test_credit_documents_above_the_position_are_named() -> None:
    books = returned_and_goodwilled_books()
    facts = books.facts()
    assert facts.position_credits == {2: 2380 + 500}
    credited_twice = dataclasses.replace(facts, position_credits={2: 2380 + 2381})
    named(
        violations(books, credited_twice),
        "position 2: returns and goodwills exceed the position by 1",
    )


def test_a_return_after_a_goodwill_credits_only_what_was_left() -> None:
    books = settled_books()
    order = books.order
    books.effects.append(order.grant_goodwill("G1", None, goodwilled([(2, 4000)]), TODAY, None))
    books.effects.append(order.return_items("R1", None, returned([(2, 2000)]), TODAY, None))
    position = books.position(2)
    assert (position.returned_milli, position.goodwill_amount) == (2000, 4000)
    assert books.facts().position_credits == {2: 4760}
    assert violations(books) == []


def test_a_credit_on_a_position_that_is_not_invoiced_is_named() -> None:
    books = settled_books()
    books.position(3).goodwill_amount = 100
    named(violations(books), "position 3 was credited but is not invoiced")


# --- invoice versions and credit notes ---------------------------------------------------


def test_two_issued_versions_of_one_invoice_are_named() -> None:
    books = settled_books()
    first = books.invoice("INV-A").versions[0]
    first.status = ISSUED  # the nullification of version 1 was lost
    found = violations(books)
    named(found, "invoice INV-A: issued versions [1, 2], current 2")
    named(found, "invoice INV-A: version 1 (issued) has 1 credit notes, expected 0")


def test_a_nullified_version_without_its_credit_note_is_named() -> None:
    books = settled_books()
    books.invoice("INV-A").credit_notes.clear()
    named(violations(books), "invoice INV-A: version 1 (nullified) has 0 credit notes, expected 1")


def test_a_nullified_version_with_two_credit_notes_is_named() -> None:
    books = settled_books()
    invoice = books.invoice("INV-A")
    first = invoice.versions[0]
    assert first.status == NULLIFIED
    invoice.credit_notes.append(CreditNote("CN-again", first, TODAY))
    named(violations(books), "invoice INV-A: version 1 (nullified) has 2 credit notes, expected 1")


def test_an_invoice_whose_current_version_is_nullified_is_named() -> None:
    books = settled_books()
    invoice = books.invoice("INV-B")
    invoice.current.status = NULLIFIED
    found = violations(books)
    named(found, "invoice INV-B: issued versions [], current 1")
    named(found, "invoice INV-B: version 1 (nullified) has 0 credit notes, expected 1")


# --- the journal against the documents ---------------------------------------------------


def journal_and_documents(books: Books) -> tuple[list[ledger.JournalEntry], list[Booking]]:
    """The entries the books hold, and the bookings their documents imply."""
    created = [item for e in books.effects for item in e.created]
    booked = [entry for e in books.effects for entry in entries(e)]
    implied = bookings(
        books.order,
        [i for i in created if isinstance(i, Credit)],
        [i for i in created if isinstance(i, Payment)],
        [i for i in created if isinstance(i, Refund)],
    )
    return booked, implied


def journal_found(books: Books) -> list[str]:
    booked, implied = journal_and_documents(books)
    return journal_violations(books.order, booked, implied)


def entry_of(books: Books, kind: str, reference: str, nth: int = 0) -> ledger.JournalEntry:
    booked, _ = journal_and_documents(books)
    return [e for e in booked if (e.kind, e.document_reference) == (kind, reference)][nth]


def line_of(entry: ledger.JournalEntry, account: str) -> ledger.JournalLine:
    return next(line for line in entry.lines if line.account == account)


def entry_name(entry: ledger.JournalEntry) -> str:
    return f"journal entry 1000/{entry.entry_id} ({entry.kind} {entry.document_reference})"


def test_every_entry_of_sound_books_is_the_one_its_document_implies() -> None:
    for books in (settled_books(), returned_and_goodwilled_books()):
        booked, implied = journal_and_documents(books)
        kinds = Counter(e.kind for e in booked)
        assert kinds == Counter(b.kind for b in implied)
        assert {"invoice", "credit-note", "payment", "refund"} <= set(kinds)
        assert journal_violations(books.order, booked, implied) == []


def test_entries_are_paired_with_their_documents_whatever_their_order() -> None:
    books = returned_and_goodwilled_books()
    booked, implied = journal_and_documents(books)
    assert journal_violations(books.order, booked[::-1], implied[::-1]) == []


def test_vat_moved_to_revenue_in_a_balanced_entry_is_named() -> None:
    books = settled_books()
    entry = entry_of(books, "invoice", "INV-B")
    vat, revenue = line_of(entry, ledger.VAT_PAYABLE), line_of(entry, ledger.REVENUE)
    assert (revenue.credit, vat.credit) == (4000, 760)
    revenue.credit, vat.credit = vat.credit, revenue.credit  # still balanced
    assert sum(ln.debit for ln in entry.lines) == sum(ln.credit for ln in entry.lines)

    found = journal_found(books)

    implies = "invoice INV-B version 1 implies"
    assert found == [
        f"{entry_name(entry)}: line {revenue.line_no} revenue/DE/NORMAL/19: debit 0, "
        f"credit 760; {implies} debit 0, credit 4000",
        f"{entry_name(entry)}: line {vat.line_no} vat-payable/DE/NORMAL/19: debit 0, "
        f"credit 4000; {implies} debit 0, credit 760",
    ]


def test_a_changed_line_of_a_corrected_version_names_that_version() -> None:
    books = settled_books()
    second = entry_of(books, "invoice", "INV-A", nth=1)
    line_of(second, ledger.RECEIVABLE).debit += 1
    line_of(second, ledger.REVENUE).credit += 1

    found = journal_found(books)

    assert len(found) == 2
    assert all(v.startswith(entry_name(second)) for v in found)
    assert all("invoice INV-A version 2 implies" in v for v in found)


def test_a_line_moved_to_another_tax_key_is_named_on_both_keys() -> None:
    books = settled_books()
    entry = entry_of(books, "invoice", "INV-B")
    line_of(entry, ledger.VAT_PAYABLE).rate_bp = 700

    found = journal_found(books)

    assert [v.removeprefix(f"{entry_name(entry)}: ") for v in found] == [
        "line 3 vat-payable/DE/NORMAL/7: debit 0, credit 760; invoice INV-B version 1 "
        "implies no line",
        "no line on vat-payable/DE/NORMAL/19; invoice INV-B version 1 implies debit 0, credit 760",
    ]


def test_a_payment_entry_of_another_amount_is_named() -> None:
    books = settled_books()
    payment = next(i for e in books.effects for i in e.created if isinstance(i, Payment))
    entry = entry_of(books, "payment", payment.payment_id)
    for line in entry.lines:
        line.debit, line.credit = line.debit and 100, line.credit and 100

    found = journal_found(books)

    assert found == [
        f"{entry_name(entry)}: line 1 payment-clearing: debit 100, credit 0; "
        f"payment {payment.payment_id} implies debit 5950, credit 0",
        f"{entry_name(entry)}: line 2 receivable: debit 0, credit 100; "
        f"payment {payment.payment_id} implies debit 0, credit 5950",
    ]


def test_an_entry_no_document_books_is_named() -> None:
    books = settled_books()
    booked, implied = journal_and_documents(books)
    refund = next(b for b in implied if b.kind == "refund")
    entry = next(e for e in booked if e.kind == "refund")

    found = journal_violations(books.order, booked, [b for b in implied if b is not refund])

    assert found == [f"{entry_name(entry)}: no document of the order books it"]


def test_a_document_without_its_entry_is_named() -> None:
    books = settled_books()
    booked, implied = journal_and_documents(books)
    without = [e for e in booked if (e.kind, e.document_reference) != ("credit-note", "CN-INV-A-1")]

    found = journal_violations(books.order, without, implied)

    assert found == ["order 1000/ORD1: credit note CN-INV-A-1 has no journal entry"]


def test_a_return_entry_is_rebuilt_from_the_returns_stored_taxes() -> None:
    books = returned_and_goodwilled_books()
    entry = entry_of(books, "return", "R1")
    assert [ln.account for ln in entry.lines] == ["receivable", "revenue", "vat-payable"]
    line_of(entry, ledger.RECEIVABLE).credit -= 1
    line_of(entry, ledger.VAT_PAYABLE).debit -= 1

    found = journal_found(books)

    assert [v.split(": ", 1)[0] for v in found] == [entry_name(entry)] * 2
    assert (
        "line 1 receivable: debit 0, credit 2379; return R1 implies debit 0, credit 2380"
        in (found[0])
    )
