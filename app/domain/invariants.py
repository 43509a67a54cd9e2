"""The invariants every order must satisfy at every commit; `accounting verify` checks them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import zip_longest

from app.domain import ledger, model


@dataclass(frozen=True)
class OrderFacts:
    """What the database holds about an order outside the aggregate."""

    payments: int
    refunds: int
    credits: int
    receivable: int  # the order's balance on the receivable account of the journal
    # Gross credited on each position by the lines of its return and goodwill documents. The
    # position itself cannot tell: a return after a goodwill credits only what was left.
    position_credits: Mapping[int, int] = field(default_factory=dict)
    refunds_paid: int = 0  # the refunds whose payout was confirmed


def _beyond(amount: int, gross: int) -> bool:
    """More than the position's gross, away from zero (a discount line's gross is negative)."""
    return amount > gross if gross >= 0 else amount < gross


def order_violations(order: model.Order, facts: OrderFacts) -> list[str]:
    """Every broken invariant of one order, named; empty when the order is sound."""
    name = f"order {order.business_code}/{order.order_reference}"
    found: list[str] = []

    def broken(text: str) -> None:
        found.append(f"{name}: {text}")

    if order.paid_total != facts.payments:
        broken(f"paid total {order.paid_total} != payments {facts.payments}")
    if order.refunded_total != facts.refunds:
        broken(f"refunded total {order.refunded_total} != refunds {facts.refunds}")
    if order.refund_paid_total != facts.refunds_paid:
        broken(f"refunds paid out {order.refund_paid_total} != completed {facts.refunds_paid}")
    if order.credited_total != facts.credits:
        broken(f"credited total {order.credited_total} != returns and goodwills {facts.credits}")
    if facts.refunds > facts.payments:
        broken(f"refunds {facts.refunds} exceed payments {facts.payments}")
    if order.balance < 0:
        broken(f"an overpayment of {-order.balance} was not refunded")
    expected_receivable = (
        order.invoiced_total - order.credited_total - order.paid_total + order.refunded_total
    )
    if facts.receivable != expected_receivable:
        broken(f"receivable {facts.receivable} != documents' balance {expected_receivable}")
    if order.invoiced_total > order.gross_total:
        broken(f"live invoices {order.invoiced_total} exceed the order total {order.gross_total}")

    on_live = Counter(ref for inv in order.invoices for ref in inv.current.item_refs)
    live_invoice = {
        ref: inv.invoice_reference for inv in order.invoices for ref in inv.current.item_refs
    }
    for p in order.positions:
        what = f"position {p.item_ref}"
        if p.state not in (model.OPEN, model.INVOICED, model.CANCELLED):
            broken(f"{what} is in no known state ({p.state})")
        if on_live[p.item_ref] > 1:
            broken(f"{what} is on {on_live[p.item_ref]} live invoices")
        if p.state == model.INVOICED and live_invoice.get(p.item_ref) != p.invoice_reference:
            broken(f"{what} reads invoiced on {p.invoice_reference} but no live version has it")
        if p.state != model.INVOICED and on_live[p.item_ref]:
            broken(f"{what} is {p.state} but on live invoice {live_invoice[p.item_ref]}")
        if p.returned_milli > p.quantity_milli:
            broken(f"{what}: returned {p.returned_milli} above invoiced {p.quantity_milli}")
        if (p.returned_milli or p.goodwill_amount) and p.state != model.INVOICED:
            broken(f"{what} was credited but is not invoiced")
        credited = facts.position_credits.get(p.item_ref, 0)
        if _beyond(credited, p.gross):
            excess = abs(credited - p.gross)
            broken(f"{what}: returns and goodwills exceed the position by {excess}")
        if _beyond(p.goodwill_amount, p.gross):
            broken(f"{what}: goodwill {p.goodwill_amount} above the position's gross {p.gross}")

    for invoice in order.invoices:
        found.extend(f"{name}: {v}" for v in invoice_violations(invoice))
    return found


def invoice_violations(invoice: model.Invoice) -> list[str]:
    """One current version per invoice; each nullified version nullified by one credit note."""
    name = f"invoice {invoice.invoice_reference}"
    found = []
    issued = [v.version for v in invoice.versions if v.status == model.ISSUED]
    if issued != [invoice.current_version]:
        found.append(f"{name}: issued versions {issued}, current {invoice.current_version}")
    notes = Counter(cn.nullifies_version for cn in invoice.credit_notes)
    for v in invoice.versions:
        expected = 1 if v.status == model.NULLIFIED else 0
        if notes[v.version] != expected:
            found.append(
                f"{name}: version {v.version} ({v.status}) has {notes[v.version]} "
                f"credit notes, expected {expected}"
            )
    return found


# --- the journal against the documents -----------------------------------------------------


@dataclass(frozen=True)
class Booking:
    """The journal entry a document implies, rebuilt from the document's stored amounts."""

    kind: str
    reference: str  # the entry's document_reference
    document: str  # how a violation names the document
    lines: list[ledger.JournalLine]


def _booking(
    kind: str, reference: str, document: str, lines: Iterable[ledger.JournalLine | None]
) -> Booking:
    return Booking(kind, reference, document, [line for line in lines if line is not None])


