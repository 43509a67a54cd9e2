"""Correcting an issued invoice (PUT .../invoices/{inv}, SPEC section 6), end to end.

Every refusal names its problem code and field path and leaves the order, its documents, its
journal, its refunds and the tax report exactly as they were.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import func, select
from werkzeug.test import TestResponse

from app.adapters.schema import metadata
from tests import factories
from tests.e2e.conftest import Api, fields_of, journal_balances, problem
from tests.factories import AddressFactory, correction, item

Body = dict[str, Any]

SEED_001 = Path(__file__).parent.parent / "fixtures" / "seed_001_update_invoice.json"
VALID_AT_VAT_ID = "ATU13585627"
JUNE_2024 = ("2024-06-01", "2024-06-30")
JULY_2024 = ("2024-07-01", "2024-07-31")


# --- helpers ------------------------------------------------------------------------------


def load_seed() -> Body:
    """The published sample of an update-invoice request, completed where it was cut off."""
    body: Body = json.loads(SEED_001.read_text(), parse_float=Decimal)
    return body


def ordered(api: Api, **fields: Any) -> Body:
    """An order as the client created it."""
    order = cast(Body, factories.OrderFactory(**fields))
    response = api.create_order(order)
    assert response.status_code == 200, response.get_json()
    return order


def invoiced(api: Api, order: Body, refs: list[int], **fields: Any) -> Body:
    """Invoice these positions of the order; returns the invoice body as sent."""
    items = [{"orderItemReference": r} for r in refs]
    invoice = cast(Body, factories.InvoiceFactory(items=items, **fields))
    response = api.invoice(order["orderReference"], invoice)
    assert response.status_code == 200, response.get_json()
    return invoice


def paid_invoiced_order(api: Api, **order_fields: Any) -> tuple[Body, Body]:
    """An order on one invoice, paid in full."""
    order, invoice = api.invoiced_order(**order_fields)
    assert api.pay(order["orderReference"]).status_code == 200
    return order, invoice


def now_reads(order: Body, **fields: Any) -> Body:
    """The order as it should read after the correction."""
    return {**order, **fields}


def with_item(order: Body, index: int, **fields: Any) -> Body:
    """The order with one position changed."""
    items = [dict(i) for i in order["items"]]
    items[index].update(fields)
    return now_reads(order, items=items)


def reverse_charge(ref: int, net: str) -> Body:
    """A position a business customer buys under reverse charge: 0 % VAT, gross is net."""
    return {**item(ref, net, "0"), "vatType": "REVERSE"}


def correct(api: Api, order: Body, invoice: Body, **kwargs: Any) -> TestResponse:
    """Send the order and invoice bodies as the correction of that invoice."""
    body = correction(order, invoice)
    if "goodwillReference" in kwargs:
        body["goodwillReference"] = kwargs.pop("goodwillReference")
    return api.correct(order["orderReference"], invoice["invoiceReference"], body, **kwargs)


def corrected(api: Api, order: Body, invoice: Body, **kwargs: Any) -> Body:
    """A correction that must be accepted, leaving the books balanced; returns its answer."""
    response = correct(api, order, invoice, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_books_balance(api, order["orderReference"])
    answer: Body = response.get_json()
    return answer


def row_counts(api: Api) -> dict[str, int]:
    """Rows per table: catches writes no read shows (outbox events, stray documents)."""
    session_factory = api.client.application.extensions["accounting"].session_factory
    with session_factory() as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in metadata.sorted_tables
        }


def snapshot(api: Api, order_ref: str, invoice_ref: str) -> Body:
    """Everything a correction could write, as the API reads it, and the row counts."""
    return {
        "order": api.order(order_ref),
        "invoice": api.invoice_doc(order_ref, invoice_ref),
        "journal": api.journal(order_ref),
        "refunds": api.refunds(order_ref),
        "taxReport": api.tax_report(),
        "rows": row_counts(api),
    }


def refused(
    api: Api,
    order: Body,
    invoice: Body,
    body: Body,
    status: int,
    code: str,
    field: str,
    sender: Api | None = None,
) -> Body:
    """Send a correction that must be refused with this code naming this field, writing nothing."""
    order_ref, invoice_ref = order["orderReference"], invoice["invoiceReference"]
    before = snapshot(api, order_ref, invoice_ref)
    response = (sender or api).correct(order_ref, invoice_ref, body)
    answer = problem(response, status, code)
    assert field in fields_of(answer), answer
    assert all(e["code"] == code for e in answer["errors"]), answer
    assert snapshot(api, order_ref, invoice_ref) == before
    return answer


def new_entries(before: list[Body], after: list[Body]) -> list[Body]:
    known = {e["id"] for e in before}
    return [e for e in after if e["id"] not in known]


def booking(entry: Body) -> dict[str, Decimal]:
    """Debit minus credit per account of one journal entry."""
    result: dict[str, Decimal] = {}
    for line in entry["lines"]:
        result[line["account"]] = result.get(line["account"], Decimal(0)) + (
            Decimal(line["debit"]) - Decimal(line["credit"])
        )
    return result


def entry_of(entries: list[Body], kind: str) -> Body:
    (entry,) = [e for e in entries if e["kind"] == kind]
    return entry


def tax_rows(
    api: Api, period: tuple[str, str] = ("2000-01-01", "2099-12-31")
) -> dict[tuple[str, str, Decimal], tuple[Decimal, Decimal]]:
    """(country, VAT type, rate) -> (net, vat) of the tax report for the period."""
    return {
        (r["declarationCountry"], r["vatType"], r["vatPercent"]): (r["net"], r["vat"])
        for r in api.tax_report(*period)
    }


def assert_books_balance(api: Api, order_ref: str) -> None:
    """Every entry balances; the order's balance is what the journal says is receivable."""
    entries = api.journal(order_ref)
    assert journal_balances(entries)
    read = api.order(order_ref)
    t = read["totals"]
    assert t["gross"] - t["credited"] - t["paid"] + t["refunded"] == t["balance"]
    if all(p["state"] != "open" for p in read["positions"]):
        assert t["invoiced"] - t["credited"] - t["paid"] + t["refunded"] == t["balance"]
        receivable = sum(
            (booking(e).get("receivable", Decimal(0)) for e in entries), start=Decimal(0)
        )
        assert receivable == t["balance"]


