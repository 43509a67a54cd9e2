"""A refused value is named in the domain's words and answered in the body's (app/api/errors.py)."""

from __future__ import annotations

import pytest

from app.api.errors import WIRE_NAMES, wire_path


@pytest.mark.parametrize(
    ("domain", "wire"),
    [
        ("items[1].item_ref", "items[1].orderItemReference"),
        ("items[0].quantity_milli", "items[0].quantity"),
        ("items[0].unit_gross", "items[0].grossUnitPrice"),
        ("items[0].unit_vat", "items[0].vatAmount"),
        ("items[2].vat_percent", "items[2].vatPercent"),
        ("items[0].rate_bp", "items[0].vatPercent"),
        ("items[0].vat_type", "items[0].vatType"),
        ("vat_id", "billToAddress.taxIdentificationNumber"),
        ("order.vat_id", "order.billToAddress.taxIdentificationNumber"),
        ("order.declaration_country", "order.vatDeclarationCountry"),
        ("customer_number", "customerNumber"),
        ("order.customer_number", "order.customerNumber"),
        ("order.order_reference", "order.orderReference"),
        ("invoice.invoice_reference", "invoice.invoiceReference"),
        ("invoice_reference", "invoiceReference"),
        ("invoice.invoice_date", "invoice.invoiceDate"),
        ("due_date", "dueDate"),
        ("order.items[1].quantity_milli", "order.items[1].quantity"),
        ("order.items[0].unit_gross", "order.items[0].grossUnitPrice"),
        ("credit_note_reference", "goodwillReference"),
        ("return_reference", "returnReference"),
        ("goodwill_reference", "goodwillReference"),
        ("amount", "authorizedAmount"),
        ("to_rate_bp", "toRate"),
        ("from_rate_bp", "fromRate"),
        ("end", "to"),
        ("event_types[1]", "eventTypes[1]"),
    ],
)
def test_a_domain_path_is_answered_as_the_body_names_it(domain: str, wire: str) -> None:
    assert wire_path(domain) == wire


@pytest.mark.parametrize(
    "path",
    [
        "items",
        "order.items",
        "invoice.items",
        "order.items[1]",
        "invoice",
        "order.currency",
        "Idempotency-Key",
        "X-Request-ID",
        "businessCode",
        "fromRate",
        "items[0].grossUnitPrice",
    ],
)
def test_a_path_already_in_the_body_s_words_is_kept(path: str) -> None:
    assert wire_path(path) == path


def test_no_domain_name_is_also_a_name_of_the_body() -> None:
    assert set(WIRE_NAMES).isdisjoint(WIRE_NAMES.values())
