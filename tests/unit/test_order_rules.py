"""The order aggregate's rules, without a database (SPEC sections 5 and 6)."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from app.domain.errors import DomainError, RuleViolation, StateConflict
from app.domain.model import (
    CANCELLED,
    INVOICED,
    NULLIFIED,
    OPEN,
    CorrectionResult,
    Credit,
    CreditItem,
    Effects,
    Invoice,
    Order,
    Position,
    order_amount_errors,
    position_amount_errors,
)
from app.domain.money import MAX_ORDER_GROSS
from tests.domain_factories import (
    InvoiceSpecFactory,
    ItemSpecFactory,
    OrderAggregateFactory,
    body_refs,
    entries,
    goodwilled,
    invoice_open,
    restated,
    returned,
)

TODAY = date(2024, 6, 20)


def booked(effects: Effects) -> Effects:
    """Assert that every journal entry the event created balances; return the effects."""
    for entry in entries(effects):
        assert sum(line.debit for line in entry.lines) == sum(
            line.credit for line in entry.lines
        ), entry.kind
    return effects


def refused(error: pytest.ExceptionInfo[DomainError], code: str, *fields: str) -> None:
    """The error names this code and exactly these fields."""
    assert error.value.code == code
    assert [e.field for e in error.value.errors] == list(fields)
    assert all(e.code == code for e in error.value.errors)


def position(order: Order, ref: int) -> Position:
    found = order.position(ref)
    assert found is not None
    return found


def invoice_of(order: Order, reference: str) -> Invoice:
    found = order.invoice(reference)
    assert found is not None
    return found


def three_of_one() -> Order:
    """One position: 3 x 11.90 = 35.70."""
    return OrderAggregateFactory(items=[ItemSpecFactory(item_ref=1, quantity_milli=3000)])


def paid(order: Order, amount: int | None = None) -> Order:
    booked(order.receive_payment(amount, "VISA", None, TODAY)[1])
    return order


def ret(order: Order, items: list[tuple[int, int]], reference: str = "R1") -> Effects:
    return booked(order.return_items(reference, None, returned(items), TODAY, None))


def ret_items(
    order: Order, items: list[CreditItem], invoice_reference: str | None = None
) -> Effects:
    return booked(order.return_items("R1", None, items, TODAY, None, invoice_reference))


def goodwill(order: Order, items: list[tuple[int, int]], reference: str = "G1") -> Effects:
    return booked(order.grant_goodwill(reference, None, goodwilled(items), TODAY, None))


def cancel(order: Order, refs: list[int]) -> Effects:
    return booked(order.cancel("C1", None, refs, TODAY, None))


# --- invoice ---------------------------------------------------------------------------


def test_an_invoice_takes_open_positions_and_books_the_sale() -> None:
    order = OrderAggregateFactory()
    invoice, effects = order.create_invoice(InvoiceSpecFactory(item_refs=(1, 2)))
    (entry,) = entries(booked(effects))
    assert [p.state for p in order.positions] == [INVOICED, INVOICED]
    assert {p.invoice_reference for p in order.positions} == {invoice.invoice_reference}
    assert (invoice.current.gross, invoice.current.net, invoice.current.vat) == (3570, 3000, 570)
    assert entry.kind == "invoice"
    assert (entry.lines[0].account, entry.lines[0].debit) == ("receivable", 3570)
    assert order.version == 2


def test_an_order_may_be_invoiced_in_several_partial_shipments() -> None:
    order = OrderAggregateFactory()
    booked(order.create_invoice(InvoiceSpecFactory(item_refs=(1,)))[1])
    booked(order.create_invoice(InvoiceSpecFactory(item_refs=(2,)))[1])
    assert len(order.invoices) == 2
    assert order.invoiced_total == 3570


def test_a_position_is_never_invoiced_twice() -> None:
    order = OrderAggregateFactory()
    order.create_invoice(InvoiceSpecFactory(item_refs=(1,)))
    with pytest.raises(StateConflict) as error:
        order.create_invoice(InvoiceSpecFactory(item_refs=(2, 1)))
    refused(error, "position-not-open", "items")
    assert position(order, 2).state == OPEN
    assert len(order.invoices) == 1


def test_a_cancelled_position_can_never_be_invoiced() -> None:
    order = OrderAggregateFactory()
    cancel(order, [2])
    with pytest.raises(StateConflict) as error:
        order.create_invoice(InvoiceSpecFactory(item_refs=(2,)))
    refused(error, "position-not-open", "items")


def test_an_unknown_position_is_named_by_its_index() -> None:
    order = OrderAggregateFactory()
    with pytest.raises(RuleViolation) as error:
        order.create_invoice(InvoiceSpecFactory(item_refs=(1, 9)))
    refused(error, "unknown-position", "items[1].item_ref")
    assert position(order, 1).state == OPEN


def test_an_invoice_reference_is_used_once_per_order() -> None:
    order = OrderAggregateFactory()
    order.create_invoice(InvoiceSpecFactory(invoice_reference="INV1", item_refs=(1,)))
    with pytest.raises(StateConflict) as error:
        order.create_invoice(InvoiceSpecFactory(invoice_reference="INV1", item_refs=(2,)))
    assert error.value.code == "invoice-exists"


# --- cancellation ----------------------------------------------------------------------


def test_cancelling_open_positions_books_nothing_when_nothing_was_paid() -> None:
    order = OrderAggregateFactory()
    effects = cancel(order, [2])
    assert position(order, 2).state == CANCELLED
    assert entries(effects) == []
    assert effects.refund is None
    assert order.gross_total == 1190


def test_only_open_positions_can_be_cancelled() -> None:
    order = OrderAggregateFactory()
    order.create_invoice(InvoiceSpecFactory(item_refs=(1,)))
    with pytest.raises(StateConflict) as error:
        order.cancel("C1", None, [1], TODAY, None)
    refused(error, "position-not-open", "items")
    assert position(order, 1).state == INVOICED


def test_a_cancelled_position_cannot_be_cancelled_again() -> None:
    order = OrderAggregateFactory()
    cancel(order, [1])
    with pytest.raises(StateConflict) as error:
        order.cancel("C2", None, [1], TODAY, None)
    refused(error, "position-not-open", "items")


# --- return ----------------------------------------------------------------------------


def test_a_partial_return_credits_the_returned_share() -> None:
    order = three_of_one()
    invoice_open(order)
    effects = ret(order, [(1, 1000)])
    (entry,) = entries(effects)
    assert entry.kind == "return"
    assert order.credited_total == 1190
    assert position(order, 1).returned_milli == 1000
    assert position(order, 1).remaining == 2380


def test_a_return_may_not_exceed_the_invoiced_quantity() -> None:
    order = three_of_one()
    invoice_open(order)
    with pytest.raises(StateConflict) as error:
        order.return_items("R1", None, returned([(1, 4000)]), TODAY, None)
    refused(error, "return-exceeds-invoiced", "items[0].quantity_milli")
    assert order.credited_total == 0


def test_several_returns_together_may_not_exceed_the_invoiced_quantity() -> None:
    order = three_of_one()
    invoice_open(order)
    ret(order, [(1, 2000)], "R1")
    with pytest.raises(StateConflict) as error:
        order.return_items("R2", None, returned([(1, 2000)]), TODAY, None)
    refused(error, "return-exceeds-invoiced", "items[0].quantity_milli")
    ret(order, [(1, 1000)], "R2")
    assert position(order, 1).returned_milli == 3000
    assert order.credited_total == 3570


def test_a_return_names_the_position_as_invoiced_and_credits_its_booked_figures() -> None:
    order = three_of_one()
    invoice_open(order)
    sent = CreditItem(1, 1000, unit_gross=1190, unit_vat=190, rate_bp=1900, vat_type="NORMAL")
    effects = ret_items(order, [sent])
    (credit,) = [c for c in effects.created if isinstance(c, Credit)]
    assert (credit.gross, credit.net, credit.vat) == (1190, 1000, 190)


@pytest.mark.parametrize(
    ("sent", "field", "code"),
    [
        (CreditItem(1, 1000, unit_gross=1000), "items[0].unit_gross", "price-mismatch"),
        (CreditItem(1, 1000, rate_bp=700), "items[0].rate_bp", "vat-percent-mismatch"),
        (CreditItem(1, 1000, vat_type="REDUCED"), "items[0].vat_type", "vat-type-mismatch"),
        (CreditItem(1, 1000, unit_vat=193), "items[0].unit_vat", "vat-amount-mismatch"),
    ],
)
def test_a_return_whose_figures_disagree_with_the_position_is_refused(
    sent: CreditItem, field: str, code: str
) -> None:
    order = three_of_one()
    invoice_open(order)
    with pytest.raises(RuleViolation) as error:
        order.return_items("R1", None, [sent], TODAY, None)
    refused(error, code, field)
    assert (order.credited_total, position(order, 1).returned_milli) == (0, 0)


def test_a_unit_vat_one_cent_off_is_within_the_tolerance() -> None:
    order = three_of_one()
    invoice_open(order)
    ret_items(order, [CreditItem(1, 1000, unit_vat=191)])
    assert order.credited_total == 1190


def test_a_credit_naming_an_invoice_checks_the_invoice_and_its_positions() -> None:
    order = OrderAggregateFactory()
    invoice_open(order, invoice_reference="INV-A", item_refs=(1,))
    invoice_open(order, invoice_reference="INV-B", item_refs=(2,))
    with pytest.raises(RuleViolation) as unknown:
        order.return_items("R1", None, returned([(1, 1000)]), TODAY, None, "INV-C")
    with pytest.raises(RuleViolation) as elsewhere:
        order.grant_goodwill("G1", None, goodwilled([(1, 100), (2, 100)]), TODAY, None, "INV-B")
    refused(unknown, "unknown-invoice", "invoice_reference")
    refused(elsewhere, "not-on-invoice", "items[0].item_ref")
    ret_items(order, returned([(1, 1000)]), invoice_reference="INV-A")
    assert order.credited_total == 1190


def test_a_goodwill_credits_quantity_times_unit_price_at_the_position_s_rate() -> None:
    order = three_of_one()
    invoice_open(order)
    sent = [CreditItem(1, 2500, unit_gross=400, unit_vat=64, rate_bp=1900, vat_type="NORMAL")]
    effects = booked(order.grant_goodwill("G1", None, sent, TODAY, None, credit_date=TODAY))
    (credit,) = [c for c in effects.created if isinstance(c, Credit)]
    assert (credit.gross, credit.net, credit.vat, credit.credit_date) == (1000, 840, 160, TODAY)
    assert position(order, 1).goodwill_amount == 1000


def test_a_goodwill_at_another_rate_than_the_position_is_refused() -> None:
    order = three_of_one()
    invoice_open(order)
    with pytest.raises(RuleViolation) as error:
        order.grant_goodwill("G1", None, [CreditItem(1, 1000, 500, rate_bp=700)], TODAY, None)
    refused(error, "vat-percent-mismatch", "items[0].rate_bp")


def test_only_invoiced_positions_can_be_returned() -> None:
    order = OrderAggregateFactory()
    with pytest.raises(StateConflict) as error:
        order.return_items("R1", None, returned([(1, 1000)]), TODAY, None)
    refused(error, "position-not-invoiced", "items")


# --- goodwill --------------------------------------------------------------------------


def test_a_goodwill_books_the_reverse_of_its_net_and_vat() -> None:
    order = OrderAggregateFactory()
    invoice_open(order)
    (entry,) = entries(goodwill(order, [(1, 1190)]))
    amounts = {line.account: (line.debit, line.credit) for line in entry.lines}
    assert amounts == {"receivable": (0, 1190), "revenue": (1000, 0), "vat-payable": (190, 0)}


def test_a_goodwill_may_not_exceed_what_is_left_of_the_position() -> None:
    order = three_of_one()
    invoice_open(order)
    with pytest.raises(StateConflict) as error:
        order.grant_goodwill("G1", None, goodwilled([(1, 3571)]), TODAY, None)
    refused(error, "goodwill-exceeds-remaining", "items[0].unit_gross")
    goodwill(order, [(1, 3570)])
    assert position(order, 1).remaining == 0


def test_a_goodwill_after_a_partial_return_is_limited_to_the_rest() -> None:
    order = three_of_one()
    invoice_open(order)
    ret(order, [(1, 1000)])
    with pytest.raises(StateConflict) as error:
        order.grant_goodwill("G1", None, goodwilled([(1, 2381)]), TODAY, None)
    refused(error, "goodwill-exceeds-remaining", "items[0].unit_gross")
    goodwill(order, [(1, 2380)])
    assert order.credited_total == 3570


def test_goodwills_together_may_not_exceed_the_position() -> None:
    order = three_of_one()
    invoice_open(order)
    goodwill(order, [(1, 1000)], "G1")
    with pytest.raises(StateConflict) as error:
        order.grant_goodwill("G2", None, goodwilled([(1, 2571)]), TODAY, None)
    refused(error, "goodwill-exceeds-remaining", "items[0].unit_gross")


def test_a_return_after_a_goodwill_never_credits_more_than_is_left() -> None:
    order = three_of_one()
    invoice_open(order)
    goodwill(order, [(1, 3000)])
    first = ret(order, [(1, 1000)], "R1")
    later = ret(order, [(1, 2000)], "R2")
    assert [c.gross for c in first.created if isinstance(c, Credit)] == [570]
    assert [c.gross for c in later.created if isinstance(c, Credit)] == [0]
    assert order.credited_total == 3570
    with pytest.raises(StateConflict) as error:
        order.grant_goodwill("G2", None, goodwilled([(1, 1)]), TODAY, None)
    refused(error, "goodwill-exceeds-remaining", "items[0].unit_gross")


def test_a_partial_return_of_a_discount_line_credits_only_its_share() -> None:
    order = OrderAggregateFactory(
        items=[
            ItemSpecFactory(item_ref=1, quantity_milli=2000, unit_gross=2380),
            ItemSpecFactory(
                item_ref=2, quantity_milli=2000, unit_gross=-595, position_type="DISCOUNT"
            ),
        ]
    )
    invoice_open(order)
    effects = ret(order, [(1, 1000), (2, 1000)])
    (credit,) = [c for c in effects.created if isinstance(c, Credit)]
    assert [line["gross"] for line in credit.lines] == [2380, -595]
    assert order.credited_total == 1785
    assert order.balance == 1785


def credits(effects: Effects) -> list[Credit]:
    return [c for c in effects.created if isinstance(c, Credit)]


def three_at_333() -> Order:
    """One position: 3 x 3.33 = 9.99 at 19 %, invoiced with 1.60 VAT (a third holds 0.53)."""
    order = OrderAggregateFactory(
        items=[ItemSpecFactory(item_ref=1, quantity_milli=3000, unit_gross=333)]
    )
    invoice_open(order)
    return order


def test_the_return_that_completes_a_position_credits_exactly_the_vat_left() -> None:
    order = three_at_333()
    (invoiced,) = order.invoices[0].current.tax_amounts()
    returns = [credits(ret(order, [(1, 1000)], f"R{n}"))[0] for n in (1, 2, 3)]
    assert [(c.gross, c.vat) for c in returns] == [(333, 53), (333, 53), (333, 54)]
    assert (sum(c.gross for c in returns), sum(c.vat for c in returns)) == (999, invoiced.vat)
    assert sum(c.net for c in returns) == invoiced.net
    assert invoiced.vat == 160


def test_a_position_credited_by_a_goodwill_and_returns_takes_back_exactly_its_vat() -> None:
    order = three_at_333()
    first = credits(goodwill(order, [(1, 333)]))[0]
    rest = credits(ret(order, [(1, 1000)], "R1"))[0]
    last = credits(ret(order, [(1, 2000)], "R2"))[0]
    assert [(c.gross, c.vat) for c in (first, rest, last)] == [(333, 53), (333, 53), (333, 54)]
    assert order.credited_total == 999


def test_positions_of_one_rate_credited_in_full_take_back_their_invoice_s_vat() -> None:
    order = OrderAggregateFactory(
        items=[
            ItemSpecFactory(item_ref=1, unit_gross=333),
            ItemSpecFactory(item_ref=2, unit_gross=333, quantity_milli=2000),
        ]
    )
    invoice_open(order)
    first = credits(ret(order, [(1, 1000)], "R1"))[0]
    second = credits(ret(order, [(2, 2000)], "R2"))[0]
    assert (first.vat, second.vat) == (53, 107)
    assert first.vat + second.vat == order.invoices[0].current.vat


def test_a_credit_is_booked_in_the_country_of_each_position_s_invoice() -> None:
    order = OrderAggregateFactory()
    invoice_open(order, invoice_reference="INV-DE", item_refs=(1,))
    order.declaration_country = "AT"
    invoice_open(order, invoice_reference="INV-AT", item_refs=(2,))
    (credit,) = credits(ret(order, [(2, 1000), (1, 1000)]))
    assert [(t.key.country, t.gross) for t in credit.tax_amounts()] == [
        ("AT", 2380),
        ("DE", 1190),
    ]


def test_only_invoiced_positions_receive_a_goodwill() -> None:
    order = OrderAggregateFactory()
    with pytest.raises(StateConflict) as error:
        order.grant_goodwill("G1", None, goodwilled([(2, 100)]), TODAY, None)
    refused(error, "position-not-invoiced", "items")


# --- payment ---------------------------------------------------------------------------


def test_a_payment_without_an_amount_pays_the_balance() -> None:
    order = OrderAggregateFactory()
    invoice_open(order)
    payment, effects = order.receive_payment(None, "VISA", "P1", TODAY)
    (entry,) = entries(booked(effects))
    assert payment.amount == 3570
    assert order.balance == 0
    assert {line.account: line.debit for line in entry.lines} == {
        "payment-clearing": 3570,
        "receivable": 0,
    }


def test_a_payment_may_not_exceed_the_balance() -> None:
    order = OrderAggregateFactory()
    invoice_open(order)
    paid(order, 3000)
    with pytest.raises(StateConflict) as error:
        order.receive_payment(571, "VISA", None, TODAY)
    refused(error, "payment-exceeds-balance", "amount")
    assert order.paid_total == 3000
    paid(order, 570)
    assert order.balance == 0


def test_a_settled_order_has_nothing_to_pay() -> None:
    order = paid(OrderAggregateFactory())
    with pytest.raises(StateConflict) as error:
        order.receive_payment(None, "VISA", None, TODAY)
    assert error.value.code == "nothing-to-pay"


# --- refund ----------------------------------------------------------------------------


def test_a_payment_before_invoicing_refunds_nothing() -> None:
    order = paid(OrderAggregateFactory())
    _spec, effects = invoice_open(order)
    assert booked(effects).refund is None
    assert order.balance == 0


def test_no_refund_while_the_order_is_worth_at_least_what_was_paid() -> None:
    order = OrderAggregateFactory()
    invoice_open(order)
    paid(order, 1000)
    effects = ret(order, [(1, 1000)])
    assert effects.refund is None
    assert order.refunded_total == 0


def test_a_return_of_a_paid_order_refunds_the_returned_gross() -> None:
    order = OrderAggregateFactory()
    invoice_open(order)
    paid(order)
    effects = ret(order, [(1, 1000)])
    assert effects.refund is not None
    assert effects.refund.amount == 1190
    assert [e.kind for e in entries(effects)] == ["return", "refund"]
    assert order.balance == 0


def test_a_refund_is_what_was_paid_beyond_what_the_order_is_now_worth() -> None:
    order = OrderAggregateFactory()
    invoice_open(order)
    paid(order, 3000)
    effects = ret(order, [(2, 1000)])
    assert effects.refund is not None
    assert effects.refund.amount == 3000 - 1190


def test_a_refund_is_never_more_than_was_paid() -> None:
    order = OrderAggregateFactory()
    invoice_open(order)
    paid(order, 1000)
    effects = goodwill(order, [(1, 1190), (2, 2380)])
    assert effects.refund is not None
    assert effects.refund.amount == 1000
    assert order.refunded_total == order.paid_total == 1000


def test_each_overpayment_is_refunded_exactly_once() -> None:
    order = OrderAggregateFactory()
    invoice_open(order)
    paid(order)
    first = ret(order, [(1, 1000)], "R1")
    second = ret(order, [(2, 1000)], "R2")
    assert first.refund is not None
    assert second.refund is not None
    assert (first.refund.amount, second.refund.amount) == (1190, 2380)
    assert order.refunded_total == order.paid_total == 3570


def test_nothing_more_is_refunded_once_everything_paid_was_refunded() -> None:
    order = OrderAggregateFactory()
    invoice_open(order)
    paid(order, 1000)
    assert ret(order, [(2, 1000)], "R1").refund is None
    refund = ret(order, [(1, 1000)], "R2").refund
    assert refund is not None
    assert refund.amount == 1000
    assert order.refunded_total == 1000


def test_cancelling_a_prepaid_position_refunds_its_gross() -> None:
    order = paid(OrderAggregateFactory())
    effects = cancel(order, [2])
    assert effects.refund is not None
    assert effects.refund.amount == 2380
    assert [e.kind for e in entries(effects)] == ["refund"]


# --- invoice correction ----------------------------------------------------------------


def settled() -> tuple[Order, str]:
    """An order whose two positions are on one invoice; returns it and the invoice reference."""
    order = OrderAggregateFactory()
    spec, _effects = invoice_open(order)
    return order, spec.invoice_reference


def correct(
    order: Order, invoice_reference: str, **price_changes: int
) -> tuple[CorrectionResult, Effects]:
    spec = InvoiceSpecFactory(invoice_reference=invoice_reference, item_refs=(1, 2))
    return order.correct_invoice(
        invoice_reference,
        spec,
        order.restated_header(),
        restated(order, **price_changes),
        body_refs(order),
        None,
    )


def test_a_lower_price_nullifies_the_invoice_and_issues_the_next_version() -> None:
    order, ref = settled()
    result, effects = correct(order, ref, p2=2000)
    booked(effects)
    invoice = invoice_of(order, ref)
    assert result.changed
    assert (result.before.version, result.before.gross) == (1, 3570)
    assert (result.after.version, result.after.gross) == (2, 3190)
    assert [v.status for v in invoice.versions] == [NULLIFIED, "issued"]
    assert result.credit_note is not None
    assert result.credit_note.gross == 3570
    assert [e.kind for e in entries(effects)] == ["credit-note", "invoice"]
    assert order.gross_total == 3190


def test_a_correction_of_a_paid_order_refunds_the_difference() -> None:
    order, ref = settled()
    paid(order)
    result, effects = correct(order, ref, p2=2000)
    booked(effects)
    assert result.refund is not None
    assert result.refund.amount == 380
    assert order.balance == 0


def test_repeating_the_invoice_as_it_reads_changes_nothing() -> None:
    order = OrderAggregateFactory()
    spec, _effects = invoice_open(order)
    version = order.version
    result, effects = order.correct_invoice(
        spec.invoice_reference,
        spec,
        order.restated_header(),
        restated(order),
        body_refs(order),
        None,
    )
    assert result.changed is False
    assert result.before is result.after
    assert effects.created == []
    assert order.version == version
    assert len(invoice_of(order, spec.invoice_reference).versions) == 1


def test_a_correction_needs_every_position_settled() -> None:
    order = OrderAggregateFactory()
    spec, _effects = invoice_open(order, item_refs=(1,))
    with pytest.raises(StateConflict) as error:
        order.correct_invoice(
            spec.invoice_reference,
            spec,
            order.restated_header(),
            restated(order),
            body_refs(order),
            None,
        )
    refused(error, "order-not-settled", "order.items")


def test_returned_positions_cannot_be_corrected() -> None:
    order, ref = settled()
    ret(order, [(1, 1000)])
    with pytest.raises(StateConflict) as error:
        correct(order, ref, p2=2000)
    refused(error, "position-returned", "invoice.items")


def test_goodwilled_positions_cannot_be_corrected() -> None:
    order, ref = settled()
    goodwill(order, [(2, 100)])
    with pytest.raises(StateConflict) as error:
        correct(order, ref, p1=1000)
    refused(error, "position-goodwilled", "invoice.items")


def test_gross_price_may_not_increase() -> None:
    order, ref = settled()
    with pytest.raises(RuleViolation) as error:
        correct(order, ref, p1=1191)
    refused(error, "gross-price-increase", "order.items[0].unit_gross")
    assert order.version == 2
    assert len(invoice_of(order, ref).versions) == 1


def test_quantity_may_not_change() -> None:
    order, ref = settled()
    items = restated(order)
    items[1] = dataclasses.replace(items[1], quantity_milli=500)
    spec = InvoiceSpecFactory(invoice_reference=ref, item_refs=(1, 2))
    with pytest.raises(RuleViolation) as error:
        order.correct_invoice(ref, spec, order.restated_header(), items, body_refs(order), None)
    refused(error, "quantity-change-forbidden", "order.items[1].quantity_milli")


def test_the_customer_may_not_change() -> None:
    order, ref = settled()
    spec = InvoiceSpecFactory(invoice_reference=ref, item_refs=(1, 2))
    refs = dataclasses.replace(body_refs(order), customer_number="SOMEONE-ELSE")
    with pytest.raises(RuleViolation) as error:
        order.correct_invoice(ref, spec, order.restated_header(), restated(order), refs, None)
    refused(error, "customer-change-forbidden", "order.customer_number")


def test_the_currency_may_not_change() -> None:
    order, ref = settled()
    spec = InvoiceSpecFactory(invoice_reference=ref, item_refs=(1, 2))
    refs = dataclasses.replace(body_refs(order), currency="USD")
    with pytest.raises(RuleViolation) as error:
        order.correct_invoice(ref, spec, order.restated_header(), restated(order), refs, None)
    refused(error, "currency-change-forbidden", "order.currency")


def test_the_invoice_keeps_its_positions() -> None:
    order, ref = settled()
    spec = InvoiceSpecFactory(invoice_reference=ref, item_refs=(1,))
    with pytest.raises(RuleViolation) as error:
        order.correct_invoice(
            ref, spec, order.restated_header(), restated(order), body_refs(order), None
        )
    refused(error, "invoice-positions-changed", "invoice.items")


def test_the_order_keeps_its_positions() -> None:
    order, ref = settled()
    spec = InvoiceSpecFactory(invoice_reference=ref, item_refs=(1, 2))
    with pytest.raises(RuleViolation) as error:
        order.correct_invoice(
            ref, spec, order.restated_header(), restated(order)[:1], body_refs(order), None
        )
    refused(error, "order-positions-changed", "order.items")


def test_positions_on_another_invoice_must_be_restated_unchanged() -> None:
    order = OrderAggregateFactory()
    first, _effects = invoice_open(order, item_refs=(1,))
    invoice_open(order, item_refs=(2,))
    with pytest.raises(RuleViolation) as error:
        order.correct_invoice(
            first.invoice_reference,
            first,
            order.restated_header(),
            restated(order, p2=2000),
            body_refs(order),
            None,
        )
    refused(error, "position-change-forbidden", "order.items[1]")


def test_a_credit_note_reference_is_used_once() -> None:
    order, ref = settled()
    spec = InvoiceSpecFactory(invoice_reference=ref, item_refs=(1, 2))
    header, refs = order.restated_header(), body_refs(order)
    booked(order.correct_invoice(ref, spec, header, restated(order, p2=2000), refs, "CN1")[1])
    with pytest.raises(StateConflict) as error:
        order.correct_invoice(ref, spec, header, restated(order, p2=1500), refs, "CN1")
    refused(error, "reference-taken", "credit_note_reference")


# --- an order is never worth less than zero ----------------------------------------------


def with_discount(discount: int = -500, *more: ItemSpecFactory) -> Order:
    """An article at 11.90 (position 1) and a discount (position 2)."""
    return OrderAggregateFactory(
        items=[
            ItemSpecFactory(item_ref=1),
            ItemSpecFactory(item_ref=2, unit_gross=discount, position_type="DISCOUNT"),
            *more,
        ]
    )


def test_an_order_worth_less_than_zero_is_refused() -> None:
    with pytest.raises(RuleViolation) as error:
        with_discount(-1191)
    refused(error, "negative-total", "items")


def test_an_order_of_only_a_discount_is_refused() -> None:
    items = [ItemSpecFactory(item_ref=1, unit_gross=-500, position_type="DISCOUNT")]
    with pytest.raises(RuleViolation) as error:
        OrderAggregateFactory(items=items)
    refused(error, "negative-total", "items")


def test_a_discount_may_take_an_order_down_to_nothing() -> None:
    assert with_discount(-1190).gross_total == 0


def test_cancelling_what_the_discount_was_given_on_is_refused() -> None:
    order = with_discount()
    version = order.version
    with pytest.raises(RuleViolation) as error:
        order.cancel("C1", None, [1], TODAY, None)
    refused(error, "negative-total", "items")
    assert [p.state for p in order.positions] == [OPEN, OPEN]
    assert order.version == version
    cancel(order, [1, 2])
    assert order.gross_total == 0


def test_an_invoice_of_only_the_discount_is_refused() -> None:
    order = with_discount()
    with pytest.raises(RuleViolation) as error:
        order.create_invoice(InvoiceSpecFactory(item_refs=(2,)))
    refused(error, "negative-total", "items")
    assert (position(order, 2).state, order.invoices) == (OPEN, [])


def test_a_correction_may_not_make_the_invoice_worth_less_than_zero() -> None:
    order = with_discount()
    spec, _effects = invoice_open(order)
    with pytest.raises(RuleViolation) as error:
        order.correct_invoice(
            spec.invoice_reference,
            spec,
            order.restated_header(),
            restated(order, p1=400),
            body_refs(order),
            None,
        )
    refused(error, "negative-total", "order.items", "invoice.items")
    assert (order.invoices[0].current_version, position(order, 1).unit_gross) == (1, 1190)


@pytest.mark.parametrize("position_type", ["SALES_ARTICLE", "SHIPPING_COSTS", "CREDIT_NOTE"])
def test_a_price_below_zero_is_only_for_discounts(position_type: str) -> None:
    spec = ItemSpecFactory(unit_gross=-100, position_type=position_type)
    (error,) = position_amount_errors(spec, "EUR", "items[3]")
    assert (error.field, error.code) == ("items[3].unit_gross", "negative-price")


@pytest.mark.parametrize("position_type", ["DISCOUNT", "DISCOUNT_FOR_SUBSCRIPTION_ORDER"])
def test_discounts_carry_a_price_below_zero(position_type: str) -> None:
    spec = ItemSpecFactory(unit_gross=-100, position_type=position_type)
    assert position_amount_errors(spec, "EUR", "items[0]") == []


# --- amounts stay far inside the database's integers --------------------------------------


def test_a_line_may_be_worth_up_to_the_limit_and_not_a_cent_more() -> None:
    at_limit = ItemSpecFactory(unit_gross=MAX_ORDER_GROSS // 4, quantity_milli=4000)
    beyond = ItemSpecFactory(unit_gross=MAX_ORDER_GROSS // 4 + 1, quantity_milli=4000)
    assert position_amount_errors(at_limit, "EUR", "items[0]") == []
    (error,) = position_amount_errors(beyond, "EUR", "items[0]")
    assert (error.field, error.code) == ("items[0].unit_gross", "amount-too-large")
    assert "100000000000.00 EUR" in error.message


def test_the_positions_together_count_discounts_without_their_sign() -> None:
    half = MAX_ORDER_GROSS // 2
    items = [
        ItemSpecFactory(item_ref=1, unit_gross=half),
        ItemSpecFactory(item_ref=2, unit_gross=half),
        ItemSpecFactory(item_ref=3, unit_gross=-1, position_type="DISCOUNT"),
    ]
    (error,) = order_amount_errors(items, "EUR", "order.items")
    assert (error.field, error.code) == ("order.items", "amount-too-large")
    assert order_amount_errors(items[:2], "EUR", "order.items") == []


# --- dates -------------------------------------------------------------------------------


def test_an_invoice_is_dated_on_or_after_its_order_and_due_on_or_after_its_date() -> None:
    order = OrderAggregateFactory(header={"orderDate": "2024-06-01", "vatDeclarationCountry": "DE"})
    spec = InvoiceSpecFactory(invoice_date=date(2024, 5, 31), due_date=date(2024, 5, 30))
    with pytest.raises(RuleViolation) as error:
        order.create_invoice(spec)
    assert [(e.field, e.code) for e in error.value.errors] == [
        ("invoice_date", "invoice-date-before-order-date"),
        ("due_date", "due-date-before-invoice-date"),
    ]
    assert ([p.state for p in order.positions], order.invoices) == ([OPEN, OPEN], [])
    invoice_open(order, invoice_date=date(2024, 6, 1), due_date=date(2024, 6, 1))


def test_a_correction_dates_the_invoice_on_or_after_the_order_as_restated() -> None:
    order = OrderAggregateFactory()
    spec, _effects = invoice_open(order)
    header = dataclasses.replace(order.restated_header(), order_date=date(2024, 6, 11))
    with pytest.raises(RuleViolation) as error:
        order.correct_invoice(
            spec.invoice_reference, spec, header, restated(order), body_refs(order), None
        )
    refused(error, "invoice-date-before-order-date", "invoice.invoice_date")
    assert order.invoices[0].current_version == 1
