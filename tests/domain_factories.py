"""Domain objects built directly, without HTTP: item specs, invoice specs and orders."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import factory

from app.domain import ledger
from app.domain.model import (
    CreditItem,
    Effects,
    InvoiceSpec,
    ItemSpec,
    Order,
    OrderHeader,
    OrderIdentity,
)


def order_header(as_sent: dict[str, Any]) -> OrderHeader:
    """A header as the API parses it from these body fields."""
    order_date = as_sent.get("orderDate")
    return OrderHeader(
        as_sent["vatDeclarationCountry"],
        date.fromisoformat(order_date[:10]) if order_date else None,
        as_sent,
    )


class ItemSpecFactory(factory.Factory):
    """A 19 % article at 11.90 gross, quantity 1 (amounts in minor units)."""

    class Meta:
        model = ItemSpec

    item_ref = factory.Sequence(lambda n: n + 1)
    quantity_milli = 1000
    unit_gross = 1190
    rate_bp = 1900
    vat_type = "NORMAL"
    position_type = "SALES_ARTICLE"
    product_id = factory.LazyAttribute(lambda o: f"SKU-{o.item_ref}")
    description = "Blumentopf XL"


class InvoiceSpecFactory(factory.Factory):
    class Meta:
        model = InvoiceSpec

    invoice_reference = factory.Sequence(lambda n: f"INV{n:08d}")
    invoice_date = date(2024, 6, 10)
    due_date = date(2024, 7, 10)
    item_refs = (1, 2)
    fields = factory.LazyFunction(lambda: {"dispatchDate": "2024-06-09"})


class OrderAggregateFactory(factory.Factory):
    """An order of two 19 % positions: 1 x 11.90 and 1 x 23.80 (35.70 gross)."""

    class Meta:
        model = Order

    business_code = "1000"
    order_reference = factory.Sequence(lambda n: f"ORD{n:08d}")
    customer_number = "TFI2021072801"
    currency = "EUR"
    header = factory.LazyFunction(
        lambda: {"orderDate": "2020-01-01", "supplyingCountry": "DE", "vatDeclarationCountry": "DE"}
    )
    items = factory.LazyFunction(
        lambda: [ItemSpecFactory(item_ref=1), ItemSpecFactory(item_ref=2, unit_gross=2380)]
    )

    @classmethod
    def _adjust_kwargs(cls, **kwargs: Any) -> dict[str, Any]:
        """A header given as body fields is parsed as the API would."""
        if isinstance(kwargs.get("header"), dict):
            kwargs["header"] = order_header(kwargs["header"])
        return kwargs


def invoice_open(order: Order, **fields: Any) -> tuple[InvoiceSpec, Effects]:
    """Invoice the open positions (or those named by item_refs) on one invoice."""
    fields.setdefault("item_refs", tuple(p.item_ref for p in order.positions if p.state == "open"))
    spec = InvoiceSpecFactory(**fields)
    _invoice, effects = order.create_invoice(spec)
    return spec, effects


def returned(items: list[tuple[int, int]]) -> list[CreditItem]:
    """Return lines of (position, quantity in thousandths), naming nothing else."""
    return [CreditItem(ref, quantity_milli) for ref, quantity_milli in items]


def goodwilled(items: list[tuple[int, int]]) -> list[CreditItem]:
    """Goodwill lines of (position, gross in minor units), each one unit at that price."""
    return [CreditItem(ref, 1000, unit_gross=gross) for ref, gross in items]


def restated(order: Order, **price_changes: int) -> list[ItemSpec]:
    """The order's positions as they now read, with new unit prices by `p<ref>=minor`."""
    specs = [p.spec() for p in order.positions]
    return [
        dataclasses.replace(s, unit_gross=price_changes.get(f"p{s.item_ref}", s.unit_gross))
        for s in specs
    ]


def body_refs(order: Order) -> OrderIdentity:
    """The identity fields a correction body restates."""
    return order.identity()


def entries(effects: Effects) -> list[ledger.JournalEntry]:
    return [item for item in effects.created if isinstance(item, ledger.JournalEntry)]
