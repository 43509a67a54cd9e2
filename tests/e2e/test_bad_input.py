"""Input that reads well but cannot be booked is refused with a 422 naming the field, and
nothing is written: an order or invoice worth less than zero, amounts beyond what an order may
hold, dates out of order or out of range, codes of ISO 4217 that are not money, and path
segments that are not UTF-8.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from werkzeug.test import TestResponse

from tests import factories
from tests.e2e.conftest import BASE, Api, new_key, problem
from tests.factories import item

Body = dict[str, Any]


def refused(response: TestResponse, code: str, *fields: str) -> Body:
    """A 422 of this code whose field errors are exactly these fields, each with the code."""
    body = problem(response, 422, code)
    assert sorted((e["field"], e["code"]) for e in body["errors"]) == sorted(
        (field, code) for field in fields
    )
    return body


def invalid(response: TestResponse, field: str, code: str) -> Body:
    """marshmallow's refusal of a value: validation-failed, naming the field and its code."""
    body = problem(response, 422, "validation-failed")
    assert [(e["field"], e["code"]) for e in body["errors"]] == [(field, code)]
    return body


def absent(api: Api, order_ref: str) -> None:
    problem(api.get(api.order_path(order_ref)), 404, "not-found")


def created(api: Api, *items: Body, **fields: Any) -> Body:
    """A new order of these positions (the factory's when none are named)."""
    if items:
        fields["items"] = list(items)
    order = factories.OrderFactory(**fields)
    response = api.create_order(order)
    assert response.status_code == 200, response.get_json()
    return order


def unchanged(api: Api, order_ref: str, version: int = 1) -> Body:
    """The order is still at this version, so the refused request wrote nothing."""
    order = api.order(order_ref)
    assert order["version"] == version
    return order


def states(order: Body) -> list[str]:
    return [p["state"] for p in order["positions"]]


def discount(ref: int, price: str = "-5.00") -> Body:
    return item(ref, price, positionType="DISCOUNT")


# --- worth less than zero -------------------------------------------------------------------


@pytest.mark.parametrize("position_type", ["SALES_ARTICLE", "SHIPPING_COSTS", "SERVICE_CHARGE"])
def test_a_price_below_zero_is_refused_on_a_position_that_is_no_discount(
    api: Api, position_type: str
) -> None:
    order = factories.OrderFactory(
        items=[item(1, "30.00"), item(2, "-11.90", positionType=position_type)]
    )

    refused(api.create_order(order), "negative-price", "items[1].grossUnitPrice")
    absent(api, order["orderReference"])


def test_an_order_of_only_a_discount_is_refused_naming_its_positions(api: Api) -> None:
    order = factories.OrderFactory(items=[discount(1)])

    refused(api.create_order(order), "negative-total", "items")
    absent(api, order["orderReference"])


def test_an_order_whose_discount_exceeds_its_articles_is_refused(api: Api) -> None:
    order = factories.OrderFactory(items=[item(1, "5.00"), discount(2, "-5.01")])

    refused(api.create_order(order), "negative-total", "items")
    absent(api, order["orderReference"])


@pytest.mark.parametrize("position_type", ["DISCOUNT", "DISCOUNT_FOR_SUBSCRIPTION_ORDER"])
def test_a_discount_may_take_an_order_down_to_nothing(api: Api, position_type: str) -> None:
    order = created(api, item(1, "5.00"), item(2, "-5.00", positionType=position_type))

    assert api.order(order["orderReference"])["totals"]["gross"] == 0


def test_cancelling_all_but_the_discount_is_refused_and_cancels_nothing(api: Api) -> None:
    ref = created(api, item(1), discount(2))["orderReference"]

    refused(api.cancel(ref, [1]), "negative-total", "items")

    assert states(unchanged(api, ref)) == ["open", "open"]
    assert api.cancel(ref, [1, 2]).status_code == 200


def test_an_invoice_worth_less_than_zero_is_refused_and_invoices_nothing(api: Api) -> None:
    ref = created(api, item(1), discount(2))["orderReference"]
    only_the_discount = factories.InvoiceFactory(items=[{"orderItemReference": 2}])

    refused(api.invoice(ref, only_the_discount), "negative-total", "items")

    assert states(unchanged(api, ref)) == ["open", "open"]
    assert api.journal(ref) == []


