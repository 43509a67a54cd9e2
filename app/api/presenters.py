"""Domain objects to response bodies as sent: camelCase, amounts as numbers in major units,
dates as ISO strings, keys in the order of openapi.yaml's schemas."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from app.domain import ledger, model
from app.domain.model import CorrectionResult, Effects
from app.domain.money import bp_to_rate, milli_to_quantity, to_major
from app.domain.tax import TaxAmount


def timestamp(value: datetime | None) -> str | None:
    """RFC 3339 with its offset; SQLite hands stored UTC times back naive."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def tax_report(start: date, end: date, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """VAT booked in a period, one row per currency, declaration country, VAT type and rate."""
    return {
        "from": start,
        "to": end,
        "rows": [
            {
                "declarationCountry": r["country"],
                "vatType": r["vat_type"],
                "vatPercent": bp_to_rate(r["rate_bp"]),
                "net": to_major(r["net"], r["currency"]),
                "vat": to_major(r["vat"], r["currency"]),
                "gross": to_major(r["net"] + r["vat"], r["currency"]),
                "currency": r["currency"],
            }
            for r in rows
        ],
    }


class Presenter:
    """Renders the documents of one order, in its currency."""

    def __init__(self, order: model.Order):
        self.order = order
        self.currency = order.currency

    def money(self, minor: int) -> Any:
        return to_major(minor, self.currency)

    def taxes(self, taxes: list[TaxAmount]) -> list[dict[str, Any]]:
        return [
            {
                "declarationCountry": t.key.country,
                "vatType": t.key.vat_type,
                "vatPercent": bp_to_rate(t.key.rate_bp),
                "net": self.money(t.net),
                "vat": self.money(t.vat),
                "gross": self.money(t.gross),
            }
            for t in taxes
        ]

    def order_body(self) -> dict[str, Any]:
        o = self.order
        return {
            "orderReference": o.order_reference,
            "customerNumber": o.customer_number,
            "currency": o.currency,
            "version": o.version,
            "positions": [self.position(p) for p in o.positions],
            "totals": {
                "gross": self.money(o.gross_total),
                "invoiced": self.money(o.invoiced_total),
                "cancelled": self.money(o.cancelled_total),
                "credited": self.money(o.credited_total),
                "paid": self.money(o.paid_total),
                "refunded": self.money(o.refunded_total),
                "balance": self.money(o.balance),
                "refundsPaidOut": self.money(o.refund_paid_total),
            },
        }

    def position(self, p: model.Position) -> dict[str, Any]:
        return {
            "orderItemReference": p.item_ref,
            "productId": p.product_id,
            "description": p.description,
            "quantity": milli_to_quantity(p.quantity_milli),
            "grossUnitPrice": self.money(p.unit_gross),
            "vatPercent": bp_to_rate(p.rate_bp),
            "vatType": p.vat_type,
            "positionType": p.position_type,
            "state": p.state,
            "invoiceReference": p.invoice_reference,
            "returnedQuantity": milli_to_quantity(p.returned_milli),
            "goodwillAmount": self.money(p.goodwill_amount),
        }

    def line(self, line: dict[str, Any]) -> dict[str, Any]:
        return {
            "orderItemReference": line["item_ref"],
            "productId": line["product_id"],
            "description": line["description"],
            "quantity": milli_to_quantity(line["quantity_milli"]),
            "grossUnitPrice": self.money(line["unit_gross"]),
            "vatPercent": bp_to_rate(line["rate_bp"]),
            "vatType": line["vat_type"],
            "positionType": line["position_type"],
            "gross": self.money(line["gross"]),
        }

    def version(self, v: model.InvoiceVersion) -> dict[str, Any]:
        header = v.header or {}
        return {
            **self.summary(v),
            "status": v.status,
            "invoiceDate": v.invoice_date,
            "dueDate": v.due_date,
            "lines": [self.line(line) for line in v.lines],
            "nullifiedBy": v.nullified_by,
            "billToAddress": header.get("billToAddress"),
            "shipToAddress": header.get("shipToAddress"),
            "details": {**v.fields, "vatDeclarationCountry": v.declaration_country},
        }

    def credit_note(self, cn: model.CreditNote) -> dict[str, Any]:
        return {
            "reference": cn.reference,
            "nullifiesVersion": cn.nullifies_version,
            "documentDate": cn.document_date,
            "grossTotal": self.money(cn.gross),
            "netTotal": self.money(cn.net),
            "vatTotal": self.money(cn.vat),
            "taxes": self.taxes(cn.tax_amounts()),
        }

    def invoice(self, invoice: model.Invoice) -> dict[str, Any]:
        return {
            "invoiceReference": invoice.invoice_reference,
            "orderReference": self.order.order_reference,
            "customerNumber": self.order.customer_number,
            "currency": self.currency,
            "currentVersion": invoice.current_version,
            "versions": [self.version(v) for v in invoice.versions],
            "creditNotes": [self.credit_note(cn) for cn in invoice.credit_notes],
        }

    def refund(self, r: model.Refund | None) -> dict[str, Any] | None:
        if r is None:
            return None
        return {
            "id": r.refund_id,
            "amount": self.money(r.amount),
            "currency": self.currency,
            "status": r.status,
            "cause": r.cause,
            "createdAt": timestamp(getattr(r, "created_at", None)),
            "method": r.method,
            "attempt": r.attempt,
            "payoutReference": r.payout_reference,
            "failureReason": r.failure_reason,
        }

    def summary(self, v: model.InvoiceVersion) -> dict[str, Any]:
        return {
            "version": v.version,
            "grossTotal": self.money(v.gross),
            "netTotal": self.money(v.net),
            "vatTotal": self.money(v.vat),
            "taxes": self.taxes(v.tax_amounts()),
        }

    def correction(self, result: CorrectionResult, dry_run: bool) -> dict[str, Any]:
        return {
            "dryRun": dry_run,
            "changed": result.changed,
            "invoiceReference": result.invoice_reference,
            "version": result.after.version,
            "creditNoteReference": result.credit_note.reference if result.credit_note else None,
            "before": self.summary(result.before),
            "after": self.summary(result.after),
            "refund": self.refund(result.refund),
        }

    def event(self, effects: Effects) -> dict[str, Any]:
        """A cancellation, return, goodwill or payment: its reference, the order, any refund."""
        return {
            "reference": effects.reference,
            "order": self.order_body(),
            "refund": self.refund(effects.refund),
        }

    def journal_entry(self, entry: ledger.JournalEntry) -> dict[str, Any]:
        return {
            "id": entry.entry_id,
            "kind": entry.kind,
            "documentReference": entry.document_reference,
            "documentDate": entry.document_date,
            "createdAt": timestamp(getattr(entry, "created_at", None)),
            "lines": [
                {
                    "account": ledger.account_name(line),
                    "debit": self.money(line.debit),
                    "credit": self.money(line.credit),
                }
                for line in entry.lines
            ],
        }
