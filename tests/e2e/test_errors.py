"""Errors over HTTP (SPEC sections 3, 4 and 8): every one is problem+json naming its fields.

Each problem carries the request id that the response's X-Request-ID header carries, so a
client can quote it to support.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from werkzeug.test import TestResponse

from tests import factories
from tests.e2e.conftest import BASE, Api, fields_of, problem
from tests.factories import item

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "requestId", "errors"}


def refused(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """A problem+json with this status and code, quoting the response's request id."""
    body = problem(response, status, code)
    assert set(body) == PROBLEM_KEYS
    assert body["requestId"] == response.headers["X-Request-ID"]
    assert body["requestId"]
    return body


def field_error(response: TestResponse, field: str, code: str) -> dict[str, Any]:
    """A 422 naming this field with this error code; returns that field error."""
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    # A problem with one kind of field error may be named after it; otherwise it is generic.
    refused(response, 422, body["code"])
    assert body["code"] in ("validation-failed", code)
    matching = [e for e in body["errors"] if e["field"] == field]
    assert matching, body["errors"]
    assert matching[0]["code"] == code
    return matching[0]


def raw_post(api: Api, path: str, data: bytes | str, content_type: str) -> TestResponse:
    return api.client.post(path, data=data, content_type=content_type, headers=api.headers)


def order_with(**fields: Any) -> dict[str, Any]:
    return factories.OrderFactory(**fields)


# --- transport: JSON, media type, size, routes ------------------------------------------


def test_malformed_json_is_a_400(api: Api) -> None:
    response = raw_post(api, api.orders_path(), '{"orderReference": ', "application/json")

    body = refused(response, 400, "malformed-json")

    assert body["errors"] == []


def test_nan_is_not_json_and_is_a_400(api: Api) -> None:
    text = json.dumps(order_with(), default=str).replace('"EUR"', "NaN")

    refused(raw_post(api, api.orders_path(), text, "application/json"), 400, "malformed-json")


def test_a_body_that_is_not_json_is_a_415(api: Api) -> None:
    text = json.dumps(order_with(), default=str)

    refused(raw_post(api, api.orders_path(), text, "text/plain"), 415, "unsupported-media-type")


def test_a_form_body_is_a_415(api: Api) -> None:
    response = raw_post(
        api, api.orders_path(), "orderReference=A1", "application/x-www-form-urlencoded"
    )

    refused(response, 415, "unsupported-media-type")


def test_a_body_over_one_mebibyte_is_a_413(api: Api) -> None:
    padding = "x" * (1024 * 1024)
    text = json.dumps({**order_with(), "additionalData": {"padding": padding}}, default=str)
    assert len(text) > 1024 * 1024

    refused(raw_post(api, api.orders_path(), text, "application/json"), 413, "payload-too-large")


@pytest.mark.parametrize(
    "path",
    [
        "/nowhere",
        "/accounting/v1/nowhere",
        f"{BASE}/1000/customers/TFI2021072801/orders/ORD1/shipments",
    ],
)
def test_an_unknown_path_is_a_404_problem(api: Api, path: str) -> None:
    refused(api.get(path), 404, "not-found")


def test_an_unknown_order_is_a_404_problem(api: Api) -> None:
    refused(api.get(api.order_path("NOSUCHORDER")), 404, "not-found")


def test_an_unknown_invoice_of_a_known_order_is_a_404_problem(api: Api) -> None:
    order = order_with()
    assert api.create_order(order).status_code == 200

    path = f"{api.order_path(order['orderReference'])}/invoices/NOSUCHINVOICE"

    refused(api.get(path), 404, "not-found")


def test_a_wrong_method_is_a_405_problem_naming_the_allowed_ones(api: Api) -> None:
    order = order_with()
    assert api.create_order(order).status_code == 200

    response = api.client.delete(api.order_path(order["orderReference"]), headers=api.headers)

    refused(response, 405, "method-not-allowed")
    assert "GET" in response.headers["Allow"]


def test_reading_a_write_only_path_is_a_405_problem(api: Api) -> None:
    order = order_with()
    assert api.create_order(order).status_code == 200

    response = api.get(f"{api.order_path(order['orderReference'])}/payments")

    refused(response, 405, "method-not-allowed")


# --- unknown fields ---------------------------------------------------------------------