def corrected(api: Api, *items: Body) -> tuple[Body, Body, Body]:
    """An invoiced order of these positions and a correction body restating it."""
    order, invoice = api.invoiced_order(items=list(items))
    return order, invoice, factories.correction(order, invoice)


def correct(api: Api, order: Body, invoice: Body, body: Body) -> TestResponse:
    return api.correct(order["orderReference"], invoice["invoiceReference"], body)


def nothing_corrected(api: Api, order: Body, invoice: Body) -> None:
    unchanged(api, order["orderReference"], version=2)
    doc = api.invoice_doc(order["orderReference"], invoice["invoiceReference"])
    assert (doc["currentVersion"], doc["creditNotes"]) == (1, [])


def test_a_correction_leaving_the_invoice_worth_less_than_zero_is_refused(api: Api) -> None:
    order, invoice, body = corrected(api, item(1), discount(2))
    body["order"] = {**order, "items": [item(1, "4.00"), discount(2)]}

    response = correct(api, order, invoice, body)

    refused(response, "negative-total", "order.items", "invoice.items")
    nothing_corrected(api, order, invoice)


def test_a_correction_to_a_price_below_zero_is_refused(api: Api) -> None:
    order, invoice, body = corrected(api, item(1), item(2, "23.80"))
    body["order"] = {**order, "items": [item(1, "-1.00"), item(2, "23.80")]}

    response = correct(api, order, invoice, body)

    refused(response, "negative-price", "order.items[0].grossUnitPrice")
    nothing_corrected(api, order, invoice)


# --- amounts far inside the database's integers ----------------------------------------------

LIMIT = Decimal("100000000000.00")  # MAX_ORDER_GROSS: 10^13 minor units of EUR


def test_a_line_beyond_the_limit_is_refused_naming_its_price(api: Api) -> None:
    order = factories.OrderFactory(items=[item(1, "1000000000", quantity="1000000")])

    body = refused(api.create_order(order), "amount-too-large", "items[0].grossUnitPrice")

    assert "100000000000.00 EUR" in body["errors"][0]["message"]
    absent(api, order["orderReference"])


def test_the_limit_is_in_minor_units_of_the_order_s_currency(api: Api) -> None:
    # 10,000 x 10^9 yen are 10^13 minor units, the limit; 100 x 10^9 dinar are 10^14 fils.
    yen = factories.OrderFactory(currency="JPY", items=[item(1, "1000000000", "0", "10000")])
    dinar = factories.OrderFactory(currency="KWD", items=[item(1, "1000000000", "0", "100")])

    assert api.create_order(yen).status_code == 200
    refused(api.create_order(dinar), "amount-too-large", "items[0].grossUnitPrice")
    absent(api, dinar["orderReference"])


def test_positions_together_beyond_the_limit_are_refused_naming_the_positions(api: Api) -> None:
    at_limit = item(1, "1000000000", quantity="100")
    order = factories.OrderFactory(items=[at_limit, item(2, "0.01")])

    refused(api.create_order(order), "amount-too-large", "items")
    absent(api, order["orderReference"])


def test_a_discount_counts_toward_the_limit_without_its_sign(api: Api) -> None:
    order = factories.OrderFactory(
        items=[item(1, "1000000000", quantity="100"), discount(2, "-0.01")]
    )

    refused(api.create_order(order), "amount-too-large", "items")
    absent(api, order["orderReference"])


def test_an_order_at_the_limit_is_invoiced_paid_and_returned_in_balance(api: Api) -> None:
    order, _invoice = api.invoiced_order(items=[item(1, "1000000000", quantity="100")])
    ref = order["orderReference"]

    assert api.pay(ref).status_code == 200
    assert api.return_items(ref, "R1", [(1, 100)]).status_code == 200

    totals = api.order(ref)["totals"]
    assert (totals["gross"], totals["paid"], totals["refunded"]) == (LIMIT, LIMIT, LIMIT)
    balances: dict[str, Decimal] = {}
    for entry in api.journal(ref):
        for line in entry["lines"]:
            balances[line["account"]] = (
                balances.get(line["account"], Decimal(0)) + line["debit"] - line["credit"]
            )
    assert balances["receivable"] == 0
    assert balances["payment-clearing"] == LIMIT
    assert balances["refunds-payable"] == -LIMIT


