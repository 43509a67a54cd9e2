"""Request bodies for the concurrency tests, built without factory-boy's shared counters.

factory-boy's sequences are not meant for many threads, so every body a thread sends is built
here from plain dicts (or built by the factories in the main thread beforehand).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from tests.factories import OrderFactory, item

Body = dict[str, Any]

CENT = Decimal("0.01")
INVOICE_FIELDS: Body = {
    "invoiceDate": "2024-06-10",
    "dueDate": "2024-07-10",
    "dispatchDate": "2024-06-09",
    "shipmentReference": "S01234567",
}
ITEM_FIELDS = (
    "orderItemReference",
    "productId",
    "description",
    "quantity",
    "grossUnitPrice",
    "vatPercent",
    "vatType",
    "positionType",
)


def new_order(items: list[tuple[int, str, str, str]], **fields: Any) -> Body:
    """An order body (main thread only) with positions given as (ref, price, rate, quantity)."""
    return cast(Body, OrderFactory(items=[item(*i) for i in items], **fields))


def unit_vat(price: Decimal, rate: Decimal) -> Decimal:
    """The VAT of one unit, as a client computes it (rounded half up to the cent)."""
    return (price * rate / (100 + rate)).quantize(CENT, ROUND_HALF_UP)


def repriced(item: Body, price: Decimal) -> Body:
    """An order item at another gross unit price, its vatAmount recomputed."""
    rate = Decimal(str(item["vatPercent"]))
    return {**item, "grossUnitPrice": price, "vatAmount": unit_vat(price, rate)}


def invoice(reference: str, refs: list[int]) -> Body:
    """An invoice for these positions; every invoice of a test carries the same dates."""
    return {
        **INVOICE_FIELDS,
        "invoiceReference": reference,
        "items": [{"orderItemReference": r} for r in refs],
    }


def cancellation(refs: list[int]) -> Body:
    """A cancellation of these positions, as Riverty's clients send it."""
    return {
        "cancellationDate": "2024-06-20",
        "cancellationReason": "OUT_OF_STOCK",
        "items": [{"orderItemReference": r} for r in refs],
    }


def correction(order: Body, invoice_body: Body, items: list[Body]) -> Body:
    """A PUT body: the invoice as sent and the whole order as it should now read."""
    return {"invoice": dict(invoice_body), "order": {**order, "items": items}}


def reprice_items(order: Body, prices: dict[int, Decimal]) -> list[Body]:
    """The order's items as created, with new gross unit prices for some positions."""
    return [
        repriced(i, prices[i["orderItemReference"]]) if i["orderItemReference"] in prices else i
        for i in order["items"]
    ]


def restated_items(positions: list[Body], prices: dict[int, Decimal]) -> list[Body]:
    """The positions of an order as a GET read them, as order items of a correction."""
    items = []
    for p in positions:
        item = {name: p[name] for name in ITEM_FIELDS}
        price = prices.get(p["orderItemReference"], Decimal(str(p["grossUnitPrice"])))
        items.append(repriced(item, price))
    return items
