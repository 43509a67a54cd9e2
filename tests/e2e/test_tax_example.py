"""A worked example with 19 % and 7 % lines, a discount line and shipping costs (SPEC section 4).

The invoice, the journal and the tax report must all show the amounts computed here by hand.

Lines (gross = unit price x quantity, rounded half up):
    1  SALES_ARTICLE   2 x 19.99  at 19 % NORMAL    =  39.98
    2  SALES_ARTICLE   3 x  4.29  at  7 % REDUCED   =  12.87
    3  DISCOUNT        1 x -5.00  at 19 % NORMAL    =  -5.00
    4  SHIPPING_COSTS  1 x  4.95  at 19 % NORMAL    =   4.95

Per rate, gross is summed first and split once, VAT = gross x rate / (100 + rate):
    19 %: gross 39.98 - 5.00 + 4.95 = 39.93
          VAT   39.93 x 19 / 119 = 758.67 / 119 = 6.37537... -> 6.38
          net   39.93 - 6.38 = 33.55
     7 %: gross 12.87
          VAT   12.87 x 7 / 107 = 90.09 / 107 = 0.84196... -> 0.84
          net   12.87 - 0.84 = 12.03
Invoice: gross 39.93 + 12.87 = 52.80, VAT 6.38 + 0.84 = 7.22, net 33.55 + 12.03 = 45.58.

(3 x 4.29 rather than 4.28: with 4.28 the 7 % VAT comes out exact, and the example should
round in both groups. Rounding each line instead would give 6.38 - 0.80 + 0.79 = 6.37 at 19 %:
the per-rate split is what the service promises.)
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests import factories
from tests.e2e.conftest import Api, journal_balances
from tests.factories import item

INVOICE_DATE = "2024-06-28"

NORMAL_19 = {
    "declarationCountry": "DE",
    "vatType": "NORMAL",
    "vatPercent": 19,
    "net": Decimal("33.55"),
    "vat": Decimal("6.38"),
    "gross": Decimal("39.93"),
}
REDUCED_7 = {
    "declarationCountry": "DE",
    "vatType": "REDUCED",
    "vatPercent": 7,
    "net": Decimal("12.03"),
    "vat": Decimal("0.84"),
    "gross": Decimal("12.87"),
}


def example_items() -> list[dict[str, Any]]:
    return [
        item(1, "19.99", "19", quantity="2"),
        item(2, "4.29", "7", quantity="3"),
        item(3, "-5.00", "19", positionType="DISCOUNT"),
        item(4, "4.95", "19", positionType="SHIPPING_COSTS"),
    ]


def invoice_example(api: Api) -> tuple[str, dict[str, Any]]:
    """Order and invoice the example; returns the order reference and the invoice answer."""
    order = factories.OrderFactory(items=example_items())
    response = api.create_order(order)
    assert response.status_code == 200, response.get_json()
    invoice = factories.InvoiceFactory(
        invoiceReference="INV-EXAMPLE",
        invoiceDate=INVOICE_DATE,
        dueDate="2024-07-28",
        items=[{"orderItemReference": ref} for ref in (1, 2, 3, 4)],
    )
    response = api.invoice(order["orderReference"], invoice)
    assert response.status_code == 200, response.get_json()
    return str(order["orderReference"]), response.get_json()


def test_the_discount_line_is_accepted_with_a_negative_price_and_negative_vat(api: Api) -> None:
    order = factories.OrderFactory(items=example_items())
    discount = order["items"][2]
    # -5.00 x 19 / 119 = -0.79831... -> -0.80 (half up rounds away from zero)
    assert (discount["grossUnitPrice"], discount["vatAmount"]) == (
        Decimal("-5.00"),
        Decimal("-0.80"),
    )

    response = api.create_order(order)

    assert response.status_code == 200, response.get_json()
    read = next(p for p in response.get_json()["positions"] if p["orderItemReference"] == 3)
    assert (read["positionType"], read["grossUnitPrice"]) == ("DISCOUNT", Decimal("-5.00"))
    # Before invoicing the order is worth the sum of its line gross: 39.98 + 12.87 - 5.00 + 4.95.
    assert response.get_json()["totals"]["gross"] == Decimal("52.80")


def test_invoice_lines_carry_the_hand_computed_line_gross(api: Api) -> None:
    _, invoice = invoice_example(api)

    lines = invoice["versions"][0]["lines"]

    assert [(line["positionType"], line["gross"]) for line in lines] == [
        ("SALES_ARTICLE", Decimal("39.98")),
        ("SALES_ARTICLE", Decimal("12.87")),
        ("DISCOUNT", Decimal("-5.00")),
        ("SHIPPING_COSTS", Decimal("4.95")),
    ]


def test_invoice_taxes_and_totals_match_the_hand_computed_example(api: Api) -> None:
    _, invoice = invoice_example(api)

    version = invoice["versions"][0]

    assert version["taxes"] == [NORMAL_19, REDUCED_7]
    assert version["grossTotal"] == Decimal("52.80")
    assert version["vatTotal"] == Decimal("7.22")
    assert version["netTotal"] == Decimal("45.58")


def test_the_stored_invoice_reads_back_with_the_same_taxes(api: Api) -> None:
    order_ref, answered = invoice_example(api)

    stored = api.invoice_doc(order_ref, "INV-EXAMPLE")["versions"][0]

    assert stored["taxes"] == answered["versions"][0]["taxes"] == [NORMAL_19, REDUCED_7]
    assert (stored["grossTotal"], stored["netTotal"], stored["vatTotal"]) == (
        Decimal("52.80"),
        Decimal("45.58"),
        Decimal("7.22"),
    )


def test_the_order_totals_equal_the_invoice_gross(api: Api) -> None:
    order_ref, _ = invoice_example(api)

    totals = api.order(order_ref)["totals"]

    assert totals["gross"] == totals["invoiced"] == totals["balance"] == Decimal("52.80")


def test_the_journal_books_the_hand_computed_net_and_vat_per_rate(api: Api) -> None:
    order_ref, _ = invoice_example(api)

    entries = api.journal(order_ref)

    assert journal_balances(entries)
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["kind"], entry["documentReference"], entry["documentDate"]) == (
        "invoice",
        "INV-EXAMPLE",
        INVOICE_DATE,
    )
    booked = {line["account"]: (line["debit"], line["credit"]) for line in entry["lines"]}
    assert booked == {
        "receivable": (Decimal("52.80"), 0),
        "revenue/DE/NORMAL/19": (0, Decimal("33.55")),
        "vat-payable/DE/NORMAL/19": (0, Decimal("6.38")),
        "revenue/DE/REDUCED/7": (0, Decimal("12.03")),
        "vat-payable/DE/REDUCED/7": (0, Decimal("0.84")),
    }


def test_the_tax_report_for_the_invoice_month_equals_the_hand_computed_example(
    api: Api,
) -> None:
    invoice_example(api)

    rows = api.tax_report("2024-06-01", "2024-06-30")

    assert rows == [{"currency": "EUR", **NORMAL_19}, {"currency": "EUR", **REDUCED_7}]


def test_the_tax_report_equals_the_vat_booked_in_the_journal(api: Api) -> None:
    order_ref, _ = invoice_example(api)

    rows = api.tax_report("2024-06-01", "2024-06-30")

    vat_booked = {
        line["account"]: line["credit"] - line["debit"]
        for entry in api.journal(order_ref)
        for line in entry["lines"]
        if line["account"].startswith("vat-payable/")
    }
    reported = {
        f"vat-payable/{r['declarationCountry']}/{r['vatType']}/{r['vatPercent']}": r["vat"]
        for r in rows
    }
    assert (
        reported
        == vat_booked
        == {
            "vat-payable/DE/NORMAL/19": Decimal("6.38"),
            "vat-payable/DE/REDUCED/7": Decimal("0.84"),
        }
    )


def test_a_period_of_just_the_invoice_date_reports_the_example(api: Api) -> None:
    invoice_example(api)

    rows = api.tax_report(INVOICE_DATE, INVOICE_DATE)

    assert [(r["vatPercent"], r["vat"]) for r in rows] == [
        (19, Decimal("6.38")),
        (7, Decimal("0.84")),
    ]


def test_a_tax_report_for_a_period_outside_the_invoice_date_has_no_rows(api: Api) -> None:
    invoice_example(api)

    assert api.tax_report("2024-07-01", "2024-07-31") == []
    assert api.tax_report("2024-05-01", "2024-06-27") == []
    assert api.tax_report("2024-06-29", "2024-12-31") == []