def test_a_correction_beyond_the_limit_is_refused_naming_the_price(api: Api) -> None:
    order, invoice, body = corrected(api, item(1, "1.00", quantity="200"))
    body["order"] = {**order, "items": [item(1, "1000000000", quantity="200")]}

    response = correct(api, order, invoice, body)

    refused(response, "amount-too-large", "order.items[0].grossUnitPrice")
    nothing_corrected(api, order, invoice)


# --- dates in order -------------------------------------------------------------------------


def invoice_dated(invoice_date: str, due_date: str) -> Body:
    return factories.InvoiceFactory(
        invoiceDate=invoice_date, dueDate=due_date, dispatchDate=invoice_date
    )


def test_an_invoice_dated_before_its_order_is_refused(api: Api) -> None:
    ref = created(api, orderDate="2024-06-01")["orderReference"]

    response = api.invoice(ref, invoice_dated("2024-05-31", "2024-06-30"))

    body = refused(response, "invoice-date-before-order-date", "invoiceDate")
    assert "2024-06-01" in body["errors"][0]["message"]
    assert states(unchanged(api, ref)) == ["open", "open"]


def test_an_invoice_due_before_its_date_is_refused(api: Api) -> None:
    ref = created(api, orderDate="2024-06-01")["orderReference"]

    response = api.invoice(ref, invoice_dated("2024-06-10", "2024-06-09"))

    refused(response, "due-date-before-invoice-date", "dueDate")
    assert states(unchanged(api, ref)) == ["open", "open"]


def test_an_invoice_dated_and_due_on_the_order_s_day_is_accepted(api: Api) -> None:
    ref = created(api, orderDate="2024-06-01")["orderReference"]

    assert api.invoice(ref, invoice_dated("2024-06-01", "2024-06-01")).status_code == 200


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"invoice": {"invoiceDate": "2019-12-31"}}, "invoice.invoiceDate",
         "invoice-date-before-order-date"),
        ({"order": {"orderDate": "2024-06-11"}}, "invoice.invoiceDate",
         "invoice-date-before-order-date"),
        ({"invoice": {"dueDate": "2024-06-09"}}, "invoice.dueDate",
         "due-date-before-invoice-date"),
    ],
    ids=["invoice before order", "order moved after the invoice", "due before invoice"],
)  # fmt: skip
def test_a_correction_keeps_its_dates_in_order(
    api: Api, change: dict[str, Body], field: str, code: str
) -> None:
    order, invoice, body = corrected(api, item(1), item(2, "23.80"))
    for part, fields in change.items():
        body[part] = {**body[part], **fields}

    refused(correct(api, order, invoice, body), code, field)
    nothing_corrected(api, order, invoice)


# --- dates in range, on every date field of every body ---------------------------------------

Send = Callable[[Api, str, str], TestResponse]
OUT_OF_RANGE = ["0001-01-01", "9999-12-31", "1899-12-31", "2200-01-01T00:00:00Z"]


def nested(body: Body, path: str, value: str) -> Body:
    """The body with the value at a dotted path (objects made on the way)."""
    *parents, name = path.split(".")
    node = body
    for parent in parents:
        node[parent] = dict(node.get(parent) or {})
        node = node[parent]
    node[name] = value
    return body


def send_order(api: Api, field: str, value: str) -> TestResponse:
    order = nested(factories.OrderFactory(orderReference="DATED1"), field, value)
    response = api.create_order(order)
    absent(api, "DATED1")
    return response


def send_invoice(api: Api, field: str, value: str) -> TestResponse:
    ref = created(api, orderDate="1900-01-01")["orderReference"]
    response = api.invoice(ref, nested(factories.InvoiceFactory(), field, value))
    unchanged(api, ref)
    return response


def send_correction(api: Api, field: str, value: str) -> TestResponse:
    order, invoice, body = corrected(api, item(1), item(2, "23.80"))
    response = correct(api, order, invoice, nested(body, field, value))
    nothing_corrected(api, order, invoice)
    return response


