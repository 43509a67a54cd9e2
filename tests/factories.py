"""Request bodies as clients send them, built with factory-boy."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory


class AddressFactory(factory.DictFactory):
    salutation = "Mr"
    firstName = "Max"
    lastName = "Mustermann"
    street = "Beispielstr."
    streetNumber = "13A"
    postalCode = "48213"
    postalPlace = "Muenster"
    countryCode = "DE"
    language = "de"
    email = "max.mustermann@example.com"


class ItemFactory(factory.DictFactory):
    """A 19 % article at 11.90 gross (1.90 VAT per unit)."""

    orderItemReference = factory.Sequence(lambda n: n + 1)
    productId = factory.Sequence(lambda n: f"SKU-{n + 1}")
    description = "Blumentopf XL"
    quantity = Decimal(1)
    grossUnitPrice = Decimal("11.90")
    vatPercent = Decimal(19)
    vatAmount = Decimal("1.90")
    vatType = "NORMAL"
    positionType = "SALES_ARTICLE"


def item(ref: int, price: str = "11.90", rate: str = "19", quantity: str = "1",
         **extra: Any) -> dict[str, Any]:  # fmt: skip
    """A position with its unit VAT computed from price and rate (rounded half up)."""
    gross, percent = Decimal(price), Decimal(rate)
    vat = (gross * percent / (100 + percent)).quantize(Decimal("0.01"), "ROUND_HALF_UP")
    vat_type = "NORMAL" if percent >= 10 else ("REDUCED" if percent > 0 else "TAXLESS")
    return ItemFactory(orderItemReference=ref, grossUnitPrice=gross, vatPercent=percent,
                       vatAmount=vat, quantity=Decimal(quantity), vatType=vat_type,
                       **extra)  # fmt: skip


class OrderFactory(factory.DictFactory):
    orderReference = factory.Sequence(lambda n: f"ORD{n:08d}")
    currency = "EUR"
    orderType = "PHYSICAL_GOODS"
    orderDate = "2020-01-01"
    orderChannel = "ECOM"
    supplyingCountry = "DE"
    vatDeclarationCountry = "DE"
    processAfterDunning = "HAND_OVER_FOR_DEBT_COLLECTION"
    billToAddress = factory.SubFactory(AddressFactory)
    items = factory.LazyFunction(lambda: [item(1), item(2, "23.80")])


class InvoiceFactory(factory.DictFactory):
    invoiceReference = factory.Sequence(lambda n: f"INV{n:08d}")
    invoiceDate = "2024-06-10"
    dueDate = "2024-07-10"
    dispatchDate = "2024-06-09"
    shipmentReference = "S01234567"
    items = factory.LazyFunction(lambda: [{"orderItemReference": 1}, {"orderItemReference": 2}])


def correction(order: dict[str, Any], invoice: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A PUT body restating the order and invoice as sent, with changes applied."""
    body: dict[str, Any] = {"invoice": dict(invoice), "order": dict(order)}
    body.update(changes)
    return body