def test_an_unknown_field_is_refused_by_name(api: Api) -> None:
    response = api.create_order({**order_with(), "foo": "bar"})

    body = refused(response, 422, "validation-failed")
    assert [(e["field"], e["code"]) for e in body["errors"]] == [("foo", "unknown-field")]
    assert "foo" in body["detail"]


def test_an_unknown_field_in_an_address_is_refused_by_its_path(api: Api) -> None:
    order = order_with()
    order["billToAddress"]["foo"] = "bar"

    field_error(api.create_order(order), "billToAddress.foo", "unknown-field")


def test_an_unknown_field_in_a_position_is_refused_by_its_path(api: Api) -> None:
    order = order_with()
    order["items"][0]["foo"] = 1

    field_error(api.create_order(order), "items[0].foo", "unknown-field")


def test_unknown_fields_at_every_depth_are_listed_together(api: Api) -> None:
    order = {**order_with(), "bar": 3}
    order["billToAddress"]["foo"] = 1
    order["items"][1]["foo"] = 2

    body = refused(api.create_order(order), 422, "validation-failed")

    assert fields_of(body) == {"bar", "billToAddress.foo", "items[1].foo"}
    assert {e["code"] for e in body["errors"]} == {"unknown-field"}


ONE = {"orderItemReference": 1}
CANCELLATION = {
    "cancellationDate": "2024-06-20",
    "cancellationReason": "OUT_OF_STOCK",
    "items": [ONE],
}
RETURN = {
    "returnReference": "R1",
    "returnReason": "CUSTOMER_RETURN",
    "items": [{**ONE, "quantity": 1}],
}
GOODWILL = {
    "goodwillReference": "G1",
    "goodwillReason": "OTHER",
    "items": [{**ONE, "quantity": 1, "grossUnitPrice": 1}],
}


@pytest.mark.parametrize(
    ("use_case", "body"),
    [
        ("invoices", factories.InvoiceFactory(items=[ONE])),
        ("cancellations", CANCELLATION),
        ("returns", RETURN),
        ("goodwills", GOODWILL),
        ("payments", {"paymentProvider": "VISA"}),
    ],
)
def test_unknown_fields_are_refused_on_every_write(
    api: Api, use_case: str, body: dict[str, Any]
) -> None:
    order = order_with()
    assert api.create_order(order).status_code == 200

    path = f"{api.order_path(order['orderReference'])}/{use_case}"

    field_error(api.post(path, {**body, "foo": 1}), "foo", "unknown-field")
    assert api.order(order["orderReference"])["version"] == 1


@pytest.mark.parametrize(
    ("use_case", "body", "former"),
    [
        ("cancellations", {**CANCELLATION, "reason": "OUT_OF_STOCK"}, "reason"),
        ("cancellations", {**CANCELLATION, "cancellationReference": "C1"}, "cancellationReference"),
        ("returns", {**RETURN, "reason": "CUSTOMER_RETURN"}, "reason"),
        ("goodwills", {**GOODWILL, "reason": "OTHER"}, "reason"),
        ("goodwills", {**GOODWILL, "items": [{**ONE, "grossAmount": 1}]}, "items[0].grossAmount"),
        ("payments", {"paymentProvider": "VISA", "amount": 1}, "amount"),
        ("payments", {"provider": "VISA"}, "provider"),
    ],
)
def test_the_names_used_before_riverty_s_are_unknown_fields(
    api: Api, use_case: str, body: dict[str, Any], former: str
) -> None:
    order = order_with()
    assert api.create_order(order).status_code == 200

    path = f"{api.order_path(order['orderReference'])}/{use_case}"

    field_error(api.post(path, body), former, "unknown-field")
    assert api.order(order["orderReference"])["version"] == 1


def test_an_unknown_field_in_a_correction_is_refused_by_its_path(api: Api) -> None:
    order, invoice = api.invoiced_order()
    body = factories.correction(order, invoice)
    body["invoice"] = {**invoice, "foo": 1}

    response = api.correct(order["orderReference"], invoice["invoiceReference"], body)

    field_error(response, "invoice.foo", "unknown-field")


# --- every field error at once ----------------------------------------------------------


def test_every_field_error_is_listed_at_once(api: Api) -> None:
    order = order_with(currency="eur", orderType="BOAT")
    order["items"][0]["vatType"] = "HIGH"

    body = refused(api.create_order(order), 422, "validation-failed")

    assert fields_of(body) == {"currency", "orderType", "items[0].vatType"}
    for field in ("currency", "orderType", "items[0].vatType"):
        assert field in body["detail"]


