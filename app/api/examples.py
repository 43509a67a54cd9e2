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
REFUND_ID = "0f5b8e2c-3d4a-4b6e-9c71-2a8d5e6f7a90"

WEBHOOK_ID = "6c1d2b9e-7f3a-4e5d-8b2c-1a9f0e4d3c7b"

PATH_PARAMETERS = {
    "businessCode": ("The legal entity (tenant), e.g. 1000 for DE/EUR.", BUSINESS),
    "customerNumber": ("The merchant's customer identifier (1-30).", CUSTOMER),
    "orderReference": ("The merchant's order reference (1-16).", ORDER_REFERENCE),
    "invoiceReference": ("As sent when the invoice was created.", INVOICE_REFERENCE),
    "refundId": ("The refund's id, as `GET .../refunds` lists it.", REFUND_ID),
    "webhookId": ("The webhook's id, as `POST .../webhooks` answered it.", WEBHOOK_ID),
    "version": ("The invoice's version, 1 and up, as the invoice read lists them.", 2),
    "creditNoteReference": (
        "The credit note's reference: the correction's goodwillReference, or the one answered.",
        CREDIT_NOTE_REFERENCE,
    ),
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

# Riverty's published samples for the other writes, on the seed's position 1 (11.90 at 19 %).
CANCELLATION = {
    "cancellationDate": "2018-03-21T00:00:00.0000000+00:00",
    "cancellationReason": "OUT_OF_STOCK",
    "invoiceReference": INVOICE_REFERENCE,
    "items": [{"orderItemReference": 1}],
}

RETURN = {
    "invoiceReference": INVOICE_REFERENCE,
    "returnDate": "2018-09-11",
    "returnReason": "CUSTOMER_RETURN",
    "returnReference": "RDE12345678901",
    "items": [
        {
            "grossUnitPrice": Decimal("11.9"),
            "orderItemReference": 1,
            "quantity": 1,
            "vatAmount": Decimal("1.9"),
            "vatPercent": 19,
            "vatType": "NORMAL",
        }
    ],
    "bankDetails": {
        "bic": "GENODEM1MSC",
        "iban": "DE51100100501234567890",
        "accountOwner": "Max Mustermann",
    },
}

GOODWILL = {
    "creditDate": "2018-11-21",
    "goodwillDate": "2018-11-21",
    "goodwillReason": "ARTICLE_DEFECTIVE",
    "goodwillReference": "GDE12345678902",
    "invoiceReference": INVOICE_REFERENCE,
    "items": [
        {
            "grossUnitPrice": Decimal("2.00"),
            "orderItemReference": 1,
            "quantity": 1,
            "vatAmount": Decimal("0.32"),
            "vatPercent": 19,
            "vatType": "NORMAL",
        }
    ],
}

PAYMENT = {"authorizedAmount": Decimal("11.90"), "paymentProvider": "VISA"}

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

ORDER_PATH = "/customers/{customerNumber}/orders/{orderReference}"
INVOICE_PATH = ORDER_PATH + "/invoices/{invoiceReference}"
UPDATE = ("Seed 001: update the invoice (the customer's address changed)", CORRECTION)
UPDATED = ("Seed 001: version 2 to the new address, amounts unchanged", CORRECTION_RESPONSE)

# Request bodies by (path after the business prefix, method).
REQUESTS: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("/customers/{customerNumber}/orders", "post"): ("Seed 001: the order", ORDER),
    (ORDER_PATH + "/invoices", "post"): ("Seed 001: invoice position 1", INVOICE),
    (INVOICE_PATH, "put"): UPDATE,
    (INVOICE_PATH, "post"): UPDATE,
    (ORDER_PATH + "/cancellations", "post"): ("Cancel position 1", CANCELLATION),
    (ORDER_PATH + "/returns", "post"): ("Return position 1", RETURN),
    (ORDER_PATH + "/goodwills", "post"): ("2.00 goodwill on position 1", GOODWILL),
    (ORDER_PATH + "/payments", "post"): ("Paid by card", PAYMENT),
}

# Successful answers by (path after the business prefix, method).
RESPONSES = {(INVOICE_PATH, "put"): UPDATED, (INVOICE_PATH, "post"): UPDATED}
