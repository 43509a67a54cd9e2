"""What a business change tells the merchant: the event catalogue, each event's data, and the
envelope a feed or a webhook carries (docs/api.md, "Events").

An event's data is written with the change, in the same transaction, in the wire form the API
answers in (camelCase, amounts as numbers in major units), so a merchant needs no second call.
The use cases hand this module domain objects; the wire's names are written here only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from app.adapters.repository import OutboxEvent
from app.domain import model
from app.domain.money import to_major

ORDER_CREATED = "orderCreated"
INVOICE_CREATED = "invoiceCreated"
INVOICE_CORRECTED = "invoiceCorrected"
ORDER_CANCELLED = "orderCancelled"
RETURN_CREATED = "returnCreated"
GOODWILL_CREATED = "goodwillCreated"
PAYMENT_RECEIVED = "paymentReceived"
REFUND_CREATED = "refundCreated"
BALANCE_UPDATED = "balanceUpdated"
DOCUMENT_CREATED = "documentCreated"
# A refund's payout steps (app/service/refunds.py), by the status each leaves the refund in:
# Riverty's refundCompleted by name.
REFUND_STEPS = {
    model.IN_PAYOUT: "refundPayoutStarted",
    model.COMPLETED: "refundCompleted",
    model.FAILED: "refundFailed",
    model.PENDING: "refundRetried",
}

TYPES = (
    ORDER_CREATED,
    INVOICE_CREATED,
    INVOICE_CORRECTED,
    ORDER_CANCELLED,
    RETURN_CREATED,
    GOODWILL_CREATED,
    PAYMENT_RECEIVED,
    REFUND_CREATED,
    BALANCE_UPDATED,
    *REFUND_STEPS.values(),
    DOCUMENT_CREATED,
)

# The names the first outbox events were stored under, before the catalogue existed.
FORMER_TOPICS = {
    "order.created": ORDER_CREATED,
    "invoice.created": INVOICE_CREATED,
    "invoice.corrected": INVOICE_CORRECTED,
    "order.cancelled": ORDER_CANCELLED,
    "order.returned": RETURN_CREATED,
    "order.goodwill": GOODWILL_CREATED,
    "payment.received": PAYMENT_RECEIVED,
}


def event_type(topic: str) -> str:
    """The catalogue's name of a stored topic."""
    return FORMER_TOPICS.get(topic, topic)


def stored_topics(types: list[str]) -> list[str]:
    """The topics stored for these types (the catalogue's names and their former ones)."""
    former = [old for old, new in FORMER_TOPICS.items() if new in types]
    return [*types, *former]


def envelope(
    event_id: str, topic: str, business: str, occurred: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    """An event as a feed or a webhook carries it."""
    when = occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC)
    return {
        "id": event_id,
        "type": event_type(topic),
        "businessCode": business,
        "occurredAt": when.isoformat(),
        "data": data,
    }


def _order(order: model.Order) -> dict[str, Any]:
    return {
        "orderReference": order.order_reference,
        "customerNumber": order.customer_number,
        "currency": order.currency,
        "orderVersion": order.version,
    }


def _money(order: model.Order, minor: int) -> Any:
    return to_major(minor, order.currency)


def order_created(order: model.Order) -> list[OutboxEvent]:
    data = {**_order(order), "gross": _money(order, order.gross_total)}
    return [OutboxEvent(ORDER_CREATED, data)]


def _totals(order: model.Order, document: Any) -> dict[str, Any]:
    return {
        "grossTotal": _money(order, document.gross),
        "netTotal": _money(order, document.net),
        "vatTotal": _money(order, document.vat),
    }


def invoice_created(
    order: model.Order, effects: model.Effects, reference: str
) -> list[OutboxEvent]:
    invoice = order.invoice(reference)
    assert invoice is not None
    version = invoice.current
    data = {
        **_order(order),
        "invoiceReference": reference,
        "version": version.version,
        "invoiceDate": version.invoice_date.isoformat(),
        "dueDate": version.due_date.isoformat() if version.due_date else None,
        **_totals(order, version),
    }
    documents = [_invoice_document(order, reference, version.version)]
    return [
        OutboxEvent(INVOICE_CREATED, data),
        document_created(order, documents),
        *consequences(order, effects),
    ]


def invoice_corrected(
    order: model.Order, effects: model.Effects, result: model.CorrectionResult
) -> list[OutboxEvent]:
    note = result.credit_note
    data = {
        **_order(order),
        "invoiceReference": result.invoice_reference,
        "version": result.after.version,
        "previousVersion": result.before.version,
        "creditNoteReference": note.reference if note else None,
        **_totals(order, result.after),
        "previousGrossTotal": _money(order, result.before.gross),
    }
    documents = [_invoice_document(order, result.invoice_reference, result.after.version)]
    if note is not None:
        documents.insert(0, _credit_note_document(order, note.reference))
    return [
        OutboxEvent(INVOICE_CORRECTED, data),
        document_created(order, documents),
        *consequences(order, effects),
    ]


