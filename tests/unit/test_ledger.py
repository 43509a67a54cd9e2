"""Double-entry bookings: every entry balances, every reversal cancels its original."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date

import pytest

from app.domain import ledger
from app.domain.ledger import JournalEntry, JournalLine, UnbalancedEntry
from app.domain.tax import TaxAmount, TaxKey

NORMAL_DE = TaxKey("DE", "NORMAL", 1900)
REDUCED_DE = TaxKey("DE", "REDUCED", 700)
TAXES = [TaxAmount(NORMAL_DE, net=3000, vat=570), TaxAmount(REDUCED_DE, net=1000, vat=70)]


def entry(lines: Iterable[JournalLine | None], kind: str = "invoice") -> JournalEntry:
    return JournalEntry("1000", "ORD1", kind, "INV1", date(2024, 6, 10), lines)


def balances(lines: Iterable[JournalLine | None]) -> Counter[str]:
    """Debit minus credit per readable account."""
    totals: Counter[str] = Counter()
    for line in lines:
        if line is not None:
            totals[ledger.account_name(line)] += line.debit - line.credit
    return totals


# --- an entry refuses to be unbalanced -------------------------------------------------


def test_an_entry_whose_debits_and_credits_differ_is_refused() -> None:
    with pytest.raises(UnbalancedEntry):
        entry([JournalLine(ledger.RECEIVABLE, 1190, 0), JournalLine(ledger.REVENUE, 0, 1000)])


def test_a_line_with_both_a_debit_and_a_credit_is_refused() -> None:
    with pytest.raises(UnbalancedEntry):
        entry([JournalLine(ledger.RECEIVABLE, 100, 100)])


def test_a_balanced_entry_numbers_its_lines_and_drops_empty_ones() -> None:
    booked = entry([JournalLine(ledger.RECEIVABLE, 100, 0), None, JournalLine("x", 0, 100)])
    assert [line.line_no for line in booked.lines] == [1, 2]
    assert booked.business_code == "1000"
    assert booked.order_reference == "ORD1"


# --- sales and their reversal ----------------------------------------------------------


def test_a_sale_books_receivable_against_revenue_and_vat_per_tax_key() -> None:
    assert balances(ledger.sale_lines(TAXES)) == {
        "receivable": 4640,
        "revenue/DE/NORMAL/19": -3000,
        "vat-payable/DE/NORMAL/19": -570,
        "revenue/DE/REDUCED/7": -1000,
        "vat-payable/DE/REDUCED/7": -70,
    }


def test_a_sale_makes_a_balanced_entry() -> None:
    booked = entry(ledger.sale_lines(TAXES))
    assert sum(line.debit for line in booked.lines) == sum(line.credit for line in booked.lines)
    assert sum(line.debit for line in booked.lines) == 4640


def test_a_reversed_sale_cancels_the_sale_on_every_account() -> None:
    sale, reverse = ledger.sale_lines(TAXES), ledger.sale_lines(TAXES, sign=-1)
    entry(reverse, kind="credit-note")
    total = balances(sale)
    total.update(balances(reverse))
    assert set(total) == set(balances(sale))
    assert all(amount == 0 for amount in total.values())


def test_a_reversed_sale_credits_receivable_and_debits_revenue_and_vat() -> None:
    reverse = entry(ledger.sale_lines(TAXES, sign=-1), kind="return")
    by_account = {ledger.account_name(line): line for line in reverse.lines}
    assert (by_account["receivable"].debit, by_account["receivable"].credit) == (0, 4640)
    assert (
        by_account["revenue/DE/NORMAL/19"].debit,
        by_account["revenue/DE/NORMAL/19"].credit,
    ) == (
        3000,
        0,
    )


def test_tax_lines_carry_their_tax_key_and_the_receivable_none() -> None:
    booked = entry(ledger.sale_lines(TAXES))
    assert booked.lines[0].account == ledger.RECEIVABLE
    assert booked.lines[0].tax_key is None
    assert {line.tax_key for line in booked.lines[1:]} == {NORMAL_DE, REDUCED_DE}


def test_a_tax_free_sale_books_no_vat_line() -> None:
    taxless = [TaxAmount(TaxKey("DE", "TAXLESS", 0), net=1000, vat=0)]
    booked = entry(ledger.sale_lines(taxless))
    assert [ledger.account_name(line) for line in booked.lines] == [
        "receivable",
        "revenue/DE/TAXLESS/0",
    ]


# --- money in and out ------------------------------------------------------------------


def test_a_payment_books_clearing_against_receivable() -> None:
    booked = entry(ledger.payment_lines(3570), kind="payment")
    assert balances(booked.lines) == {"payment-clearing": 3570, "receivable": -3570}


def test_a_refund_books_receivable_against_refunds_payable() -> None:
    booked = entry(ledger.refund_lines(1190), kind="refund")
    assert balances(booked.lines) == {"receivable": 1190, "refunds-payable": -1190}


def test_sale_payment_and_refund_of_a_returned_sale_leave_receivable_at_zero() -> None:
    taxes = TAXES[:1]
    lines = [
        *ledger.sale_lines(taxes),
        *ledger.payment_lines(3570),
        *ledger.sale_lines(taxes, sign=-1),
        *ledger.refund_lines(3570),
    ]
    assert balances(lines)["receivable"] == 0
