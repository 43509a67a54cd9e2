"""Double-entry bookings: every business event becomes one balanced journal entry."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date

from app.domain.money import bp_to_rate
from app.domain.tax import TaxAmount, TaxKey

RECEIVABLE = "receivable"
REVENUE = "revenue"
VAT_PAYABLE = "vat-payable"
PAYMENT_CLEARING = "payment-clearing"
REFUNDS_PAYABLE = "refunds-payable"
# A refund handed to a bank (a credit-transfer file) or a payment provider, not yet confirmed.
REFUNDS_IN_PAYOUT = "refunds-in-payout"
# Where a refund's money leaves: the bank account a credit transfer is paid from, or the
# payment provider's clearing account (the one payments arrive on) for a refund to the original
# payment method.
BANK = "bank"


class UnbalancedEntry(Exception):
    """Debits and credits of one entry differ: a programming error, never a client's."""


class JournalLine:
    """One side of a booking on one account; tax accounts carry their tax key."""

    def __init__(self, account: str, debit: int, credit: int, key: TaxKey | None = None):
        self.account = account
        self.debit = debit
        self.credit = credit
        self.tax_country = key.country if key else None
        self.vat_type = key.vat_type if key else None
        self.rate_bp = key.rate_bp if key else None
        self.line_no = 0

    @property
    def tax_key(self) -> TaxKey | None:
        if self.tax_country is None or self.vat_type is None or self.rate_bp is None:
            return None
        return TaxKey(self.tax_country, self.vat_type, self.rate_bp)


def _signed(account: str, amount: int, key: TaxKey | None = None) -> JournalLine | None:
    """Positive amounts are debits, negative ones credits; zero books nothing."""
    if amount == 0:
        return None
    if amount > 0:
        return JournalLine(account, amount, 0, key)
    return JournalLine(account, 0, -amount, key)


class JournalEntry:
    """A balanced set of lines booked for one document; the only way lines are written."""

    def __init__(
        self,
        business_code: str,
        order_reference: str,
        kind: str,
        document_reference: str,
        document_date: date,
        lines: Iterable[JournalLine | None],
    ):
        kept = [line for line in lines if line is not None]
        debit = sum(line.debit for line in kept)
        credit = sum(line.credit for line in kept)
        if debit != credit or any(min(line.debit, line.credit) != 0 for line in kept):
            raise UnbalancedEntry(f"{kind} {document_reference}: debit {debit} != credit {credit}")
        self.business_code = business_code
        self.entry_id = str(uuid.uuid4())
        self.order_reference = order_reference
        self.kind = kind
        self.document_reference = document_reference
        self.document_date = document_date
        for number, line in enumerate(kept, 1):
            line.line_no = number
        self.lines = kept


def sale_lines(taxes: Iterable[TaxAmount], sign: int = 1) -> list[JournalLine | None]:
    """Receivable against revenue and VAT per tax key; sign -1 books the exact reverse."""
    lines: list[JournalLine | None] = []
    gross = 0
    for tax in taxes:
        gross += tax.gross
        lines.append(_signed(REVENUE, -sign * tax.net, tax.key))
        lines.append(_signed(VAT_PAYABLE, -sign * tax.vat, tax.key))
    return [_signed(RECEIVABLE, sign * gross), *lines]


def transfer(debit: str, credit: str, amount: int) -> list[JournalLine | None]:
    """Amount from one account to another: a debit on the first, a credit on the second."""
    return [_signed(debit, amount), _signed(credit, -amount)]


def payment_lines(amount: int) -> list[JournalLine | None]:
    """Cash arrives: clearing against receivable."""
    return transfer(PAYMENT_CLEARING, RECEIVABLE, amount)


def refund_lines(amount: int) -> list[JournalLine | None]:
    """Money owed back: receivable against refunds payable."""
    return transfer(RECEIVABLE, REFUNDS_PAYABLE, amount)


def payout_lines(amount: int) -> list[JournalLine | None]:
    """A refund handed over for payout: still owed, now on its way."""
    return transfer(REFUNDS_PAYABLE, REFUNDS_IN_PAYOUT, amount)


def payout_failed_lines(amount: int) -> list[JournalLine | None]:
    """A payout that failed: the refund is owed again."""
    return transfer(REFUNDS_IN_PAYOUT, REFUNDS_PAYABLE, amount)


def payout_completed_lines(amount: int, paid_from: str) -> list[JournalLine | None]:
    """A payout confirmed: the money left the bank account or the provider's clearing."""
    return transfer(REFUNDS_IN_PAYOUT, paid_from, amount)


def account_name(line: JournalLine) -> str:
    """Readable account: tax accounts carry country, type and rate."""
    key = line.tax_key
    if key is None:
        return line.account
    return f"{line.account}/{key.country}/{key.vat_type}/{bp_to_rate(key.rate_bp)}"
