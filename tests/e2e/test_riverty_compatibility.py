"""A Riverty client works unchanged: the original's published request bodies, sent verbatim.

Each body in tests/fixtures/riverty/ is a sample printed in Riverty's public Accounting as a
Service documentation (the API reference's request examples, the use-case pages and the
integration guide), byte for byte; seed 001's correction is
tests/fixtures/seed_001_update_invoice.json.
The samples share references (IDE12345678901, RDE12345678901, ...), and references are unique
per business, so each story runs in a business of its own. The order and invoice each sample
needs are built in the shape the sample names (its positions, prices and rates).
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.api import examples
from tests import factories
from tests.e2e.conftest import Api, fields_of, journal_balances, new_key, problem
from tests.factories import item

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SAMPLES = FIXTURES / "riverty"
INVOICE = "IDE12345678901"
# The API reference's position 3: 2.5 x 119.12 at 19 % (19.02 VAT a unit) = 297.80.
POSITION_3 = item(3, "119.12", quantity="2.5")


BUSINESSES = itertools.count(1)


@pytest.fixture
def business(client: FlaskClient, app: Flask) -> Api:
    """A business of its own for each test, so the samples' references never collide."""
    code = f"RIVERTY{next(BUSINESSES)}"
    return Api(client, new_key(app, [code], "staff"), business=code)


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def post_verbatim(api: Api, order_ref: str, use_case: str, text: str) -> TestResponse:
    return api.client.post(
        f"{api.order_path(order_ref)}/{use_case}",
        data=text,
        content_type="application/json",
        headers=api.headers,
    )


def invoiced(api: Api, items: list[dict[str, Any]], invoiced_refs: list[int],
             reference: str = INVOICE, **order_fields: Any) -> str:  # fmt: skip
    """An order of these positions with `invoiced_refs` on invoice `reference`."""
    order = factories.OrderFactory(items=items, **order_fields)
    assert api.create_order(order).status_code == 200
    invoice = factories.InvoiceFactory(
        invoiceReference=reference, items=[{"orderItemReference": r} for r in invoiced_refs]
    )
    created = api.invoice(order["orderReference"], invoice)
    assert created.status_code == 200, created.get_json()
    return str(order["orderReference"])


def paid_in_full(api: Api, order_ref: str) -> None:
    response = api.pay(order_ref)
    assert response.status_code == 200, response.get_json()


def position(order: dict[str, Any], ref: int) -> dict[str, Any]:
    return next(p for p in order["positions"] if p["orderItemReference"] == ref)


def books_balance(api: Api, order_ref: str) -> dict[str, Any]:
    assert journal_balances(api.journal(order_ref))
    return api.order(order_ref)


# --- the correction: seed 001, by PUT and by POST ------------------------------------------


def test_seed_001_corrects_the_invoice_by_put_and_again_by_post(business: Api) -> None:
    former = {**examples.ORDER, "billToAddress": {**examples.BILL_TO, "street": "Alte Str."}}
    assert business.create_order(former).status_code == 200
    assert business.invoice(examples.ORDER_REFERENCE, examples.INVOICE).status_code == 200
    path = f"{business.order_path(examples.ORDER_REFERENCE)}/invoices/{INVOICE}"
    text = (FIXTURES / "seed_001_update_invoice.json").read_text(encoding="utf-8")
    send = {"data": text, "content_type": "application/json", "headers": business.headers}

    put = business.client.put(path, **send)
    post = business.client.post(path, **send)

    assert put.status_code == 200, put.get_json()
    assert (put.get_json()["version"], put.get_json()["creditNoteReference"]) == (
        2,
        "GDE12345678901",
    )
    assert post.status_code == 200, post.get_json()
    assert (post.get_json()["changed"], post.get_json()["version"]) == (False, 2)
    versions = business.invoice_doc(examples.ORDER_REFERENCE, INVOICE)["versions"]
    assert versions[-1]["billToAddress"]["street"] == "Heidestr."


# --- cancellations ---------------------------------------------------------------------------


def test_the_reference_cancellation_cancels_and_refunds_to_the_bank_details(
    business: Api,
) -> None:
    ref = invoiced(business, [item(1), POSITION_3], [1])
    paid_in_full(business, ref)  # 11.90 + 297.80

    response = post_verbatim(business, ref, "cancellations", sample("cancellation_reference.json"))

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["internalRequestId"]
    refund = response.get_json()["refund"]
    assert (refund["amount"], refund["status"]) == (Decimal("297.80"), "pending")
    order = books_balance(business, ref)
    assert position(order, 3)["state"] == "cancelled"
    assert order["totals"]["balance"] == 0


def test_the_use_case_cancellation_with_a_datetime_cancels_an_open_position(
    business: Api,
) -> None:
    order = factories.OrderFactory(items=[item(1), item(2, "23.80")])
    assert business.create_order(order).status_code == 200
    ref = order["orderReference"]

    response = post_verbatim(business, ref, "cancellations", sample("cancellation_use_case.json"))

    assert response.status_code == 200, response.get_json()
    read = business.order(ref)
    assert [p["state"] for p in read["positions"]] == ["cancelled", "open"]
    assert read["totals"]["gross"] == Decimal("23.80")
    assert business.journal(ref) == []


# --- returns ---------------------------------------------------------------------------------


def test_the_use_case_return_credits_the_position_and_books_it_in_its_period(
    business: Api,
) -> None:
    ref = invoiced(business, [item(1), item(2, "23.80")], [1, 2])

    response = post_verbatim(business, ref, "returns", sample("return_use_case.json"))

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["reference"] == "RDE12345678901"
    order = books_balance(business, ref)
    assert position(order, 1)["returnedQuantity"] == 1
    assert order["totals"]["credited"] == Decimal("11.90")
    (row,) = business.tax_report("2018-09-01", "2018-09-30")
    assert (row["net"], row["vat"], row["gross"]) == (
        Decimal("-10.00"),
        Decimal("-1.90"),
        Decimal("-11.90"),
    )


