"""Turning parsed request bodies into domain specs, checking amounts against the currency."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from app.domain.errors import FieldError, field_errors
from app.domain.model import (
    CreditItem,
    InvoiceSpec,
    ItemSpec,
    order_amount_errors,
    position_amount_errors,
)
from app.domain.money import (
    decimals_of,
    exponent,
    quantity_to_milli,
    rate_to_bp,
    to_major,
    to_minor,
)
from app.domain.tax import ZERO_RATE_TYPES, unit_vat_disagrees

ITEM_FIELDS = {
    "orderItemReference",
    "productId",
    "description",
    "quantity",
    "grossUnitPrice",
    "vatPercent",
    "vatAmount",
    "vatType",
    "positionType",
}
HEADER_EXCLUDED = {"items", "orderReference", "currency", "customerNumber"}


def jsonable(value: Any) -> Any:
    """Dates to ISO strings and Decimals to strings, recursively, for JSON columns."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def amount_errors(value: Decimal, currency: str, path: str) -> list[FieldError]:
    places = exponent(currency)
    if decimals_of(value) > places:
        return [FieldError(path, "too-many-decimals", f"{currency} allows {places} decimals")]
    return []


def minor(value: Decimal, currency: str, path: str) -> int:
    """An amount in minor units, refused when it has more decimals than the currency."""
    errors = amount_errors(value, currency, path)
    if errors:
        raise field_errors(*errors)
    return to_minor(value, currency)


def item_specs(items: list[dict[str, Any]], currency: str, prefix: str) -> list[ItemSpec]:
    """Positions as sent, every amount and VAT problem reported at once.

    A price below zero only on a discount; every amount within what an order may hold
    (`MAX_ORDER_GROSS`), so that no sum of them ever leaves the database's BIGINT.
    """
    errors: list[FieldError] = []
    specs: list[ItemSpec] = []
    seen: set[int] = set()
    for i, item in enumerate(items):
        path = f"{prefix}[{i}]"
        ref = item["orderItemReference"]
        if ref in seen:
            errors.append(
                FieldError(
                    f"{path}.orderItemReference",
                    "duplicate-position",
                    f"position {ref} appears twice",
                )
            )
        seen.add(ref)
        price, percent = item["grossUnitPrice"], item["vatPercent"]
        item_errors = amount_errors(price, currency, f"{path}.grossUnitPrice")
        if decimals_of(percent) > 2:
            item_errors.append(
                FieldError(f"{path}.vatPercent", "too-many-decimals", "at most 2 decimals")
            )
        if item["vatType"] in ZERO_RATE_TYPES and percent != 0:
            item_errors.append(
                FieldError(
                    f"{path}.vatPercent",
                    "rate-must-be-zero",
                    f"{item['vatType']} needs vatPercent 0",
                )
            )
        if item["positionType"] == "DISCOUNT" and price > 0:
            item_errors.append(
                FieldError(
                    f"{path}.grossUnitPrice",
                    "discount-must-be-negative",
                    "a DISCOUNT line has a negative price",
                )
            )
        errors.extend(item_errors)
        if item_errors:
            continue
        unit_gross = to_minor(price, currency)
        rate_bp = rate_to_bp(percent)
        if "vatAmount" in item:
            errors.extend(
                _vat_amount_errors(
                    item["vatAmount"], unit_gross, rate_bp, currency, f"{path}.vatAmount"
                )
            )
        extra = {k: v for k, v in item.items() if k not in ITEM_FIELDS}
        spec = ItemSpec(
            item_ref=ref,
            quantity_milli=quantity_to_milli(item["quantity"]),
            unit_gross=unit_gross,
            rate_bp=rate_bp,
            vat_type=item["vatType"],
            position_type=item["positionType"],
            product_id=item.get("productId"),
            description=item.get("description"),
            extra=jsonable(extra),
        )
        errors.extend(position_amount_errors(spec, currency, path))
        specs.append(spec)
    if not errors:
        errors.extend(order_amount_errors(specs, currency, prefix))
    if errors:
        raise field_errors(*errors)
    return specs


def _vat_amount_errors(
    sent: Decimal, unit_gross: int, rate_bp: int, currency: str, path: str
) -> list[FieldError]:
    errors = amount_errors(sent, currency, path)
    if errors:
        return errors
    expected = unit_vat_disagrees(to_minor(sent, currency), unit_gross, rate_bp)
    if expected is not None:
        shown = to_major(expected, currency)
        return [
            FieldError(path, "vat-amount-mismatch", f"sent {sent}, but price and rate give {shown}")
        ]
    return []


def credit_items(items: list[dict[str, Any]], currency: str) -> list[CreditItem]:
    """A return's or goodwill's lines as sent, in minor units; every amount problem at once."""
    errors: list[FieldError] = []
    credits: list[CreditItem] = []
    for i, item in enumerate(items):
        path = f"items[{i}]"
        amounts = {}
        for name in ("grossUnitPrice", "vatAmount"):
            if name in item:
                errors.extend(amount_errors(item[name], currency, f"{path}.{name}"))
                amounts[name] = to_minor(item[name], currency)
        percent = item.get("vatPercent")
        if percent is not None and decimals_of(percent) > 2:
            errors.append(
                FieldError(f"{path}.vatPercent", "too-many-decimals", "at most 2 decimals")
            )
        credits.append(
            CreditItem(
                item_ref=item["orderItemReference"],
                quantity_milli=quantity_to_milli(item["quantity"]),
                unit_gross=amounts.get("grossUnitPrice"),
                unit_vat=amounts.get("vatAmount"),
                rate_bp=None if percent is None else rate_to_bp(percent),
                vat_type=item.get("vatType"),
            )
        )
    if errors:
        raise field_errors(*errors)
    return credits


def header_of(order_body: dict[str, Any]) -> dict[str, Any]:
    """Everything about an order that is not its positions or identity, JSON-ready."""
    return jsonable({k: v for k, v in order_body.items() if k not in HEADER_EXCLUDED})


def invoice_spec(body: dict[str, Any]) -> InvoiceSpec:
    fields = {
        k: v
        for k, v in body.items()
        if k not in ("invoiceReference", "invoiceDate", "dueDate", "items")
    }
    return InvoiceSpec(
        invoice_reference=body["invoiceReference"],
        invoice_date=body["invoiceDate"],
        due_date=body.get("dueDate"),
        item_refs=tuple(i["orderItemReference"] for i in body["items"]),
        fields=jsonable(fields),
    )