def send_event(suffix: str, body: Body, invoiced: bool = True) -> Send:
    def send(api: Api, field: str, value: str) -> TestResponse:
        if invoiced:
            ref = api.invoiced_order()[0]["orderReference"]
            version = 2
        else:
            ref, version = created(api)["orderReference"], 1
        response = api.post(f"{api.order_path(ref)}/{suffix}", nested(dict(body), field, value))
        unchanged(api, ref, version)
        return response

    return send


def send_report(api: Api, field: str, value: str) -> TestResponse:
    dates = {"from": "2024-01-01", "to": "2024-12-31", field: value}
    return api.get(f"{BASE}/1000/tax-report?from={dates['from']}&to={dates['to']}")


def send_job(api: Api, field: str, value: str) -> TestResponse:
    job = {"country": "DE", "from": "2024-01-01", "to": "2024-12-31", "vatType": "NORMAL",
           "fromRate": 19, "toRate": 16, "mode": "keep-gross", field: value}  # fmt: skip
    return api.post(f"{BASE}/1000/tax-corrections", job)


CANCELLATION = {
    "cancellationDate": "2024-06-20",
    "cancellationReason": "OUT_OF_STOCK",
    "items": [{"orderItemReference": 1}],
}
RETURN = {"returnReference": "R1", "returnReason": "CUSTOMER_RETURN",
          "items": [{"orderItemReference": 1, "quantity": 1}]}  # fmt: skip
GOODWILL = {"goodwillReference": "G1", "goodwillReason": "OTHER",
            "items": [{"orderItemReference": 1, "quantity": 1, "grossUnitPrice": 1}]}  # fmt: skip
PAYMENT = {"paymentProvider": "VISA"}

EVERY_DATE: list[tuple[str, Send, str]] = [
    ("order", send_order, "orderDate"),
    ("order", send_order, "billToAddress.birthDate"),
    ("order", send_order, "shipToAddress.birthDate"),
    ("invoice", send_invoice, "invoiceDate"),
    ("invoice", send_invoice, "dueDate"),
    ("invoice", send_invoice, "dispatchDate"),
    ("correction", send_correction, "invoice.invoiceDate"),
    ("correction", send_correction, "invoice.dueDate"),
    ("correction", send_correction, "invoice.dispatchDate"),
    ("correction", send_correction, "order.orderDate"),
    ("correction", send_correction, "order.billToAddress.birthDate"),
    ("cancellation", send_event("cancellations", CANCELLATION, False), "cancellationDate"),
    ("return", send_event("returns", RETURN), "returnDate"),
    ("goodwill", send_event("goodwills", GOODWILL), "goodwillDate"),
    ("goodwill", send_event("goodwills", GOODWILL), "creditDate"),
    ("payment", send_event("payments", PAYMENT), "paymentDate"),
    ("tax report", send_report, "from"),
    ("tax report", send_report, "to"),
    ("tax-correction job", send_job, "from"),
    ("tax-correction job", send_job, "to"),
]


@pytest.mark.parametrize(
    ("send", "field", "value"),
    [
        (send, field, OUT_OF_RANGE[i % len(OUT_OF_RANGE)])
        for i, (_, send, field) in enumerate(EVERY_DATE)
    ],
    ids=[f"{what} {field}" for what, _, field in EVERY_DATE],
)
def test_a_date_outside_1900_to_2199_is_refused_naming_its_field(
    api: Api, send: Send, field: str, value: str
) -> None:
    invalid(send(api, field, value), field, "date-out-of-range")


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_an_order_date_outside_the_range_is_refused_whatever_the_year(api: Api, value: str) -> None:
    body = invalid(send_order(api, "orderDate", value), "orderDate", "date-out-of-range")

    assert "1900-01-01" in body["errors"][0]["message"]


def test_the_first_and_the_last_day_of_the_range_are_accepted(api: Api) -> None:
    ref = created(api, orderDate="1900-01-01")["orderReference"]

    response = api.invoice(ref, invoice_dated("2199-12-31", "2199-12-31T23:59:59Z"))

    assert response.status_code == 200, response.get_json()


