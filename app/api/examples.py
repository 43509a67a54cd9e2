"""Examples for openapi.yaml and the explorer, taken from the original's seed 001 sample.

Seed 001 ("Update invoice") corrects invoice IDE12345678901 of order ODE12345678901 of customer
TFI2021072801 in business 1000 after the customer's address changed. The explorer pre-fills
every operation with these bodies, so a user can run the whole story: create the order, invoice
it, then send the correction as a dry run. The contract tests replay them against the service.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

BUSINESS = "1000"
CUSTOMER = "TFI2021072801"
ORDER_REFERENCE = "ODE12345678901"
INVOICE_REFERENCE = "IDE12345678901"
CREDIT_NOTE_REFERENCE = "GDE12345678901"
REQUEST_ID = "23c9579b-baaf-468f-a529-f876226e183c"

PATH_PARAMETERS = {
    "business": ("businessCode: the legal entity (tenant), e.g. 1000 for DE/EUR.", BUSINESS),
    "customer": ("customerNumber: the merchant's customer identifier (1-30).", CUSTOMER),
    "order_ref": ("orderReference: the merchant's order reference (1-16).", ORDER_REFERENCE),
    "invoice_ref": ("invoiceReference: as sent when the invoice was created.", INVOICE_REFERENCE),
}

BILL_TO = {
    "salutation": "Mrs",
    "firstName": "Erika",
    "lastName": "Mustermann",
    "street": "Heidestr.",
    "streetNumber": "17",
    "postalCode": "51147",
    "postalPlace": "Koeln",
    "countryCode": "DE",
    "language": "de",
    "email": "erika.mustermann@example.com",
}

ORDER = {
    "billToAddress": BILL_TO,
    "currency": "EUR",
    "orderType": "DIGITAL_GOODS",
    "orderDate": "2015-12-10T00:00:00.0000000",
    "items": [
        {
            "grossUnitPrice": Decimal("11.9"),
            "orderItemReference": 1,
            "quantity": 1,
            "vatAmount": Decimal("1.9"),
            "vatPercent": 19,
            "vatType": "NORMAL",
            "productId": "WKD12346512A/1",
            "description": "Best wishes (Digital card)",
            "positionType": "SALES_ARTICLE",
        }
    ],
    "orderReference": ORDER_REFERENCE,
    "paymentReference": {"paymentMethodName": "INVOICE"},
    "processAfterDunning": "HAND_OVER_FOR_DEBT_COLLECTION",
    "orderChannel": "ECOM",
    "supplyingCountry": "DE",
    "vatDeclarationCountry": "DE",
}

INVOICE = {
    "dispatchDate": "2018-11-06",
    "dueDate": "2018-11-05",
    "invoiceDate": "2018-11-04",
    "invoiceReference": INVOICE_REFERENCE,
    "items": [{"orderItemReference": 1}],
    "shipmentReference": "S01234567",
}

# The seed's PUT body, as the original's public documentation prints it.
CORRECTION = {"goodwillReference": CREDIT_NOTE_REFERENCE, "invoice": INVOICE, "order": ORDER}

_TAXES = [
    {
        "declarationCountry": "DE",
        "vatType": "NORMAL",
        "vatPercent": 19,
        "net": Decimal("10.00"),
        "vat": Decimal("1.90"),
        "gross": Decimal("11.90"),
    }
]


def _summary(version: int) -> dict[str, Any]:
    return {
        "version": version,
        "grossTotal": Decimal("11.90"),
        "netTotal": Decimal("10.00"),
        "vatTotal": Decimal("1.90"),
        "taxes": _TAXES,
    }


# What the correction answers when the invoice was issued to the customer's former address:
# a credit note nullifies version 1, version 2 carries the new address, the amounts stay.
CORRECTION_RESPONSE = {
    "internalRequestId": REQUEST_ID,
    "dryRun": False,
    "changed": True,
    "invoiceReference": INVOICE_REFERENCE,
    "version": 2,
    "creditNoteReference": CREDIT_NOTE_REFERENCE,
    "before": _summary(1),
    "after": _summary(2),
    "refund": None,
}

CANCELLATION = {
    "cancellationReference": "CDE12345678901",
    "reason": "CUSTOMER_CANCELLATION",
    "items": [{"orderItemReference": 1}],
}

RETURN = {
    "returnReference": "RDE12345678901",
    "returnDate": "2018-11-20",
    "reason": "CUSTOMER_RETURN",
    "items": [{"orderItemReference": 1, "quantity": 1}],
    "bankDetails": {"iban": "DE89370400440532013000", "accountOwner": "Erika Mustermann"},
}

GOODWILL = {
    "goodwillReference": "GDE12345678902",
    "reason": "ARTICLE_DEFECTIVE",
    "items": [{"orderItemReference": 1, "grossAmount": Decimal("2.00")}],
}

PAYMENT = {"provider": "VISA", "amount": Decimal("11.90"), "paymentReference": "PAY0001"}

PROBLEM = {
    "type": "https://errors.accounting.example/gross-price-increase",
    "title": "Unprocessable Content",
    "status": 422,
    "detail": "the gross price of position 1 may be reduced, not increased",
    "code": "gross-price-increase",
    "requestId": REQUEST_ID,
    "errors": [
        {
            "field": "order.items[0].grossUnitPrice",
            "code": "gross-price-increase",
            "message": "11.9 is more than the invoiced 9.9",
        }
    ],
}

# Request bodies by (path after the business prefix, method).
REQUESTS: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("/customers/{customer}/orders", "post"): ("Seed 001: the order", ORDER),
    ("/customers/{customer}/orders/{order_ref}/invoices", "post"): (
        "Seed 001: invoice position 1",
        INVOICE,
    ),
    ("/customers/{customer}/orders/{order_ref}/invoices/{invoice_ref}", "put"): (
        "Seed 001: update the invoice (the customer's address changed)",
        CORRECTION,
    ),
    ("/customers/{customer}/orders/{order_ref}/invoices/{invoice_ref}", "post"): (
        "Seed 001: update the invoice (the customer's address changed)",
        CORRECTION,
    ),
    ("/customers/{customer}/orders/{order_ref}/cancellations", "post"): (
        "Cancel position 1",
        CANCELLATION,
    ),
    ("/customers/{customer}/orders/{order_ref}/returns", "post"): ("Return position 1", RETURN),
    ("/customers/{customer}/orders/{order_ref}/goodwills", "post"): (
        "2.00 goodwill on position 1",
        GOODWILL,
    ),
    ("/customers/{customer}/orders/{order_ref}/payments", "post"): ("Paid by card", PAYMENT),
}

# Successful answers by (path after the business prefix, method).
RESPONSES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("/customers/{customer}/orders/{order_ref}/invoices/{invoice_ref}", "put"): (
        "Seed 001: version 2 to the new address, amounts unchanged",
        CORRECTION_RESPONSE,
    ),
    ("/customers/{customer}/orders/{order_ref}/invoices/{invoice_ref}", "post"): (
        "Seed 001: version 2 to the new address, amounts unchanged",
        CORRECTION_RESPONSE,
    ),
}