def test_every_amount_error_of_every_position_is_listed_at_once(api: Api) -> None:
    broken_vat = item(2, "23.80")
    broken_vat["vatAmount"] = Decimal("1.00")
    order = order_with(
        items=[item(1, "11.999"), broken_vat, item(3, "10.00", "5.555")],
    )

    body = refused(api.create_order(order), 422, "validation-failed")

    assert {(e["field"], e["code"]) for e in body["errors"]} == {
        ("items[0].grossUnitPrice", "too-many-decimals"),
        ("items[1].vatAmount", "vat-amount-mismatch"),
        ("items[2].vatPercent", "too-many-decimals"),
    }


def test_missing_required_fields_are_all_named(api: Api) -> None:
    order = order_with()
    for name in ("currency", "orderDate"):
        del order[name]
    del order["items"][0]["grossUnitPrice"]

    body = refused(api.create_order(order), 422, "validation-failed")

    assert fields_of(body) == {"currency", "orderDate", "items[0].grossUnitPrice"}
    assert {e["code"] for e in body["errors"]} == {"required"}


# --- amounts and the currency's decimals ------------------------------------------------


def test_more_decimals_than_eur_allows_is_refused(api: Api) -> None:
    response = api.create_order(order_with(items=[item(1, "11.999")]))

    error = field_error(response, "items[0].grossUnitPrice", "too-many-decimals")
    assert "EUR" in error["message"]


def test_jpy_amounts_may_not_have_decimals(api: Api) -> None:
    response = api.create_order(order_with(currency="JPY", items=[item(1, "1190.5")]))

    error = field_error(response, "items[0].grossUnitPrice", "too-many-decimals")
    assert "JPY" in error["message"]


def test_whole_jpy_amounts_are_accepted(api: Api) -> None:
    position = item(1, "1190")
    # 1190 x 19 / 119 = 190 exactly
    position["vatAmount"] = Decimal(190)

    response = api.create_order(order_with(currency="JPY", items=[position]))

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["totals"]["gross"] == 1190


def test_kwd_amounts_may_have_three_decimals(api: Api) -> None:
    position = item(1, "11.905")
    # 11.905 x 19 / 119 = 1.90080 -> 1.901
    position["vatAmount"] = Decimal("1.901")

    response = api.create_order(order_with(currency="KWD", items=[position]))

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["positions"][0]["grossUnitPrice"] == Decimal("11.905")
    assert response.get_json()["totals"]["gross"] == Decimal("11.905")


def test_kwd_amounts_may_not_have_four_decimals(api: Api) -> None:
    position = item(1, "11.9051")
    position["vatAmount"] = Decimal("1.901")

    response = api.create_order(order_with(currency="KWD", items=[position]))

    field_error(response, "items[0].grossUnitPrice", "too-many-decimals")


def test_a_payment_with_more_decimals_than_the_currency_allows_is_refused(api: Api) -> None:
    order, _ = api.invoiced_order()

    response = api.pay(order["orderReference"], Decimal("10.001"))

    field_error(response, "authorizedAmount", "too-many-decimals")
    assert api.order(order["orderReference"])["totals"]["paid"] == 0


def test_a_goodwill_with_more_decimals_than_the_currency_allows_is_refused(api: Api) -> None:
    order, _ = api.invoiced_order()

    response = api.goodwill(order["orderReference"], "GW1", [(1, Decimal("1.001"))])

    field_error(response, "items[0].grossUnitPrice", "too-many-decimals")
    assert api.order(order["orderReference"])["totals"]["credited"] == 0


def test_an_amount_sent_as_a_string_is_refused(api: Api) -> None:
    order = order_with()
    order["items"][0]["grossUnitPrice"] = "11.90"

    field_error(api.create_order(order), "items[0].grossUnitPrice", "invalid")


# --- vatAmount against price and rate ---------------------------------------------------


def test_a_vat_amount_that_does_not_match_price_and_rate_is_refused_with_both_values(
    api: Api,
) -> None:
    position = item(1, "11.90")
    position["vatAmount"] = Decimal("1.50")

    response = api.create_order(order_with(items=[position]))

    body = refused(response, 422, "vat-amount-mismatch")
    assert fields_of(body) == {"items[0].vatAmount"}
    message = body["errors"][0]["message"]
    # The client's value and the one 11.90 at 19 % gives (11.90 x 19 / 119 = 1.90).
    assert "1.50" in message
    assert "1.90" in message


