"""The commands the order use cases take, and their amounts checked against the currency.

A command is a request as the API parsed it: typed, with amounts as sent (exact Decimals in
major units), since how many decimals an amount may have is the currency's to say, and for a
return, goodwill or payment that is the order's. A refusal names the command's attribute by
its path (`order.items[1].unit_gross`); the API names it as the body does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from app.domain.bank_account import BankAccount
from app.domain.errors import FieldError, field_errors
from app.domain.model import (
    CreditItem,
    InvoiceSpec,
    ItemSpec,
    OrderHeader,
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


@dataclass(frozen=True)
class OrderItem:
    """A position as sent: its unit price and the VAT of one unit in major units."""

    item_ref: int
    quantity: Decimal
    unit_gross: Decimal
    vat_percent: Decimal
    unit_vat: Decimal
    vat_type: str
    position_type: str
    product_id: str | None = None
    description: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # kept as sent, JSON-ready


@dataclass(frozen=True)
class CreateOrder:
    """An order as sent; a correction restates the whole order in the same form."""

    order_reference: str
    currency: str
    items: tuple[OrderItem, ...]
    header: OrderHeader  # everything else about the order: what rules read, and all as sent
    customer_number: str | None = None
    vat_id: str | None = None  # the customer's, for reverse charge


@dataclass(frozen=True)
class CorrectInvoice:
    """The invoice and the whole order as they should now read (SPEC 6)."""

    invoice: InvoiceSpec
    order: CreateOrder
    credit_note_reference: str | None = None


@dataclass(frozen=True)
class Cancel:
    """Whole open positions that will never be invoiced."""

    item_refs: tuple[int, ...]
    reason: str
    when: date
    bank_details: BankAccount | None = None
    invoice_reference: str | None = None


@dataclass(frozen=True)
class CreditLine:
    """A returned or goodwilled position as sent; what it names besides its quantity (and a
    goodwill's price) is checked against the position as invoiced."""

    item_ref: int
    quantity: Decimal
    unit_gross: Decimal | None = None
    unit_vat: Decimal | None = None
    vat_percent: Decimal | None = None
    vat_type: str | None = None


@dataclass(frozen=True)
class ReturnItems:
    """Whole or partial quantities of invoiced positions taken back."""

    return_reference: str
    reason: str
    items: tuple[CreditLine, ...]
    when: date | None = None
    bank_details: BankAccount | None = None
    invoice_reference: str | None = None


@dataclass(frozen=True)
class GrantGoodwill:
    """A gross amount credited on invoiced positions."""

    goodwill_reference: str
    reason: str
    items: tuple[CreditLine, ...]
    when: date | None = None
    credit_date: date | None = None
    bank_details: BankAccount | None = None
    invoice_reference: str | None = None


@dataclass(frozen=True)
class ReceivePayment:
    """Money received; without an amount, everything that is open."""

    provider: str
    amount: Decimal | None = None
    reference: str | None = None
    when: date | None = None


def amount_errors(value: Decimal, currency: str, path: str) -> list[FieldError]:
    places = exponent(currency)
    if decimals_of(value) > places:
        return [FieldError(path, "too-many-decimals", f"{currency} allows {places} decimals")]
    return []


def percent_errors(value: Decimal | None, path: str) -> list[FieldError]:
    """A VAT rate in percent has at most 2 decimals."""
    if value is not None and decimals_of(value) > 2:
        return [FieldError(path, "too-many-decimals", "at most 2 decimals")]
    return []


def minor(value: Decimal, currency: str, path: str) -> int:
    """An amount in minor units, refused when it has more decimals than the currency."""
    errors = amount_errors(value, currency, path)
    if errors:
        raise field_errors(*errors)
    return to_minor(value, currency)


def item_specs(items: Sequence[OrderItem], currency: str, path: str) -> list[ItemSpec]:
    """Positions as sent, every amount and VAT problem reported at once.

    A price below zero only on a discount; every amount within what an order may hold
    (`MAX_ORDER_GROSS`), so that no sum of them ever leaves the database's BIGINT.
    """
    errors: list[FieldError] = []
    specs: list[ItemSpec] = []
    seen: set[int] = set()
    for i, item in enumerate(items):
        at = f"{path}[{i}]"
        if item.item_ref in seen:
            message = f"position {item.item_ref} appears twice"
            errors.append(FieldError(f"{at}.item_ref", "duplicate-position", message))
        seen.add(item.item_ref)
        price_and_rate = _price_and_rate_errors(item, currency, at)
        errors.extend(price_and_rate)
        if price_and_rate:
            continue
        spec = ItemSpec(
            item_ref=item.item_ref,
            quantity_milli=quantity_to_milli(item.quantity),
            unit_gross=to_minor(item.unit_gross, currency),
            rate_bp=rate_to_bp(item.vat_percent),
            vat_type=item.vat_type,
            position_type=item.position_type,
            product_id=item.product_id,
            description=item.description,
            extra=item.extra,
        )
        errors.extend(_unit_vat_errors(item.unit_vat, spec, currency, f"{at}.unit_vat"))
        errors.extend(position_amount_errors(spec, currency, at))
        specs.append(spec)
    if not errors:
        errors.extend(order_amount_errors(specs, currency, path))
    if errors:
        raise field_errors(*errors)
    return specs


def _price_and_rate_errors(item: OrderItem, currency: str, path: str) -> list[FieldError]:
    errors = amount_errors(item.unit_gross, currency, f"{path}.unit_gross")
    errors.extend(percent_errors(item.vat_percent, f"{path}.vat_percent"))
    if item.vat_type in ZERO_RATE_TYPES and item.vat_percent != 0:
        message = f"{item.vat_type} needs vatPercent 0"
        errors.append(FieldError(f"{path}.vat_percent", "rate-must-be-zero", message))
    if item.position_type == "DISCOUNT" and item.unit_gross > 0:
        message = "a DISCOUNT line has a negative price"
        errors.append(FieldError(f"{path}.unit_gross", "discount-must-be-negative", message))
    return errors


def _unit_vat_errors(sent: Decimal, spec: ItemSpec, currency: str, path: str) -> list[FieldError]:
    errors = amount_errors(sent, currency, path)
    if errors:
        return errors
    expected = unit_vat_disagrees(to_minor(sent, currency), spec.unit_gross, spec.rate_bp)
    if expected is not None:
        shown = to_major(expected, currency)
        return [
            FieldError(path, "vat-amount-mismatch", f"sent {sent}, but price and rate give {shown}")
        ]
    return []


def credit_items(items: Sequence[CreditLine], currency: str) -> list[CreditItem]:
    """A return's or goodwill's lines as sent, in minor units; every amount problem at once."""
    errors: list[FieldError] = []
    for i, item in enumerate(items):
        for name, amount in (("unit_gross", item.unit_gross), ("unit_vat", item.unit_vat)):
            if amount is not None:
                errors.extend(amount_errors(amount, currency, f"items[{i}].{name}"))
        errors.extend(percent_errors(item.vat_percent, f"items[{i}].vat_percent"))
    if errors:
        raise field_errors(*errors)
    return [
        CreditItem(
            item_ref=item.item_ref,
            quantity_milli=quantity_to_milli(item.quantity),
            unit_gross=None if item.unit_gross is None else to_minor(item.unit_gross, currency),
            unit_vat=None if item.unit_vat is None else to_minor(item.unit_vat, currency),
            rate_bp=None if item.vat_percent is None else rate_to_bp(item.vat_percent),
            vat_type=item.vat_type,
        )
        for item in items
    ]
