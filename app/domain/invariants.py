"""The invariants every order must satisfy at every commit; `accounting verify` checks them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.domain import model


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