def version_summary(doc: Body, version: int) -> Body:
    (found,) = [v for v in doc["versions"] if v["version"] == version]
    return {k: found[k] for k in ("version", "grossTotal", "netTotal", "vatTotal", "taxes")}


# --- the published sample (seed 001) ----------------------------------------------------


def _seed_order(api: Api) -> Body:
    """Order ODE12345678901 as first placed: the sample's order with the old billing address."""
    seed = load_seed()
    order = {**seed["order"], "billToAddress": AddressFactory()}
    assert api.create_order(order).status_code == 200
    response = api.invoice(order["orderReference"], seed["invoice"])
    assert response.status_code == 200, response.get_json()
    return seed


def _assert_seed_corrected(api: Api, seed: Body, response: TestResponse) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["internalRequestId"]
    assert answer["changed"] is True
    assert answer["version"] == 2
    assert answer["creditNoteReference"] == "GDE12345678901"
    assert answer["refund"] is None

    doc = api.invoice_doc("ODE12345678901", "IDE12345678901")
    assert doc["currentVersion"] == 2
    v1, v2 = doc["versions"]
    assert (v1["version"], v1["status"], v1["nullifiedBy"]) == (1, "nullified", "GDE12345678901")
    assert (v2["version"], v2["status"], v2["nullifiedBy"]) == (2, "issued", None)
    assert v1["billToAddress"] == AddressFactory()
    assert v2["billToAddress"] == seed["order"]["billToAddress"]
    assert (v2["invoiceDate"], v2["dueDate"]) == ("2018-11-04", "2018-11-05")
    assert v2["grossTotal"] == Decimal("11.90")
    assert v2["netTotal"] == Decimal("10.00")
    assert v2["vatTotal"] == Decimal("1.90")
    (note,) = doc["creditNotes"]
    assert note["reference"] == "GDE12345678901"
    assert note["nullifiesVersion"] == 1
    assert (note["grossTotal"], note["netTotal"], note["vatTotal"]) == (
        Decimal("11.90"),
        Decimal("10.00"),
        Decimal("1.90"),
    )
    entry = entry_of(api.journal("ODE12345678901"), "credit-note")
    assert (entry["documentReference"], entry["documentDate"]) == ("GDE12345678901", "2018-11-04")
    assert_books_balance(api, "ODE12345678901")


def test_seed_sample_issues_version_2_and_credit_note(api: Api) -> None:
    seed = _seed_order(api)
    response = api.correct("ODE12345678901", "IDE12345678901", seed)
    _assert_seed_corrected(api, seed, response)


def test_post_on_the_invoice_path_corrects_like_put(api: Api) -> None:
    # The published sample itself uses POST.
    seed = _seed_order(api)
    response = api.post(f"{api.order_path('ODE12345678901')}/invoices/IDE12345678901", seed)
    _assert_seed_corrected(api, seed, response)


def test_seed_sample_sent_unchanged_is_a_no_op(api: Api) -> None:
    seed = load_seed()
    assert api.create_order(seed["order"]).status_code == 200
    assert api.invoice("ODE12345678901", seed["invoice"]).status_code == 200
    before = snapshot(api, "ODE12345678901", "IDE12345678901")
    response = api.correct("ODE12345678901", "IDE12345678901", seed)
    assert response.status_code == 200
    answer = response.get_json()
    assert (answer["changed"], answer["version"], answer["creditNoteReference"]) == (
        False,
        1,
        None,
    )
    assert snapshot(api, "ODE12345678901", "IDE12345678901") == before


# --- rule 1: the customer cannot change -------------------------------------------------