def test_the_reference_return_of_two_and_a_half_units_refunds_them(business: Api) -> None:
    ref = invoiced(business, [item(1), POSITION_3], [1, 3])
    paid_in_full(business, ref)

    response = post_verbatim(business, ref, "returns", sample("return_reference.json"))

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["refund"]["amount"] == Decimal("297.80")
    order = books_balance(business, ref)
    assert position(order, 3)["returnedQuantity"] == Decimal("2.5")
    assert (order["totals"]["credited"], order["totals"]["balance"]) == (Decimal("297.80"), 0)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("grossUnitPrice", 119.13, "price-mismatch"),
        ("vatPercent", 7, "vat-percent-mismatch"),
        ("vatType", '"REDUCED"', "vat-type-mismatch"),
        ("vatAmount", 19.05, "vat-amount-mismatch"),
    ],
)
def test_a_return_whose_price_fields_disagree_with_the_position_is_refused(
    business: Api, field: str, value: Any, code: str
) -> None:
    ref = invoiced(business, [item(1), POSITION_3], [1, 3])
    published = sample("return_reference.json")
    line = next(ln for ln in published.splitlines() if f'"{field}"' in ln)
    changed = published.replace(line, f'   "{field}": {value},')

    body = problem(post_verbatim(business, ref, "returns", changed), 422, code)

    assert fields_of(body) == {f"items[0].{field}"}
    assert business.order(ref)["totals"]["credited"] == 0


def test_a_return_naming_another_invoice_of_the_order_is_refused(business: Api) -> None:
    order = factories.OrderFactory(items=[item(1), POSITION_3])
    assert business.create_order(order).status_code == 200
    ref = order["orderReference"]
    for reference, refs in ((INVOICE, [1]), ("IDE-OTHER", [3])):
        invoice = factories.InvoiceFactory(
            invoiceReference=reference, items=[{"orderItemReference": r} for r in refs]
        )
        assert business.invoice(ref, invoice).status_code == 200

    body = problem(
        post_verbatim(business, ref, "returns", sample("return_reference.json")),
        422,
        "not-on-invoice",
    )

    assert fields_of(body) == {"items[0].orderItemReference"}
    assert "IDE-OTHER" in body["errors"][0]["message"]


def test_a_return_naming_an_invoice_the_order_does_not_have_is_refused(business: Api) -> None:
    ref = invoiced(business, [item(1), POSITION_3], [1, 3], reference="IDE-ELSE")

    body = problem(
        post_verbatim(business, ref, "returns", sample("return_reference.json")),
        422,
        "unknown-invoice",
    )

    assert fields_of(body) == {"invoiceReference"}


# --- goodwills -------------------------------------------------------------------------------


def test_the_reference_goodwill_credits_quantity_times_price_and_refunds(
    business: Api,
) -> None:
    ref = invoiced(business, [item(1), POSITION_3], [1, 3])
    paid_in_full(business, ref)

    response = post_verbatim(business, ref, "goodwills", sample("goodwill_reference.json"))

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["refund"]["amount"] == Decimal("297.80")
    order = books_balance(business, ref)
    assert position(order, 3)["goodwillAmount"] == Decimal("297.80")
    (row,) = business.tax_report("2018-03-01", "2018-03-31")
    assert (row["vatPercent"], row["net"], row["vat"]) == (
        19,
        Decimal("-250.25"),
        Decimal("-47.55"),
    )


def test_the_integration_guide_goodwill_at_21_percent_in_the_netherlands(
    business: Api,
) -> None:
    ref = invoiced(
        business,
        [item(1, "49.95", rate="21")],
        [1],
        reference="INV-1234322",
        supplyingCountry="NL",
        vatDeclarationCountry="NL",
    )

    response = post_verbatim(business, ref, "goodwills", sample("goodwill_integration_guide.json"))

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["reference"] == "01J7NPK9R5Y0KV1GHA34JZ7YP2"
    order = books_balance(business, ref)
    assert position(order, 1)["goodwillAmount"] == Decimal("20.00")
    (row,) = business.tax_report("2024-09-01", "2024-09-30")
    assert (row["declarationCountry"], row["net"], row["vat"]) == (
        "NL",
        Decimal("-16.53"),
        Decimal("-3.47"),
    )


def test_a_goodwill_at_another_rate_than_the_position_is_refused(business: Api) -> None:
    ref = invoiced(business, [item(1), POSITION_3], [1, 3])
    changed = sample("goodwill_reference.json").replace('"vatPercent": 19', '"vatPercent": 7')

    body = problem(post_verbatim(business, ref, "goodwills", changed), 422, "vat-percent-mismatch")

    assert fields_of(body) == {"items[0].vatPercent"}
    assert business.order(ref)["totals"]["credited"] == 0


# --- payments --------------------------------------------------------------------------------


def test_a_payment_with_the_documented_fields_books_the_authorized_amount(
    business: Api,
) -> None:
    ref = invoiced(business, [item(1), item(2, "23.80")], [1, 2])

    part = post_verbatim(
        business, ref, "payments", '{"authorizedAmount": 11.9, "paymentProvider": "PAYPAL"}'
    )
    rest = post_verbatim(business, ref, "payments", '{"paymentProvider": "PAYPAL"}')

    assert part.status_code == 200, part.get_json()
    assert rest.status_code == 200, rest.get_json()
    totals = books_balance(business, ref)["totals"]
    assert (totals["paid"], totals["balance"]) == (Decimal("35.70"), 0)
