"""A refund's payout: pending, in payout, completed or failed; each step booked once."""

from __future__ import annotations

from datetime import date

import pytest

from app.domain import ledger, model
from app.domain.bank_account import BankAccount
from app.domain.errors import StateConflict
from app.domain.invariants import payout_bookings

BANK = BankAccount("DE02120300000000202051", owner="Max Mustermann")
TODAY = date(2026, 12, 4)


def balances(lines: list[ledger.JournalLine | None]) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in lines:
        if line is not None:
            found[line.account] = found.get(line.account, 0) + line.debit - line.credit
    return found


def refused(code: str, step: object, *args: object) -> None:
    with pytest.raises(StateConflict) as refusal:
        step(*args)  # type: ignore[operator]
    assert refusal.value.code == code


def test_a_completed_refund_is_paid_at_most_once() -> None:
    refund = model.Refund(2380, "cancellation C-1", BANK)
    assert balances(refund.start_payout("export-1")) == {
        "refunds-payable": 2380,
        "refunds-in-payout": -2380,
    }
    assert balances(refund.complete()) == {"refunds-in-payout": 2380, "bank": -2380}

    refused("refund-not-pending", refund.start_payout, "export-2")
    refused("refund-not-in-payout", refund.complete)
    refused("refund-not-in-payout", refund.fail, "late")
    refused("refund-not-failed", refund.retry, None)
    assert (refund.status, refund.attempt) == (model.COMPLETED, 1)


def test_a_refund_to_the_original_method_is_paid_from_the_providers_clearing() -> None:
    refund = model.Refund(500, "return R-1", None)
    assert refund.method == model.ORIGINAL_METHOD
    refund.start_payout("psp-1")
    assert balances(refund.complete()) == {"refunds-in-payout": 500, "payment-clearing": -500}


def test_a_failed_refund_is_owed_again_and_retried_to_new_bank_details() -> None:
    refund = model.Refund(2380, "cancellation C-1", BANK)
    refund.start_payout("export-1")
    assert balances(refund.fail("AC04 account closed")) == {
        "refunds-in-payout": 2380,
        "refunds-payable": -2380,
    }
    refused("refund-not-in-payout", refund.complete)

    refund.retry(BankAccount("DE02100500000054540402"))
    refund.start_payout("export-2")
    refund.complete()

    assert (refund.status, refund.attempt, refund.failure_reason) == (model.COMPLETED, 2, None)
    assert refund.bank_details == BankAccount("DE02100500000054540402")
    kinds = [booking.kind for booking in payout_bookings(refund)]
    assert sorted(kinds) == ["refund-failed", "refund-paid", "refund-payout", "refund-payout"]


def test_every_payout_step_books_a_balanced_entry_on_its_order() -> None:
    order = model.Order("1000", "O1", "C1", "EUR", model.OrderHeader("DE", None), [])
    refund = model.Refund(2380, "cancellation C-1", BANK)
    entries = [
        *order.start_refund_payout(refund, "export-1", TODAY).created,
        *order.complete_refund(refund, TODAY).created,
    ]

    assert [entry.kind for entry in entries] == ["refund-payout", "refund-paid"]  # type: ignore[attr-defined]
    assert (order.refund_paid_total, order.version) == (2380, 3)
