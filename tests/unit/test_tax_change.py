"""A VAT-rate change restating one invoice for `Order.correct_invoice`, without a database."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from app.domain.errors import DomainError
from app.domain.model import NULLIFIED, Invoice, Order
from app.domain.tax_change import KEEP_GROSS, KEEP_NET, TaxChange, restate
from tests.domain_factories import InvoiceSpecFactory, ItemSpecFactory, OrderAggregateFactory

# Germany's temporary cut: 19 % -> 16 % for invoices dated July to December 2020.
CUT = TaxChange(
    country="DE",
    vat_type="NORMAL",
    from_rate_bp=1900,
    to_rate_bp=1600,
    mode=KEEP_GROSS,
    start=date(2020, 7, 1),
    end=date(2020, 12, 31),
)
IN_PERIOD = date(2020, 8, 10)


def invoiced(order: Order, when: date = IN_PERIOD) -> Invoice:
    refs = tuple(p.item_ref for p in order.positions)
    invoice, _effects = order.create_invoice(
        InvoiceSpecFactory(item_refs=refs, invoice_date=when, due_date=None)
    )
    return invoice


def corrected(order: Order, invoice: Invoice, change: TaxChange) -> Invoice:
    r = restate(order, invoice, change)
    order.correct_invoice(invoice.invoice_reference, r.spec, r.header, r.items, r.body_refs, None)
    return invoice


def codes(error: pytest.ExceptionInfo[DomainError]) -> dict[str, str]:
    return {e.field: e.code for e in error.value.errors}


class TestTheChangeItself:
    def test_a_rate_decrease_in_either_mode_is_accepted(self) -> None:
        CUT.check()
        dataclasses.replace(CUT, mode=KEEP_NET).check()

    def test_keep_net_refuses_a_rate_increase(self) -> None:
        back = dataclasses.replace(CUT, from_rate_bp=1600, to_rate_bp=1900, mode=KEEP_NET)
        with pytest.raises(DomainError) as error:
            back.check()
        assert codes(error) == {"to_rate_bp": "rate-increase-forbidden"}

    def test_keep_gross_allows_a_rate_increase(self) -> None:
        dataclasses.replace(CUT, from_rate_bp=1600, to_rate_bp=1900).check()

    def test_the_rate_must_change(self) -> None:
        with pytest.raises(DomainError) as error:
            dataclasses.replace(CUT, to_rate_bp=1900).check()
        assert codes(error) == {"to_rate_bp": "rate-unchanged"}

    def test_every_bad_field_is_named_at_once(self) -> None:
        bad = dataclasses.replace(
            CUT, country="de", vat_type="TAXLESS", mode="keep-both", start=date(2021, 1, 1)
        )
        with pytest.raises(DomainError) as error:
            bad.check()
        assert set(codes(error)) == {"country", "vat_type", "mode", "end"}


class TestUnitPrices:
    def test_keep_gross_keeps_the_unit_price(self) -> None:
        assert CUT.unit_gross(1190) == 1190

    def test_keep_net_keeps_the_unit_net_at_the_new_rate(self) -> None:
        # 11.90 at 19 % is 10.00 net; 10.00 at 16 % is 11.60.
        assert dataclasses.replace(CUT, mode=KEEP_NET).unit_gross(1190) == 1160

    def test_keep_net_rounds_the_new_gross_half_up_once(self) -> None:
        # 9.99 x 116 / 119 = 9.73815... -> 9.74; 0.60 x 116 / 119 = 0.58487... -> 0.58.
        keep_net = dataclasses.replace(CUT, mode=KEEP_NET)
        assert keep_net.unit_gross(999) == 974
        assert keep_net.unit_gross(60) == 58

    def test_keep_net_rounds_an_exact_half_up(self) -> None:
        # 20 % -> 10 %: 0.06 x 110 / 120 = 0.055 -> 0.06; 0.18 x 110 / 120 = 0.165 -> 0.17.
        halved = dataclasses.replace(CUT, from_rate_bp=2000, to_rate_bp=1000, mode=KEEP_NET)
        assert halved.unit_gross(6) == 6
        assert halved.unit_gross(18) == 17

    def test_keep_net_rounds_a_discount_half_away_from_zero(self) -> None:
        # -0.06 x 110 / 120 = -0.055 -> -0.06.
        halved = dataclasses.replace(CUT, from_rate_bp=2000, to_rate_bp=1000, mode=KEEP_NET)
        assert halved.unit_gross(-6) == -6


class TestSelection:
    def test_an_invoice_of_the_period_with_a_line_at_the_old_rate_is_selected(self) -> None:
        order = OrderAggregateFactory()
        assert CUT.applies_to(invoiced(order).current)

    @pytest.mark.parametrize("when", [date(2020, 6, 30), date(2021, 1, 1)], ids=["before", "after"])
    def test_an_invoice_outside_the_period_is_not(self, when: date) -> None:
        order = OrderAggregateFactory()
        assert not CUT.applies_to(invoiced(order, when).current)

    def test_an_invoice_declared_elsewhere_is_not(self) -> None:
        order = OrderAggregateFactory(
            header={"orderDate": "2020-08-01", "vatDeclarationCountry": "AT"}
        )
        assert not CUT.applies_to(invoiced(order).current)

    def test_an_invoice_of_another_type_or_rate_is_not(self) -> None:
        order = OrderAggregateFactory(
            items=[ItemSpecFactory(item_ref=1, vat_type="REDUCED", rate_bp=700, unit_gross=1070)]
        )
        assert not CUT.applies_to(invoiced(order).current)

    def test_a_corrected_invoice_is_no_longer_selected(self) -> None:
        order = OrderAggregateFactory()
        invoice = corrected(order, invoiced(order), CUT)
        assert not CUT.applies_to(invoice.current)


class TestRestatement:
    def test_keep_gross_issues_version_2_with_net_and_vat_split_anew(self) -> None:
        order = OrderAggregateFactory()  # 11.90 + 23.80 at 19 %
        invoice = corrected(order, invoiced(order), CUT)
        assert invoice.versions[0].status == NULLIFIED
        # 35.70 x 16 / 116 = 4.9241... -> 4.92 VAT, 30.78 net.
        assert (invoice.current.version, invoice.current.gross) == (2, 3570)
        assert (invoice.current.net, invoice.current.vat) == (3078, 492)
        assert [p.rate_bp for p in order.positions] == [1600, 1600]

    def test_keep_net_lowers_gross_and_refunds_what_was_paid_beyond(self) -> None:
        order = OrderAggregateFactory()
        invoice = invoiced(order)
        order.receive_payment(3570, "VISA", None, IN_PERIOD)
        r = restate(order, invoice, dataclasses.replace(CUT, mode=KEEP_NET))
        result, _effects = order.correct_invoice(
            invoice.invoice_reference, r.spec, r.header, r.items, r.body_refs, None
        )
        # 11.60 + 23.20 = 34.80; 35.70 was paid.
        assert result.after.gross == 3480
        assert result.refund is not None and result.refund.amount == 90

    def test_only_lines_of_the_type_and_rate_change(self) -> None:
        order = OrderAggregateFactory(
            items=[
                ItemSpecFactory(item_ref=1),
                ItemSpecFactory(item_ref=2, vat_type="REDUCED", rate_bp=700, unit_gross=1070),
            ]
        )
        r = restate(order, invoiced(order), dataclasses.replace(CUT, mode=KEEP_NET))
        assert [(s.rate_bp, s.unit_gross) for s in r.items] == [(1600, 1160), (700, 1070)]

    def test_positions_on_other_invoices_are_restated_unchanged(self) -> None:
        order = OrderAggregateFactory()
        first, _ = order.create_invoice(InvoiceSpecFactory(item_refs=(1,), invoice_date=IN_PERIOD))
        order.create_invoice(InvoiceSpecFactory(item_refs=(2,), invoice_date=date(2020, 6, 1)))
        r = restate(order, first, CUT)
        assert r.items[1] == order.positions[1].spec()
        assert r.items[0].rate_bp == 1600

    def test_the_invoice_keeps_its_date_and_fields(self) -> None:
        order = OrderAggregateFactory()
        invoice = invoiced(order)
        r = restate(order, invoice, CUT)
        assert r.spec.invoice_date == IN_PERIOD
        assert r.spec.fields == invoice.current.fields
        assert r.spec.item_refs == (1, 2)

    def test_an_order_now_declared_elsewhere_is_refused(self) -> None:
        order = OrderAggregateFactory()
        invoice = invoiced(order)
        order.declaration_country = "AT"
        with pytest.raises(DomainError) as error:
            restate(order, invoice, CUT)
        assert error.value.code == "declaration-country-changed"