def test_a_vat_amount_one_cent_off_is_tolerated(api: Api) -> None:
    position = item(1, "11.90")
    position["vatAmount"] = Decimal("1.91")

    response = api.create_order(order_with(items=[position]))

    assert response.status_code == 200, response.get_json()


def test_a_vat_amount_two_cents_off_is_refused(api: Api) -> None:
    position = item(1, "11.90")
    position["vatAmount"] = Decimal("1.88")

    field_error(
        api.create_order(order_with(items=[position])), "items[0].vatAmount", "vat-amount-mismatch"
    )


def test_a_vat_amount_of_the_wrong_position_is_named_by_its_index(api: Api) -> None:
    position = item(2, "23.80")
    position["vatAmount"] = Decimal("1.90")

    response = api.create_order(order_with(items=[item(1, "11.90"), position]))

    body = refused(response, 422, "vat-amount-mismatch")
    assert fields_of(body) == {"items[1].vatAmount"}


# --- other position rules of SPEC section 3 ---------------------------------------------


def test_a_discount_with_a_positive_price_is_refused(api: Api) -> None:
    response = api.create_order(order_with(items=[item(1, "5.00", positionType="DISCOUNT")]))

    field_error(response, "items[0].grossUnitPrice", "discount-must-be-negative")


def test_a_taxless_position_needs_a_zero_rate(api: Api) -> None:
    position = item(1, "11.90")
    position["vatType"] = "TAXLESS"

    field_error(
        api.create_order(order_with(items=[position])), "items[0].vatPercent", "rate-must-be-zero"
    )


def test_a_position_reference_may_appear_only_once_in_an_order(api: Api) -> None:
    response = api.create_order(order_with(items=[item(1), item(1, "23.80")]))

    field_error(response, "items[1].orderItemReference", "duplicate-position")


# --- dates and quantities ---------------------------------------------------------------


@pytest.mark.parametrize(
    "order_date", ["2024-06-01T10:15:30Z", "2024-06-01T10:15:30.123+02:00", "2024-06-01T00:00:00"]
)
def test_a_datetime_order_date_is_accepted(api: Api, order_date: str) -> None:
    response = api.create_order(order_with(orderDate=order_date))

    assert response.status_code == 200, response.get_json()


def test_a_datetime_invoice_date_keeps_its_date(api: Api) -> None:
    order = order_with()
    assert api.create_order(order).status_code == 200
    invoice = factories.InvoiceFactory(invoiceDate="2024-06-10T23:30:00+02:00")

    response = api.invoice(order["orderReference"], invoice)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["versions"][0]["invoiceDate"] == "2024-06-10"


def test_an_impossible_date_is_refused(api: Api) -> None:
    field_error(api.create_order(order_with(orderDate="2024-02-30")), "orderDate", "invalid")


def test_a_fractional_quantity_is_accepted(api: Api) -> None:
    response = api.create_order(order_with(items=[item(1, "11.90", quantity="2.5")]))

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["positions"][0]["quantity"] == Decimal("2.5")
    # 2.5 x 11.90 = 29.75
    assert body["totals"]["gross"] == Decimal("29.75")


def test_a_quantity_with_three_decimals_is_accepted_and_its_gross_rounded_half_up(
    api: Api,
) -> None:
    response = api.create_order(order_with(items=[item(1, "11.90", quantity="1.125")]))

    assert response.status_code == 200, response.get_json()
    # 1.125 x 11.90 = 13.3875 -> 13.39
    assert response.get_json()["totals"]["gross"] == Decimal("13.39")


def test_a_quantity_with_four_decimals_is_refused(api: Api) -> None:
    response = api.create_order(order_with(items=[item(1, "11.90", quantity="1.2345")]))

    field_error(response, "items[0].quantity", "too-many-decimals")


@pytest.mark.parametrize("quantity", [Decimal(0), Decimal(-1)])
def test_a_quantity_must_be_positive(api: Api, quantity: Decimal) -> None:
    order = order_with()
    order["items"][0]["quantity"] = quantity

    field_error(api.create_order(order), "items[0].quantity", "invalid")