class TestCustomer:
    def test_address_company_group_and_vat_id_may_change(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        address = {
            **order["billToAddress"],
            "street": "Hafenweg",
            "companyName": "Mustermann GmbH",
            "customerGroup": "B2B",
            "taxIdentificationNumber": "DE136695976",
        }
        body = now_reads(order, customerNumber=api.customer, billToAddress=address)
        answer = corrected(api, body, invoice)
        assert answer["changed"] is True
        doc = api.invoice_doc(order["orderReference"], invoice["invoiceReference"])
        assert doc["versions"][-1]["billToAddress"] == address
        assert doc["customerNumber"] == api.customer

    def test_customer_number_in_the_body_may_not_differ(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        body = correction(now_reads(order, customerNumber="TFI2099999999"), invoice)
        refused(api, order, invoice, body, 422, "customer-change-forbidden", "order.customerNumber")

    def test_customer_in_the_path_must_own_the_order(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        stranger = Api(api.client, api.key, customer="TFI2099999999")
        body = correction(now_reads(order, billToAddress=AddressFactory(street="Neuweg")), invoice)
        refused(
            api,
            order,
            invoice,
            body,
            422,
            "customer-change-forbidden",
            "customerNumber",
            sender=stranger,
        )


# --- rule 2: the order must be settled --------------------------------------------------


class TestSettlement:
    def test_order_with_the_other_positions_cancelled_may_be_corrected(self, api: Api) -> None:
        order = ordered(api)
        ref = order["orderReference"]
        assert api.pay(ref).status_code == 200  # prepaid: 35.70
        invoice = invoiced(api, order, [1])
        assert api.cancel(ref, [2]).status_code == 200
        body = with_item(order, 0, grossUnitPrice=Decimal("10.00"), vatAmount=Decimal("1.60"))
        answer = corrected(api, body, invoice)
        assert (answer["changed"], answer["after"]["grossTotal"]) == (True, Decimal("10.00"))
        assert [r["amount"] for r in api.refunds(ref)] == [Decimal("23.80"), Decimal("1.90")]
        assert api.order(ref)["totals"]["balance"] == 0

    def test_order_with_an_open_position_is_refused(self, api: Api) -> None:
        order = ordered(api)
        invoice = invoiced(api, order, [1])
        body = correction(with_item(order, 0, description="Blumentopf XXL"), invoice)
        answer = refused(api, order, invoice, body, 409, "order-not-settled", "order.items")
        assert "2" in answer["detail"]


# --- rule 3: no returned or goodwilled position on the invoice -------------------------


def _two_invoices(api: Api) -> tuple[Body, Body, Body]:
    """An order whose position 1 is on invoice A and position 2 on invoice B."""
    order = ordered(api)
    return order, invoiced(api, order, [1]), invoiced(api, order, [2])


class TestReturnsAndGoodwills:
    def test_return_on_another_invoice_does_not_block(self, api: Api) -> None:
        order, first, _second = _two_invoices(api)
        ref = order["orderReference"]
        assert api.pay(ref).status_code == 200
        assert api.return_items(ref, "R-1", [(2, Decimal(1))]).status_code == 200
        body = with_item(order, 0, grossUnitPrice=Decimal("10.00"), vatAmount=Decimal("1.60"))
        answer = corrected(api, body, first)
        assert answer["refund"]["amount"] == Decimal("1.90")
        assert [r["amount"] for r in api.refunds(ref)] == [Decimal("23.80"), Decimal("1.90")]

    def test_returned_position_blocks_its_invoice(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        ref = order["orderReference"]
        assert api.return_items(ref, "R-1", [(1, Decimal(1))]).status_code == 200
        body = correction(with_item(order, 1, description="Vase"), invoice)
        refused(api, order, invoice, body, 409, "position-returned", "invoice.items")
        assert_books_balance(api, ref)

    def test_goodwill_on_another_invoice_does_not_block(self, api: Api) -> None:
        order, first, _second = _two_invoices(api)
        ref = order["orderReference"]
        assert api.pay(ref).status_code == 200
        assert api.goodwill(ref, "G-1", [(2, Decimal("5.00"))]).status_code == 200
        body = with_item(order, 0, grossUnitPrice=Decimal("10.00"), vatAmount=Decimal("1.60"))
        answer = corrected(api, body, first)
        assert answer["refund"]["amount"] == Decimal("1.90")
        assert [r["amount"] for r in api.refunds(ref)] == [Decimal("5.00"), Decimal("1.90")]

    def test_goodwilled_position_blocks_its_invoice(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        ref = order["orderReference"]
        assert api.goodwill(ref, "G-1", [(2, Decimal("5.00"))]).status_code == 200
        body = correction(with_item(order, 0, description="Vase"), invoice)
        refused(api, order, invoice, body, 409, "position-goodwilled", "invoice.items")
        assert_books_balance(api, ref)


# --- rule 4: prices only fall; quantities, positions and currency stay ----------------


class TestPricesQuantitiesPositionsCurrency:
    def test_gross_price_may_be_reduced(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        body = with_item(order, 1, grossUnitPrice=Decimal("20.00"), vatAmount=Decimal("3.19"))
        answer = corrected(api, body, invoice)
        assert answer["before"]["grossTotal"] == Decimal("35.70")
        assert answer["after"]["grossTotal"] == Decimal("31.90")
        assert_books_balance(api, order["orderReference"])

    def test_gross_price_may_not_increase(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        body = correction(
            with_item(order, 1, grossUnitPrice=Decimal("23.81"), vatAmount=Decimal("3.80")),
            invoice,
        )
        refused(
            api, order, invoice, body, 422, "gross-price-increase", "order.items[1].grossUnitPrice"
        )

    def test_quantity_written_differently_is_the_same_quantity(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        answer = corrected(api, with_item(order, 0, quantity=Decimal("1.000")), invoice)
        assert answer["changed"] is False

    def test_quantity_may_not_change(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        body = correction(with_item(order, 0, quantity=Decimal(2)), invoice)
        refused(
            api, order, invoice, body, 422, "quantity-change-forbidden", "order.items[0].quantity"
        )

    def test_invoice_positions_may_be_listed_in_another_order(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        reordered = {**invoice, "items": list(reversed(invoice["items"]))}
        answer = corrected(api, with_item(order, 0, description="Vase"), reordered)
        assert answer["changed"] is True

    def test_invoice_positions_may_not_change(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        fewer = {**invoice, "items": [{"orderItemReference": 1}]}
        body = correction(order, fewer)
        refused(api, order, invoice, body, 422, "invoice-positions-changed", "invoice.items")

    def test_order_positions_may_be_listed_in_another_order(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        reordered = now_reads(order, items=list(reversed(order["items"])))
        answer = corrected(api, with_item(reordered, 1, description="Vase"), invoice)
        assert answer["changed"] is True
        doc = api.invoice_doc(order["orderReference"], invoice["invoiceReference"])
        assert [line["description"] for line in doc["versions"][-1]["lines"]] == [
            "Vase",
            "Blumentopf XL",
        ]

    def test_order_positions_may_not_change(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        body = correction(now_reads(order, items=[*order["items"], item(3, "5.95")]), invoice)
        refused(api, order, invoice, body, 422, "order-positions-changed", "order.items")

    def test_position_on_another_invoice_may_be_restated_unchanged(self, api: Api) -> None:
        order, first, second = _two_invoices(api)
        answer = corrected(api, with_item(order, 0, description="Blumentopf XXL"), first)
        assert answer["changed"] is True
        doc = api.invoice_doc(order["orderReference"], second["invoiceReference"])
        assert doc["currentVersion"] == 1

    def test_position_on_another_invoice_may_not_change(self, api: Api) -> None:
        order, first, _second = _two_invoices(api)
        body = correction(
            with_item(order, 1, grossUnitPrice=Decimal("20.00"), vatAmount=Decimal("3.19")),
            first,
        )
        refused(api, order, first, body, 422, "position-change-forbidden", "order.items[1]")

    def test_currency_restated_as_it_is_is_accepted(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        body = now_reads(order, currency="EUR", billToAddress=AddressFactory(street="Neuweg"))
        assert corrected(api, body, invoice)["changed"] is True

    def test_currency_may_not_change(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        body = correction(now_reads(order, currency="CHF"), invoice)
        refused(api, order, invoice, body, 422, "currency-change-forbidden", "order.currency")


# --- rule 5: references equal the path --------------------------------------------------


class TestReferences:
    def test_references_equal_to_the_path_are_accepted(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        answer = corrected(api, with_item(order, 0, description="Vase"), invoice)
        assert answer["invoiceReference"] == invoice["invoiceReference"]

    def test_order_reference_must_equal_the_path(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        body = correction(now_reads(order, orderReference="ORD99999999"), invoice)
        refused(api, order, invoice, body, 422, "reference-mismatch", "order.orderReference")

    def test_invoice_reference_must_equal_the_path(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        body = correction(order, {**invoice, "invoiceReference": "INV99999999"})
        refused(api, order, invoice, body, 422, "reference-mismatch", "invoice.invoiceReference")


# --- rule 6: VAT type, rate and country may change; reverse charge needs a VAT ID -----


def _austrian_order(api: Api) -> tuple[Body, Body]:
    """A private customer in Austria, supplied from Germany, paid in full: 36.00 with 6.00 VAT."""
    return paid_invoiced_order(
        api,
        vatDeclarationCountry="AT",
        billToAddress=AddressFactory(countryCode="AT", postalCode="1010", postalPlace="Wien"),
        items=[item(1, "12.00", "20"), item(2, "24.00", "20")],
    )


def _as_business(order: Body, vat_id: str | None) -> Body:
    """The Austrian customer proves to be a business: reverse charge at the net prices."""
    address = {**order["billToAddress"], "companyName": "Muster Handels GmbH"}
    if vat_id is not None:
        address["taxIdentificationNumber"] = vat_id
    return now_reads(
        order, billToAddress=address, items=[reverse_charge(1, "10.00"), reverse_charge(2, "20.00")]
    )


class TestDeclarationCountry:
    def test_declaration_country_may_change(self, api: Api) -> None:
        order, invoice = paid_invoiced_order(api)
        items = [item(1, "11.90", "20"), item(2, "23.80", "20")]
        body = now_reads(order, vatDeclarationCountry="AT", items=items)
        answer = corrected(api, body, invoice)
        assert answer["refund"] is None
        assert tax_rows(api) == {
            ("AT", "NORMAL", 20): (Decimal("29.75"), Decimal("5.95")),
            ("DE", "NORMAL", 19): (0, 0),
        }
        doc = api.invoice_doc(order["orderReference"], invoice["invoiceReference"])
        assert [v["details"]["vatDeclarationCountry"] for v in doc["versions"]] == ["DE", "AT"]


class TestVatAmount:
    def test_vat_amount_must_match_the_new_rate(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        body = correction(with_item(order, 0, vatPercent=Decimal(16)), invoice)
        refused(api, order, invoice, body, 422, "vat-amount-mismatch", "order.items[0].vatAmount")

    def test_vat_amount_matching_the_new_rate_is_accepted(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        body = with_item(order, 0, vatPercent=Decimal(16), vatAmount=Decimal("1.64"))
        answer = corrected(api, body, invoice)
        assert [t["vatPercent"] for t in answer["after"]["taxes"]] == [16, 19]


class TestVatIdentification:
    def test_reverse_charge_with_a_valid_vat_id_is_accepted(self, api: Api) -> None:
        order, invoice = _austrian_order(api)
        answer = corrected(api, _as_business(order, VALID_AT_VAT_ID), invoice)
        assert answer["after"]["vatTotal"] == 0

    def test_reverse_charge_with_an_invalid_vat_id_is_refused(self, api: Api) -> None:
        order, invoice = _austrian_order(api)
        body = correction(_as_business(order, "ATU13585628"), invoice)
        refused(
            api,
            order,
            invoice,
            body,
            422,
            "invalid-vat-id",
            "order.billToAddress.taxIdentificationNumber",
        )
        assert_books_balance(api, order["orderReference"])

    def test_reverse_charge_without_a_vat_id_is_refused(self, api: Api) -> None:
        order, invoice = _austrian_order(api)
        body = correction(_as_business(order, None), invoice)
        refused(
            api,
            order,
            invoice,
            body,
            422,
            "invalid-vat-id",
            "order.billToAddress.taxIdentificationNumber",
        )


# --- scenarios: documents, ledger, tax report, refunds ----------------------------------


class TestBillingAddressChange:
    def test_new_version_and_credit_note_with_the_same_totals_and_taxes(self, api: Api) -> None:
        order, invoice = paid_invoiced_order(api)
        ref, inv = order["orderReference"], invoice["invoiceReference"]
        before = snapshot(api, ref, inv)
        report_before = tax_rows(api, JUNE_2024)
        address = AddressFactory(street="Hafenweg", postalCode="20457", postalPlace="Hamburg")

        answer = corrected(api, now_reads(order, billToAddress=address), invoice)

        assert (answer["changed"], answer["version"], answer["refund"]) == (True, 2, None)
        assert answer["before"] | {"version": 2} == answer["after"]
        doc = api.invoice_doc(ref, inv)
        v1, v2 = doc["versions"]
        assert (v1["status"], v1["nullifiedBy"]) == ("nullified", answer["creditNoteReference"])
        assert (v2["status"], v2["billToAddress"]) == ("issued", address)
        assert v2["lines"] == v1["lines"]
        assert version_summary(doc, 1) | {"version": 2} == version_summary(doc, 2)
        (note,) = doc["creditNotes"]
        assert (note["nullifiesVersion"], note["grossTotal"]) == (1, Decimal("35.70"))

        added = new_entries(before["journal"], api.journal(ref))
        assert sorted(e["kind"] for e in added) == ["credit-note", "invoice"]
        assert booking(entry_of(added, "credit-note")) == {
            "receivable": Decimal("-35.70"),
            "revenue/DE/NORMAL/19": Decimal("30.00"),
            "vat-payable/DE/NORMAL/19": Decimal("5.70"),
        }
        assert booking(entry_of(added, "invoice")) == {
            "receivable": Decimal("35.70"),
            "revenue/DE/NORMAL/19": Decimal("-30.00"),
            "vat-payable/DE/NORMAL/19": Decimal("-5.70"),
        }
        assert (
            tax_rows(api, JUNE_2024)
            == report_before
            == {("DE", "NORMAL", 19): (Decimal("30.00"), Decimal("5.70"))}
        )
        assert api.refunds(ref) == []
        assert api.order(ref)["version"] == before["order"]["version"] + 1
        assert api.order(ref)["totals"] == before["order"]["totals"]
        assert_books_balance(api, ref)


class TestBecomingABusinessCustomer:
    def test_reverse_charge_refunds_the_paid_vat_exactly_once(self, api: Api) -> None:
        order, invoice = _austrian_order(api)
        ref, inv = order["orderReference"], invoice["invoiceReference"]
        before = snapshot(api, ref, inv)
        assert tax_rows(api) == {("AT", "NORMAL", 20): (Decimal("30.00"), Decimal("6.00"))}
        body = _as_business(order, VALID_AT_VAT_ID)

        answer = corrected(api, body, invoice)

        assert answer["before"]["vatTotal"] == Decimal("6.00")
        assert (answer["after"]["grossTotal"], answer["after"]["netTotal"]) == (
            Decimal("30.00"),
            Decimal("30.00"),
        )
        assert answer["after"]["vatTotal"] == 0
        assert answer["after"]["taxes"] == [
            {
                "declarationCountry": "AT",
                "vatType": "REVERSE",
                "vatPercent": 0,
                "net": Decimal("30.00"),
                "vat": 0,
                "gross": Decimal("30.00"),
            }
        ]
        assert answer["refund"]["amount"] == answer["before"]["vatTotal"] == Decimal("6.00")
        (refund,) = api.refunds(ref)
        assert (refund["id"], refund["amount"], refund["status"]) == (
            answer["refund"]["id"],
            Decimal("6.00"),
            "pending",
        )

        added = new_entries(before["journal"], api.journal(ref))
        assert sorted(e["kind"] for e in added) == ["credit-note", "invoice", "refund"]
        assert booking(entry_of(added, "credit-note")) == {
            "receivable": Decimal("-36.00"),
            "revenue/AT/NORMAL/20": Decimal("30.00"),
            "vat-payable/AT/NORMAL/20": Decimal("6.00"),
        }
        assert booking(entry_of(added, "invoice")) == {
            "receivable": Decimal("30.00"),
            "revenue/AT/REVERSE/0": Decimal("-30.00"),
        }
        assert booking(entry_of(added, "refund")) == {
            "receivable": Decimal("6.00"),
            "refunds-payable": Decimal("-6.00"),
        }
        assert tax_rows(api) == {
            ("AT", "NORMAL", 20): (0, 0),
            ("AT", "REVERSE", 0): (Decimal("30.00"), 0),
        }
        doc = api.invoice_doc(ref, inv)
        assert doc["versions"][-1]["billToAddress"]["taxIdentificationNumber"] == VALID_AT_VAT_ID
        assert [(p["vatType"], p["grossUnitPrice"]) for p in api.order(ref)["positions"]] == [
            ("REVERSE", Decimal("10.00")),
            ("REVERSE", Decimal("20.00")),
        ]
        totals = api.order(ref)["totals"]
        assert (totals["paid"], totals["refunded"], totals["balance"]) == (
            Decimal("36.00"),
            Decimal("6.00"),
            0,
        )
        assert_books_balance(api, ref)

        after_first = snapshot(api, ref, inv)
        again = corrected(api, body, invoice)
        assert (again["changed"], again["refund"], again["version"]) == (False, None, 2)
        assert snapshot(api, ref, inv) == after_first
        assert_books_balance(api, ref)


class TestVatRateChange:
    def test_lower_rate_at_the_same_gross_moves_the_tax_to_the_new_rate(self, api: Api) -> None:
        order, invoice = paid_invoiced_order(api)
        ref, inv = order["orderReference"], invoice["invoiceReference"]
        before = snapshot(api, ref, inv)
        body = now_reads(order, items=[item(1, "11.90", "16"), item(2, "23.80", "16")])
        assert [i["vatAmount"] for i in body["items"]] == [Decimal("1.64"), Decimal("3.28")]
        # The rate fell on 1 July; the corrected invoice is dated then.
        july_invoice = {**invoice, "invoiceDate": "2024-07-01", "dueDate": "2024-07-31"}

        answer = corrected(api, body, july_invoice)

        assert (answer["before"]["netTotal"], answer["before"]["vatTotal"]) == (
            Decimal("30.00"),
            Decimal("5.70"),
        )
        assert (answer["after"]["netTotal"], answer["after"]["vatTotal"]) == (
            Decimal("30.78"),
            Decimal("4.92"),
        )
        assert answer["after"]["grossTotal"] == answer["before"]["grossTotal"] == Decimal("35.70")
        assert answer["refund"] is None
        assert api.refunds(ref) == []

        added = new_entries(before["journal"], api.journal(ref))
        assert booking(entry_of(added, "credit-note")) == {
            "receivable": Decimal("-35.70"),
            "revenue/DE/NORMAL/19": Decimal("30.00"),
            "vat-payable/DE/NORMAL/19": Decimal("5.70"),
        }
        assert booking(entry_of(added, "invoice")) == {
            "receivable": Decimal("35.70"),
            "revenue/DE/NORMAL/16": Decimal("-30.78"),
            "vat-payable/DE/NORMAL/16": Decimal("-4.92"),
        }
        assert {e["documentDate"] for e in added} == {"2024-07-01"}
        # June stays as declared; July reverses the 19 % sale and declares it at 16 %.
        assert tax_rows(api, JUNE_2024) == {
            ("DE", "NORMAL", 19): (Decimal("30.00"), Decimal("5.70"))
        }
        assert tax_rows(api, JULY_2024) == {
            ("DE", "NORMAL", 16): (Decimal("30.78"), Decimal("4.92")),
            ("DE", "NORMAL", 19): (Decimal("-30.00"), Decimal("-5.70")),
        }
        assert tax_rows(api) == {
            ("DE", "NORMAL", 16): (Decimal("30.78"), Decimal("4.92")),
            ("DE", "NORMAL", 19): (0, 0),
        }
        doc = api.invoice_doc(ref, inv)
        assert doc["versions"][-1]["taxes"] == [
            {
                "declarationCountry": "DE",
                "vatType": "NORMAL",
                "vatPercent": 16,
                "net": Decimal("30.78"),
                "vat": Decimal("4.92"),
                "gross": Decimal("35.70"),
            }
        ]
        assert doc["creditNotes"][0]["taxes"] == doc["versions"][0]["taxes"]
        assert_books_balance(api, ref)


class TestPriceReductionAfterPayment:
    def test_refunds_exactly_the_difference_once(self, api: Api) -> None:
        order, invoice = paid_invoiced_order(api)
        ref, inv = order["orderReference"], invoice["invoiceReference"]
        before = snapshot(api, ref, inv)
        body = with_item(order, 1, grossUnitPrice=Decimal("20.00"), vatAmount=Decimal("3.19"))

        answer = corrected(api, body, invoice)

        assert answer["after"]["grossTotal"] == Decimal("31.90")
        assert (answer["after"]["netTotal"], answer["after"]["vatTotal"]) == (
            Decimal("26.81"),
            Decimal("5.09"),
        )
        assert answer["refund"]["amount"] == Decimal("3.80")
        (refund,) = api.refunds(ref)
        assert refund["amount"] == Decimal("3.80")
        added = new_entries(before["journal"], api.journal(ref))
        assert sorted(e["kind"] for e in added) == ["credit-note", "invoice", "refund"]
        assert booking(entry_of(added, "invoice")) == {
            "receivable": Decimal("31.90"),
            "revenue/DE/NORMAL/19": Decimal("-26.81"),
            "vat-payable/DE/NORMAL/19": Decimal("-5.09"),
        }
        assert tax_rows(api) == {("DE", "NORMAL", 19): (Decimal("26.81"), Decimal("5.09"))}
        totals = api.order(ref)["totals"]
        assert (totals["gross"], totals["invoiced"], totals["refunded"], totals["balance"]) == (
            Decimal("31.90"),
            Decimal("31.90"),
            Decimal("3.80"),
            0,
        )
        assert_books_balance(api, ref)

        after_first = snapshot(api, ref, inv)
        assert corrected(api, body, invoice)["changed"] is False
        assert snapshot(api, ref, inv) == after_first

    def test_refunds_only_what_was_paid_beyond_the_new_total(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        ref = order["orderReference"]
        assert api.pay(ref, Decimal("33.00")).status_code == 200
        body = with_item(order, 1, grossUnitPrice=Decimal("20.00"), vatAmount=Decimal("3.19"))

        answer = corrected(api, body, invoice)

        assert answer["refund"]["amount"] == Decimal("1.10")
        assert [r["amount"] for r in api.refunds(ref)] == [Decimal("1.10")]
        assert api.order(ref)["totals"]["balance"] == 0

    def test_partly_paid_order_still_owing_gets_no_refund(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        ref = order["orderReference"]
        assert api.pay(ref, Decimal("30.00")).status_code == 200
        body = with_item(order, 1, grossUnitPrice=Decimal("20.00"), vatAmount=Decimal("3.19"))

        answer = corrected(api, body, invoice)

        assert answer["refund"] is None
        assert api.refunds(ref) == []
        assert api.order(ref)["totals"]["balance"] == Decimal("1.90")


class TestCreditNoteReference:
    def test_generated_reference_names_invoice_and_nullified_version(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        inv = invoice["invoiceReference"]
        first = corrected(api, with_item(order, 0, description="Vase"), invoice)
        second = corrected(api, with_item(order, 0, description="Krug"), invoice)
        assert (first["creditNoteReference"], second["creditNoteReference"]) == (
            f"CN-{inv}-1",
            f"CN-{inv}-2",
        )
        doc = api.invoice_doc(order["orderReference"], inv)
        assert [(v["version"], v["status"], v["nullifiedBy"]) for v in doc["versions"]] == [
            (1, "nullified", f"CN-{inv}-1"),
            (2, "nullified", f"CN-{inv}-2"),
            (3, "issued", None),
        ]

    def test_another_correction_needs_another_reference(self, api: Api) -> None:
        order, invoice = api.invoiced_order()
        corrected(api, with_item(order, 0, description="Vase"), invoice, goodwillReference="GW-1")
        changed = with_item(order, 0, description="Krug")
        body = correction(changed, invoice, goodwillReference="GW-1")
        refused(api, order, invoice, body, 409, "reference-taken", "goodwillReference")

    def test_reference_of_an_existing_goodwill_is_taken(self, api: Api) -> None:
        # The credit note is an automatic goodwill: both share one set of references.
        order, first, _second = _two_invoices(api)
        assert (
            api.goodwill(order["orderReference"], "G-1", [(2, Decimal("5.00"))]).status_code == 200
        )
        body = correction(with_item(order, 0, description="Vase"), first, goodwillReference="G-1")
        refused(api, order, first, body, 409, "reference-taken", "goodwillReference")

    def test_a_goodwill_holding_the_generated_reference_refuses_the_correction(
        self, api: Api
    ) -> None:
        # No reference given: the credit note would be CN-<invoice>-<current version>.
        order, first, _second = _two_invoices(api)
        ref, inv = order["orderReference"], first["invoiceReference"]
        corrected(api, with_item(order, 0, description="Vase"), first)  # takes CN-<inv>-1
        assert api.goodwill(ref, f"CN-{inv}-2", [(2, Decimal("5.00"))]).status_code == 200
        body = correction(with_item(order, 0, description="Krug"), first)
        refused(api, order, first, body, 409, "reference-taken", "goodwillReference")

    def test_goodwill_may_not_take_the_reference_of_a_credit_note(self, api: Api) -> None:
        order, first, _second = _two_invoices(api)
        ref = order["orderReference"]
        corrected(api, with_item(order, 0, description="Vase"), first, goodwillReference="G-1")
        before = snapshot(api, ref, first["invoiceReference"])
        response = api.goodwill(ref, "G-1", [(2, Decimal("5.00"))])
        assert fields_of(problem(response, 409, "reference-taken")) == {"goodwillReference"}
        assert snapshot(api, ref, first["invoiceReference"]) == before


class TestNothingWrittenWhenRefused:
    """Each refusal leaves journal, documents, refunds and order as they were (see refused)."""

    def test_returned_position(self, api: Api) -> None:
        order, invoice = paid_invoiced_order(api)
        ref = order["orderReference"]
        assert api.return_items(ref, "R-1", [(2, Decimal(1))]).status_code == 200
        body = correction(
            with_item(order, 0, grossUnitPrice=Decimal("10.00"), vatAmount=Decimal("1.60")),
            invoice,
        )
        refused(api, order, invoice, body, 409, "position-returned", "invoice.items")
        assert len(api.refunds(ref)) == 1  # the return's own refund, nothing more
        assert_books_balance(api, ref)

    def test_goodwilled_position(self, api: Api) -> None:
        order, invoice = paid_invoiced_order(api)
        ref = order["orderReference"]
        assert api.goodwill(ref, "G-1", [(1, Decimal("1.90"))]).status_code == 200
        body = correction(
            with_item(order, 1, grossUnitPrice=Decimal("20.00"), vatAmount=Decimal("3.19")),
            invoice,
        )
        refused(api, order, invoice, body, 409, "position-goodwilled", "invoice.items")
        assert_books_balance(api, ref)

    def test_open_position(self, api: Api) -> None:
        order = ordered(api)
        invoice = invoiced(api, order, [1])
        ref = order["orderReference"]
        assert api.pay(ref).status_code == 200
        body = correction(
            with_item(order, 0, grossUnitPrice=Decimal("10.00"), vatAmount=Decimal("1.60")),
            invoice,
        )
        refused(api, order, invoice, body, 409, "order-not-settled", "order.items")
        assert_books_balance(api, ref)

    def test_gross_increase(self, api: Api) -> None:
        order, invoice = paid_invoiced_order(api)
        body = correction(
            with_item(order, 0, grossUnitPrice=Decimal("12.00"), vatAmount=Decimal("1.92")),
            invoice,
        )
        refused(
            api, order, invoice, body, 422, "gross-price-increase", "order.items[0].grossUnitPrice"
        )
        assert_books_balance(api, order["orderReference"])

    def test_customer_change(self, api: Api) -> None:
        order, invoice = paid_invoiced_order(api)
        address = AddressFactory(lastName="Musterfrau")
        body = correction(
            now_reads(order, customerNumber="TFI2099999999", billToAddress=address), invoice
        )
        refused(api, order, invoice, body, 422, "customer-change-forbidden", "order.customerNumber")
        assert_books_balance(api, order["orderReference"])


class TestIdempotence:
    def test_the_same_put_twice_creates_nothing_the_second_time(self, api: Api) -> None:
        order, invoice = paid_invoiced_order(api)
        ref, inv = order["orderReference"], invoice["invoiceReference"]
        body = with_item(order, 0, grossUnitPrice=Decimal("10.00"), vatAmount=Decimal("1.60"))
        first = corrected(api, body, invoice, goodwillReference="GW-CORR-1")
        assert (first["changed"], first["refund"]["amount"]) == (True, Decimal("1.90"))
        after_first = snapshot(api, ref, inv)

        second = corrected(api, body, invoice, goodwillReference="GW-CORR-1")

        assert (second["changed"], second["version"], second["creditNoteReference"]) == (
            False,
            2,
            None,
        )
        assert second["refund"] is None
        assert second["before"] == second["after"] == first["after"]
        after_second = snapshot(api, ref, inv)
        assert after_second == after_first
        assert len(after_second["journal"]) == 5  # invoice, payment, credit note, invoice, refund
        assert len(after_second["invoice"]["versions"]) == 2
        assert len(after_second["refunds"]) == 1
        assert_books_balance(api, ref)


class TestDryRun:
    def test_dry_run_writes_nothing_and_answers_what_the_real_call_does(self, api: Api) -> None:
        order, invoice = paid_invoiced_order(api)
        ref, inv = order["orderReference"], invoice["invoiceReference"]
        body = with_item(order, 1, grossUnitPrice=Decimal("20.00"), vatAmount=Decimal("3.19"))
        before = snapshot(api, ref, inv)

        dry = corrected(api, body, invoice, dry_run=True)

        assert snapshot(api, ref, inv) == before
        real = corrected(api, body, invoice)
        assert (dry["dryRun"], real["dryRun"]) == (True, False)
        same = ("changed", "invoiceReference", "version", "creditNoteReference", "before", "after")
        assert {k: dry[k] for k in same} == {k: real[k] for k in same}
        assert dry["version"] == 2
        assert dry["creditNoteReference"] == f"CN-{inv}-1"
        assert dry["before"]["grossTotal"] == Decimal("35.70")
        assert dry["after"]["taxes"] == [
            {
                "declarationCountry": "DE",
                "vatType": "NORMAL",
                "vatPercent": 19,
                "net": Decimal("26.81"),
                "vat": Decimal("5.09"),
                "gross": Decimal("31.90"),
            }
        ]
        refund_fields = ("amount", "currency", "status", "cause")
        assert {k: dry["refund"][k] for k in refund_fields} == {
            k: real["refund"][k] for k in refund_fields
        }
        assert dry["refund"]["amount"] == Decimal("3.80")
        assert len(api.refunds(ref)) == 1
        assert_books_balance(api, ref)

    def test_dry_run_of_a_refused_correction_is_refused_alike(self, api: Api) -> None:
        order, invoice = paid_invoiced_order(api)
        ref, inv = order["orderReference"], invoice["invoiceReference"]
        before = snapshot(api, ref, inv)
        body = correction(with_item(order, 0, quantity=Decimal(3)), invoice)
        response = api.correct(ref, inv, body, dry_run=True)
        answer = problem(response, 422, "quantity-change-forbidden")
        assert fields_of(answer) == {"order.items[0].quantity"}
        assert snapshot(api, ref, inv) == before


def test_a_30_character_invoice_gets_a_generated_credit_note_reference(api: Api) -> None:
    order = ordered(api)
    long_reference = "I" * 30
    invoice = invoiced(api, order, [1, 2], invoiceReference=long_reference)

    answer = corrected(
        api,
        with_item(order, 0, grossUnitPrice=Decimal("10.00"), vatAmount=Decimal("1.60")),
        invoice,
    )

    assert answer["creditNoteReference"] == f"CN-{long_reference}-1"
    doc = api.invoice_doc(order["orderReference"], long_reference)
    assert doc["versions"][0]["nullifiedBy"] == f"CN-{long_reference}-1"
    assert [cn["reference"] for cn in doc["creditNotes"]] == [f"CN-{long_reference}-1"]
