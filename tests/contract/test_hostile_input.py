"""Hostile input (SPEC sections 8 and 9): refused with a precise 4xx, never a 500.

Bodies are capped at 1 MiB and position lists at 500; JSON that no database could store (NUL
characters, lone surrogates, absurd nesting, numbers of thousands of digits) is refused before
it reaches one; an amount is judged by its exact digits. Every answer here is also checked
against openapi.yaml by the end-to-end tier's hook.

Keys of another business (404 on every path) and requests without a key (401 on every path)
are proven in tests/e2e/test_tenancy.py; the staff-only jobs are proven below.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import simplejson
from werkzeug.test import TestResponse

from app import jsoncodec
from tests import factories
from tests.e2e.conftest import BASE, Api, fields_of, new_key, problem
from tests.factories import item

MIB = 1024 * 1024


def spaced(body: Any) -> str:
    """The body as JSON text with a space after each colon, for the edits below to find."""
    return simplejson.dumps(body, use_decimal=True)


def raw(api: Api, path: str, data: bytes | str, **headers: str) -> TestResponse:
    """POST bytes exactly as given, as JSON."""
    return api.client.post(
        path, data=data, content_type="application/json", headers={**api.headers, **headers}
    )


def order_of_exactly(size: int) -> bytes:
    """A valid order whose JSON body is exactly `size` bytes (padded in additionalData)."""
    order = factories.OrderFactory(orderReference="BIG1", additionalData={"padding": ""})
    empty = jsoncodec.dumps(order).encode()
    order["additionalData"]["padding"] = "x" * (size - len(empty))
    body = jsoncodec.dumps(order).encode()
    assert len(body) == size
    return body


def items(count: int) -> list[dict[str, Any]]:
    return [{"orderItemReference": ref} for ref in range(1, count + 1)]


# --- size and length caps --------------------------------------------------------------


def test_a_body_of_exactly_one_mebibyte_is_read(api: Api) -> None:
    response = raw(api, api.orders_path(), order_of_exactly(MIB))

    assert response.status_code == 200, response.get_json()


def test_a_body_one_byte_over_one_mebibyte_is_a_413(api: Api) -> None:
    body = problem(raw(api, api.orders_path(), order_of_exactly(MIB + 1)), 413, "payload-too-large")

    assert body["errors"] == []
    problem(api.get(api.order_path("BIG1")), 404, "not-found")


def test_an_order_of_500_positions_is_accepted(api: Api) -> None:
    order = factories.OrderFactory(items=[item(ref) for ref in range(1, 501)])

    response = api.create_order(order)

    assert response.status_code == 200, response.get_json()
    assert len(response.get_json()["positions"]) == 500
    assert response.get_json()["totals"]["gross"] == Decimal("5950.00")


def test_an_order_of_501_positions_is_refused_naming_the_list(api: Api) -> None:
    order = factories.OrderFactory(items=[item(ref) for ref in range(1, 502)])

    body = problem(api.create_order(order), 422, "validation-failed")

    assert [(e["field"], e["code"]) for e in body["errors"]] == [("items", "invalid-length")]


def returned(count: int) -> list[dict[str, Any]]:
    return [{**i, "quantity": 1} for i in items(count)]


def credited(count: int) -> list[dict[str, Any]]:
    return [{**i, "quantity": 1, "grossUnitPrice": 1} for i in items(count)]


@pytest.mark.parametrize(
    ("suffix", "body"),
    [
        ("invoices", factories.InvoiceFactory(items=items(501))),
        (
            "cancellations",
            {
                "cancellationDate": "2024-06-20",
                "cancellationReason": "OUT_OF_STOCK",
                "items": items(501),
            },
        ),
        (
            "returns",
            {"returnReference": "R1", "returnReason": "CUSTOMER_RETURN", "items": returned(501)},
        ),
        (
            "goodwills",
            {"goodwillReference": "G1", "goodwillReason": "OTHER", "items": credited(501)},
        ),
    ],
    ids=["invoice", "cancellation", "return", "goodwill"],
)
def test_every_list_of_positions_is_capped_at_500(
    api: Api, suffix: str, body: dict[str, Any]
) -> None:
    order = factories.OrderFactory()
    assert api.create_order(order).status_code == 200

    response = api.post(f"{api.order_path(order['orderReference'])}/{suffix}", body)

    assert fields_of(problem(response, 422, "validation-failed")) == {"items"}


def test_a_correction_restating_501_positions_is_refused(api: Api) -> None:
    order, invoice = api.invoiced_order()
    body = factories.correction(order, invoice)
    body["order"]["items"] = [item(ref) for ref in range(1, 502)]

    response = api.correct(order["orderReference"], invoice["invoiceReference"], body)

    assert "order.items" in fields_of(problem(response, 422, "validation-failed"))


# --- JSON no database could hold --------------------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_a_body_of_one_hundred_thousand_nested_arrays_is_refused(api: Api) -> None:
    text = "[" * 100_000 + "]" * 100_000

    body = problem(raw(api, api.orders_path(), text), 422, "validation-failed")

    assert [e["field"] for e in body["errors"]] == ["body"]
    assert "Nested deeper than 32 levels" in body["detail"]


def test_free_form_data_nested_33_levels_deep_is_refused_and_32_are_kept(api: Api) -> None:
    deep = factories.OrderFactory(orderReference="DEEP1", additionalData=nested(32))
    kept = factories.OrderFactory(orderReference="DEEP2", additionalData=nested(31))

    refused = problem(api.create_order(deep), 422, "validation-failed")

    assert refused["errors"][0]["field"].startswith("additionalData.a.a")
    assert api.create_order(kept).status_code == 200


def test_a_number_of_five_thousand_digits_is_refused(api: Api) -> None:
    order = factories.OrderFactory()
    text = spaced(order).replace('"grossUnitPrice": 11.90', '"grossUnitPrice": ' + "9" * 5000)

    body = problem(raw(api, api.orders_path(), text), 422, "validation-failed")

    assert "too many digits" in body["detail"]


@pytest.mark.parametrize(
    ("field", "escaped"),
    [("orderReference", "\\u0000"), ("productId", "A\\u0000B"), ("lastName", "\\ud800")],
    ids=["NUL in a reference", "NUL in a product", "a lone surrogate in a name"],
)
def test_text_no_database_can_store_is_refused_naming_its_field(
    api: Api, field: str, escaped: str
) -> None:
    order = factories.OrderFactory()
    path = {"orderReference": "orderReference", "productId": "items[0].productId",
            "lastName": "billToAddress.lastName"}[field]  # fmt: skip
    text = spaced(order)
    text = text.replace(f'"{field}": "', f'"{field}": "{escaped}', 1)

    body = problem(raw(api, api.orders_path(), text), 422, "validation-failed")

    assert fields_of(body) == {path}
    assert body["errors"][0]["message"].startswith("Not valid text")


def test_a_nul_in_free_form_data_is_refused(api: Api) -> None:
    text = jsoncodec.dumps(factories.OrderFactory(additionalData={"note": "a\x00b"}))

    body = problem(raw(api, api.orders_path(), text), 422, "validation-failed")

    assert fields_of(body) == {"additionalData.note"}


def test_a_body_that_is_not_utf_8_is_malformed_json(api: Api) -> None:
    data = jsoncodec.dumps(factories.OrderFactory()).encode().replace(b"Max", b"M\xe4x")

    problem(raw(api, api.orders_path(), data), 400, "malformed-json")


def test_a_nul_in_a_path_is_not_found(api: Api) -> None:
    problem(api.get(api.order_path("A%00B")), 404, "not-found")
    problem(api.get(f"{BASE}/1000/tax-corrections/A%00B"), 404, "not-found")


# --- amounts are judged by their exact digits ------------------------------------------


@pytest.mark.parametrize(
    "amount",
    ["1e-999999999", "1.0000000000000000000000000000001", "0.001"],
    ids=["far below a cent", "a cent and 31 decimals", "a tenth of a cent"],
)
def test_an_amount_with_more_decimals_than_the_currency_is_refused(api: Api, amount: str) -> None:
    order = factories.OrderFactory()
    assert api.create_order(order).status_code == 200
    path = f"{api.order_path(order['orderReference'])}/payments"

    response = raw(api, path, f'{{"paymentProvider": "VISA", "authorizedAmount": {amount}}}')

    body = problem(response, 422, "too-many-decimals")
    assert fields_of(body) == {"authorizedAmount"}
    assert api.order(order["orderReference"])["totals"]["paid"] == 0


def test_a_quantity_with_31_decimals_is_refused_not_rounded(api: Api) -> None:
    text = spaced(factories.OrderFactory()).replace(
        '"quantity": 1', '"quantity": 1.0000000000000000000000000000001', 1
    )

    body = problem(raw(api, api.orders_path(), text), 422, "validation-failed")

    assert fields_of(body) == {"items[0].quantity"}


# --- headers and methods ---------------------------------------------------------------


def test_a_write_method_on_a_read_only_path_is_a_405_whatever_the_body(api: Api) -> None:
    response = api.client.put(api.order_path("ANY1"), headers=api.headers)

    problem(response, 405, "method-not-allowed")
    assert response.headers["Allow"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Idempotency-Key": "pay-1", "X-Request-ID": "é" * 3},
        {"Idempotency-Key": "pay-1", "X-Request-ID": "x" * 129},
        {"Idempotency-Key": "k\x7f"},
    ],
    ids=["a request id beyond ASCII", "a request id of 129 characters", "a control character"],
)
def test_a_malformed_request_id_or_idempotency_key_is_refused_and_nothing_is_paid(
    api: Api, headers: dict[str, str]
) -> None:
    order = factories.OrderFactory()
    assert api.create_order(order).status_code == 200

    response = api.post(
        f"{api.order_path(order['orderReference'])}/payments",
        {"paymentProvider": "VISA"},
        headers=headers,
    )

    body = problem(response, 422, "invalid")
    assert fields_of(body) <= {"Idempotency-Key", "X-Request-ID"}
    assert api.order(order["orderReference"])["totals"]["paid"] == 0


# --- roles ------------------------------------------------------------------------------


def test_a_merchant_key_gets_403_on_the_staff_only_tax_correction_jobs(api: Api) -> None:
    merchant = Api(api.client, new_key(api.client.application, ["1000"], "merchant"))
    job = {"country": "DE", "vatType": "NORMAL", "fromRate": 19, "toRate": 16,
           "mode": "keep-gross", "from": "2024-01-01", "to": "2024-12-31"}  # fmt: skip

    queued = merchant.post(f"{BASE}/1000/tax-corrections", job)
    read = merchant.get(f"{BASE}/1000/tax-corrections/00000000-0000-0000-0000-000000000000")

    problem(queued, 403, "forbidden")
    problem(read, 403, "forbidden")
    assert json.loads(queued.get_data())["requestId"] == queued.headers["X-Request-ID"]