def bookings(
    order: model.Order,
    credits: Iterable[model.Credit],
    payments: Iterable[model.Payment],
    refunds: Iterable[model.Refund],
) -> list[Booking]:
    """Every journal entry the order's documents imply, as the aggregate books them: an
    invoice version and a credit note (a correction's reversal) from their stored taxes, a
    return or goodwill likewise reversed, a payment and a refund from their amounts."""
    found = []
    for invoice in order.invoices:
        ref = invoice.invoice_reference
        for v in sorted(invoice.versions, key=lambda v: v.version):
            lines = ledger.sale_lines(v.tax_amounts())
            found.append(_booking("invoice", ref, f"invoice {ref} version {v.version}", lines))
        for note in invoice.credit_notes:
            lines = ledger.sale_lines(note.tax_amounts(), sign=-1)
            document = f"credit note {note.reference}"
            found.append(_booking("credit-note", note.reference, document, lines))
    for credit in credits:
        lines = ledger.sale_lines(credit.tax_amounts(), sign=-1)
        document = f"{credit.kind} {credit.reference}"
        found.append(_booking(credit.kind, credit.reference, document, lines))
    for payment in payments:
        reference = payment.reference or payment.payment_id
        lines = ledger.payment_lines(payment.amount)
        found.append(_booking("payment", reference, f"payment {payment.payment_id}", lines))
    for refund in refunds:
        lines = ledger.refund_lines(refund.amount)
        found.append(_booking("refund", refund.refund_id, f"refund {refund.refund_id}", lines))
        found.extend(payout_bookings(refund))
    return found


def payout_bookings(refund: model.Refund) -> list[Booking]:
    """The entries a refund's payouts imply from its state: one for each payout started
    (`attempt`), one for each that failed (every one but a payout still open or completed),
    and one for its completion."""
    open_or_done = refund.status in (model.IN_PAYOUT, model.COMPLETED)
    failed = refund.attempt - 1 if open_or_done else refund.attempt
    steps = [(model.IN_PAYOUT, ledger.payout_lines(refund.amount))] * refund.attempt
    steps += [(model.FAILED, ledger.payout_failed_lines(refund.amount))] * failed
    if refund.status == model.COMPLETED:
        steps.append(
            (model.COMPLETED, ledger.payout_completed_lines(refund.amount, refund.paid_from))
        )
    return [
        _booking(
            model.PAYOUT_KINDS[status],
            refund.refund_id,
            f"refund {refund.refund_id} ({model.PAYOUT_KINDS[status]})",
            lines,
        )
        for status, lines in steps
    ]


Account = tuple[str, str | None, str | None, int | None]


def _account(line: ledger.JournalLine) -> Account:
    return (line.account, line.tax_country, line.vat_type, line.rate_bp)


def _postings(lines: Iterable[ledger.JournalLine]) -> Counter[tuple[Account, int, int]]:
    return Counter((_account(line), line.debit, line.credit) for line in lines)


def _amounts(lines: list[ledger.JournalLine]) -> str:
    return f"debit {sum(ln.debit for ln in lines)}, credit {sum(ln.credit for ln in lines)}"


def _differences(booked: list[ledger.JournalLine], implied: Booking) -> list[str]:
    """Each account where the entry's lines and the document's differ, the entry's first."""
    by_account: dict[Account, tuple[list[ledger.JournalLine], list[ledger.JournalLine]]] = {}
    for line in sorted(booked, key=lambda ln: ln.line_no):
        by_account.setdefault(_account(line), ([], []))[0].append(line)
    for line in implied.lines:
        by_account.setdefault(_account(line), ([], []))[1].append(line)
    found = []
    for ours, theirs in by_account.values():
        if _postings(ours) == _postings(theirs):
            continue
        name = ledger.account_name((ours or theirs)[0])
        expected = f"{implied.document} implies " + (_amounts(theirs) if theirs else "no line")
        if not ours:
            found.append(f"no line on {name}; {expected}")
            continue
        numbers = ", ".join(str(ln.line_no) for ln in ours)
        lines = "line" if len(ours) == 1 else "lines"
        found.append(f"{lines} {numbers} {name}: {_amounts(ours)}; {expected}")
    return found


def _entry_name(entry: ledger.JournalEntry) -> str:
    return (
        f"journal entry {entry.business_code}/{entry.entry_id} "
        f"({entry.kind} {entry.document_reference})"
    )


def journal_violations(
    order: model.Order, entries: Iterable[ledger.JournalEntry], implied: Iterable[Booking]
) -> list[str]:
    """Every journal entry of the order against the booking its document implies, account
    by account (account, tax country, VAT type, rate, debit, credit), each difference named.

    An entry and a document are paired by kind and document reference; the versions of one
    invoice share their reference, so an entry is first paired with a version it agrees with
    exactly, and what is left is compared in booking order (entries by creation, versions by
    number)."""
    booked: dict[tuple[str, str], list[ledger.JournalEntry]] = {}
    for entry in entries:
        booked.setdefault((entry.kind, entry.document_reference), []).append(entry)
    expected: dict[tuple[str, str], list[Booking]] = {}
    for booking in implied:
        expected.setdefault((booking.kind, booking.reference), []).append(booking)
    found = []
    for key in [*booked, *(k for k in expected if k not in booked)]:
        # Bookings by their postings, so that pairing stays linear in a long history.
        twins: dict[frozenset[tuple[tuple[Account, int, int], int]], list[Booking]] = {}
        for booking in expected.get(key, []):
            twins.setdefault(frozenset(_postings(booking.lines).items()), []).append(booking)
        paired: set[int] = set()
        left = []
        for entry in booked.get(key, []):
            same = twins.get(frozenset(_postings(entry.lines).items()))
            if same:
                paired.add(id(same.pop(0)))
            else:
                left.append(entry)
        unpaired = [b for b in expected.get(key, []) if id(b) not in paired]
        for entry, booking in zip_longest(left, unpaired):
            if booking is None:
                found.append(f"{_entry_name(entry)}: no document of the order books it")
            elif entry is None:
                found.append(
                    f"order {order.business_code}/{order.order_reference}: "
                    f"{booking.document} has no journal entry"
                )
            else:
                found.extend(
                    f"{_entry_name(entry)}: {d}" for d in _differences(entry.lines, booking)
                )
    return found