# --- currencies a customer pays with ----------------------------------------------------------

NOT_MONEY = [
    *("XXX", "XTS", "XAU", "XAG", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU"),
    *("XUA", "XAD", "BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW"),
]


@pytest.mark.parametrize("currency", NOT_MONEY)
def test_an_iso_4217_code_that_is_not_money_is_refused(api: Api, currency: str) -> None:
    order = factories.OrderFactory(currency=currency, items=[item(1, "1190")])

    invalid(api.create_order(order), "currency", "currency-not-money")
    absent(api, order["orderReference"])


@pytest.mark.parametrize("currency", ["XAF", "XOF", "XCD", "XPF", "EUR", "CHF", "USD"])
def test_real_currencies_are_accepted(api: Api, currency: str) -> None:
    order = created(api, item(1, "1190"), currency=currency)

    assert api.order(order["orderReference"])["currency"] == currency


def test_a_correction_naming_a_code_that_is_not_money_is_refused(api: Api) -> None:
    order, invoice, body = corrected(api, item(1), item(2, "23.80"))
    body["order"] = {**order, "currency": "XTS"}

    invalid(correct(api, order, invoice, body), "order.currency", "currency-not-money")
    nothing_corrected(api, order, invoice)


# --- path segments that are not UTF-8 -----------------------------------------------------------


def test_an_order_reference_that_is_not_utf_8_is_refused_naming_it(api: Api) -> None:
    refused(api.get(api.order_path("%FF%FE")), "invalid-utf8", "orderReference")


def test_every_path_parameter_that_is_not_utf_8_is_named(api: Api) -> None:
    path = f"{BASE}/1000/customers/A%C0%AF/orders/B%E4/invoices/%ED%A0%80"

    refused(api.get(path), "invalid-utf8", "customerNumber", "orderReference", "invoiceReference")


def test_a_write_under_a_customer_that_is_not_utf_8_writes_nothing(api: Api) -> None:
    order = factories.OrderFactory()

    response = api.post(f"{BASE}/1000/customers/C%FF/orders", order)

    refused(response, "invalid-utf8", "customerNumber")
    # werkzeug would have read %FF as U+FFFD: nothing was written under that name either.
    stored_as = f"{BASE}/1000/customers/C%EF%BF%BD/orders/{order['orderReference']}"
    problem(api.get(stored_as), 404, "not-found")


def test_a_correction_of_an_invoice_reference_that_is_not_utf_8_is_refused(api: Api) -> None:
    order, invoice, body = corrected(api, item(1), item(2, "23.80"))
    path = f"{api.order_path(order['orderReference'])}/invoices/{invoice['invoiceReference']}%FE"

    refused(api.put(path, body), "invalid-utf8", "invoiceReference")
    nothing_corrected(api, order, invoice)


def test_a_tax_correction_job_id_that_is_not_utf_8_is_refused(api: Api) -> None:
    refused(api.get(f"{BASE}/1000/tax-corrections/%FF"), "invalid-utf8", "jobId")


def test_a_business_not_held_is_a_404_whatever_its_path(api: Api) -> None:
    other = Api(api.client, new_key(api.client.application, ["2000"]))

    problem(other.get(f"{BASE}/1000/customers/C/orders/%FF"), 404, "not-found")
    problem(api.get(f"{BASE}/%FF/customers/C/orders/O1"), 404, "not-found")
    problem(api.client.get(f"{BASE}/1000/customers/C/orders/%FF"), 401, "unauthorized")


@pytest.mark.parametrize("reference", ["%C3%A4", "%EF%BF%BD"], ids=["a umlaut", "U+FFFD itself"])
def test_utf_8_text_in_a_path_is_read_as_text(api: Api, reference: str) -> None:
    problem(api.get(api.order_path(reference)), 404, "not-found")


def test_a_customer_number_beyond_ascii_is_served(api: Api) -> None:
    customer = Api(api.client, api.key, customer="K%C3%BChn")
    order = factories.OrderFactory()

    assert customer.create_order(order).status_code == 200

    assert customer.order(order["orderReference"])["customerNumber"] == "Kühn"