def _order_path(order: model.Order) -> str:
    return (
        f"/accounting/v1/businesses/{quote(order.business_code, safe='')}"
        f"/customers/{quote(order.customer_number, safe='')}"
        f"/orders/{quote(order.order_reference, safe='')}"
    )


def _invoice_document(order: model.Order, reference: str, version: int) -> dict[str, Any]:
    path = f"{_order_path(order)}/invoices/{quote(reference, safe='')}/versions/{version}"
    return {
        "documentType": "invoice",
        "invoiceReference": reference,
        "version": version,
        "path": f"{path}/document",
    }


def _credit_note_document(order: model.Order, reference: str) -> dict[str, Any]:
    path = f"{_order_path(order)}/credit-notes/{quote(reference, safe='')}"
    return {
        "documentType": "creditNote",
        "creditNoteReference": reference,
        "path": f"{path}/document",
    }


def document_created(order: model.Order, documents: list[dict[str, Any]]) -> OutboxEvent:
    """The documents a change issued, each fetched at its path as application/pdf (PDF/A-3
    with the e-invoice) or application/xml (the e-invoice): one event per change."""
    return OutboxEvent(DOCUMENT_CREATED, {**_order(order), "documents": documents})


def cancelled(order: model.Order, effects: model.Effects, reference: str) -> list[OutboxEvent]:
    cancellation = next(d for d in effects.created if isinstance(d, model.Cancellation))
    data = {
        **_order(order),
        "cancellationReference": reference,
        "cancellationReason": cancellation.reason,
        "items": [{"orderItemReference": ref} for ref in cancellation.item_refs],
    }
    return [OutboxEvent(ORDER_CANCELLED, data), *consequences(order, effects)]


def credited(order: model.Order, effects: model.Effects) -> list[OutboxEvent]:
    """A return or a goodwill."""
    credit = next(d for d in effects.created if isinstance(d, model.Credit))
    is_return = credit.kind == model.RETURN
    data = {
        **_order(order),
        ("returnReference" if is_return else "goodwillReference"): credit.reference,
        ("returnReason" if is_return else "goodwillReason"): credit.reason,
        "invoiceReference": credit.invoice_reference,
        **_totals(order, credit),
    }
    kind = RETURN_CREATED if is_return else GOODWILL_CREATED
    return [OutboxEvent(kind, data), *consequences(order, effects)]


def payment_received(
    order: model.Order, effects: model.Effects, payment: model.Payment
) -> list[OutboxEvent]:
    data = {
        **_order(order),
        "paymentId": payment.payment_id,
        "amount": _money(order, payment.amount),
        "paymentProvider": payment.provider,
        "paymentDate": payment.payment_date.isoformat(),
    }
    return [OutboxEvent(PAYMENT_RECEIVED, data), *consequences(order, effects)]


def consequences(order: model.Order, effects: model.Effects) -> list[OutboxEvent]:
    """What follows every change of an order's money: the refund it created, its balance."""
    found: list[OutboxEvent] = []
    refund = effects.refund
    if refund is not None:
        data = {
            **_order(order),
            "refundId": refund.refund_id,
            "amount": _money(order, refund.amount),
            "cause": refund.cause,
            "method": refund.method,
            "status": refund.status,
        }
        found.append(OutboxEvent(REFUND_CREATED, data))
    totals = {
        "gross": _money(order, order.gross_total),
        "invoiced": _money(order, order.invoiced_total),
        "credited": _money(order, order.credited_total),
        "paid": _money(order, order.paid_total),
        "refunded": _money(order, order.refunded_total),
        "balance": _money(order, order.balance),
    }
    found.append(OutboxEvent(BALANCE_UPDATED, {**_order(order), "totals": totals}))
    return found


def refund_step(order: model.Order, refund: model.Refund) -> OutboxEvent:
    """A refund's payout step, named by the status it left the refund in."""
    data = {
        **_order(order),
        "refundId": refund.refund_id,
        "amount": _money(order, refund.amount),
        "method": refund.method,
        "status": refund.status,
        "attempt": refund.attempt,
        "payoutReference": refund.payout_reference,
    }
    if refund.status == model.FAILED:
        data["reason"] = refund.failure_reason
    return OutboxEvent(REFUND_STEPS[refund.status], data)
