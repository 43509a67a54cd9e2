"""Documents: every invoice version and credit note as a PDF/A-3 with its EN 16931 e-invoice,
or as the XML alone, end to end.

The XML passes the official CEN schema and business rules (tests/en16931.py); its totals and
VAT breakdown are the API's and the ledger's to the cent; the PDF opens and carries the XML.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

from facturx import get_xml_from_pdf
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from pypdf import PdfReader

from tests import factories
from tests.e2e.conftest import Api, new_key, problem
from tests.e2e.test_tax_example import INVOICE_DATE, example_items, invoice_example
from tests.en16931 import CII, assert_valid_en16931, texts
from tests.factories import item

Body = dict[str, Any]
PDF, XML = "application/pdf", "application/xml"
CATEGORY = {"NORMAL": "S", "REDUCED": "S", "REVERSE": "AE", "TAXLESS": "E"}
VALID_AT_VAT_ID = "ATU13585627"
SUMMATION = (
    "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
    "/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
)
SETTLEMENT = (
    "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
)
TYPE_CODE = "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode"
PRECEDING = SETTLEMENT + "/ram:InvoiceReferencedDocument"


# --- helpers ------------------------------------------------------------------------------


def version_path(api: Api, order_ref: str, invoice_ref: str, version: int) -> str:
    return f"{api.order_path(order_ref)}/invoices/{invoice_ref}/versions/{version}/document"


def credit_note_path(api: Api, order_ref: str, reference: str) -> str:
    return f"{api.order_path(order_ref)}/credit-notes/{reference}/document"


def fetched(api: Api, path: str, accept: str | None = XML) -> bytes:
    headers = {"Accept": accept} if accept else {}
    response = api.get(path, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data()


def one(xml: bytes, path: str) -> str:
    [found] = texts(xml, path)
    return found


def totals(xml: bytes) -> dict[str, Decimal]:
    """BT-106, BT-109, BT-110, BT-112 and BT-115."""
    names = ("LineTotalAmount", "TaxBasisTotalAmount", "TaxTotalAmount", "GrandTotalAmount",
             "DuePayableAmount")  # fmt: skip
    return {name: Decimal(one(xml, f"{SUMMATION}/ram:{name}")) for name in names}


def breakdown(xml: bytes) -> dict[tuple[str, Decimal], tuple[Decimal, Decimal]]:
    """BT-116 and BT-117 per VAT category (BT-118) and rate (BT-119)."""
    rows = etree.fromstring(xml).xpath(SETTLEMENT + "/ram:ApplicableTradeTax", namespaces=CII)
    return {
        (row.findtext("ram:CategoryCode", namespaces=CII),
         Decimal(row.findtext("ram:RateApplicablePercent", namespaces=CII))): (
            Decimal(row.findtext("ram:BasisAmount", namespaces=CII)),
            Decimal(row.findtext("ram:CalculatedAmount", namespaces=CII)),
        )
        for row in rows
    }  # fmt: skip


def api_breakdown(taxes: list[Body]) -> dict[tuple[str, Decimal], tuple[Decimal, Decimal]]:
    return {(CATEGORY[t["vatType"]], Decimal(t["vatPercent"])): (t["net"], t["vat"]) for t in taxes}


def assert_figures_are_the_apis(xml: bytes, document: Body) -> None:
    """The XML's totals and VAT breakdown equal the API's invoice version or credit note."""
    net, vat, gross = document["netTotal"], document["vatTotal"], document["grossTotal"]
    assert totals(xml) == {
        "LineTotalAmount": net, "TaxBasisTotalAmount": net, "TaxTotalAmount": vat,
        "GrandTotalAmount": gross, "DuePayableAmount": gross,
    }  # fmt: skip
    assert breakdown(xml) == api_breakdown(document["taxes"])


def version_of(doc: Body, number: int) -> Body:
    [found] = [v for v in doc["versions"] if v["version"] == number]
    return found


def correct_example(api: Api, order_ref: str) -> Body:
    """Version 2 of the worked example: position 1 now 17.99 (credit note CN-EXAMPLE)."""
    order = factories.OrderFactory(orderReference=order_ref, items=example_items())
    order["items"][0].update(grossUnitPrice=Decimal("17.99"), vatAmount=Decimal("2.87"))
    invoice = factories.InvoiceFactory(
        invoiceReference="INV-EXAMPLE", invoiceDate="2024-07-05", dueDate="2024-08-05",
        items=[{"orderItemReference": ref} for ref in (1, 2, 3, 4)],
    )  # fmt: skip
    body = factories.correction(order, invoice, goodwillReference="CN-EXAMPLE")
    response = api.correct(order_ref, "INV-EXAMPLE", body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: Body = response.get_json()
    return answer


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


# --- the worked example and its correction ------------------------------------------------


def test_the_worked_example_is_a_valid_en16931_invoice_with_the_apis_figures(api: Api) -> None:
    order_ref, _ = invoice_example(api)

    xml = fetched(api, version_path(api, order_ref, "INV-EXAMPLE", 1))

    assert_valid_en16931(xml)
    doc = api.invoice_doc(order_ref, "INV-EXAMPLE")
    assert_figures_are_the_apis(xml, version_of(doc, 1))
    assert breakdown(xml) == {
        ("S", Decimal(7)): (Decimal("12.03"), Decimal("0.84")),
        ("S", Decimal(19)): (Decimal("33.55"), Decimal("6.38")),
    }
    ledger = {(CATEGORY[r["vatType"]], Decimal(r["vatPercent"])): (r["net"], r["vat"])
              for r in api.tax_report(INVOICE_DATE, INVOICE_DATE)}  # fmt: skip
    assert breakdown(xml) == ledger
    assert one(xml, TYPE_CODE) == "380"
    assert texts(xml, PRECEDING + "/ram:IssuerAssignedID") == []


def test_a_correction_issues_a_corrected_invoice_and_a_credit_note_naming_the_first(
    api: Api,
) -> None:
    order_ref, _ = invoice_example(api)
    answer = correct_example(api, order_ref)
    assert (answer["version"], answer["creditNoteReference"]) == (2, "CN-EXAMPLE")
    doc = api.invoice_doc(order_ref, "INV-EXAMPLE")

    corrected = fetched(api, version_path(api, order_ref, "INV-EXAMPLE", 2))
    credit_note = fetched(api, credit_note_path(api, order_ref, "CN-EXAMPLE"))

    for xml in corrected, credit_note:
        assert_valid_en16931(xml)
        assert one(xml, PRECEDING + "/ram:IssuerAssignedID") == "INV-EXAMPLE"  # BT-25
        assert one(xml, PRECEDING + "/ram:FormattedIssueDateTime/*") == "20240628"  # BT-26
    assert one(credit_note, TYPE_CODE) == "381"
    assert one(credit_note, "//rsm:ExchangedDocument/ram:ID") == "CN-EXAMPLE"
    assert_figures_are_the_apis(credit_note, doc["creditNotes"][0])
    assert one(corrected, TYPE_CODE) == "384"
    assert one(corrected, "//rsm:ExchangedDocument/ram:ID") == "INV-EXAMPLE-v2"
    assert_figures_are_the_apis(corrected, version_of(doc, 2))
    # The first version stays what it was: the credit note cancels it, nothing rewrites it.
    first = fetched(api, version_path(api, order_ref, "INV-EXAMPLE", 1))
    assert_figures_are_the_apis(first, version_of(doc, 1))
    assert one(first, TYPE_CODE) == "380"


def test_reverse_charge_carries_category_ae_and_the_buyers_vat_id(api: Api) -> None:
    address = factories.AddressFactory(companyName="Muster GmbH",
                                       taxIdentificationNumber=VALID_AT_VAT_ID)  # fmt: skip
    items = [{**item(1, "100.00", "0"), "vatType": "REVERSE"}, item(2, "11.90", "19")]
    order, invoice = api.invoiced_order(billToAddress=address, items=items)

    xml = fetched(api, version_path(api, order["orderReference"], invoice["invoiceReference"], 1))

    assert_valid_en16931(xml)
    doc = api.invoice_doc(order["orderReference"], invoice["invoiceReference"])
    assert_figures_are_the_apis(xml, version_of(doc, 1))
    assert breakdown(xml)[("AE", Decimal(0))] == (Decimal("100.00"), Decimal("0.00"))
    assert "Reverse charge" in one(xml, SETTLEMENT + "/ram:ApplicableTradeTax/ram:ExemptionReason")
    buyer = "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID"
    assert one(xml, buyer) == VALID_AT_VAT_ID
    assert one(xml, "//ram:BuyerTradeParty/ram:Name") == "Muster GmbH"


def test_taxless_positions_are_exempt_with_the_sellers_reason(api: Api) -> None:
    order, invoice = api.invoiced_order(items=[item(1, "20.00", "0"), item(2, "10.70", "7")])

    xml = fetched(api, version_path(api, order["orderReference"], invoice["invoiceReference"], 1))

    assert_valid_en16931(xml)
    assert breakdown(xml)[("E", Decimal(0))] == (Decimal("20.00"), Decimal("0.00"))
    doc = api.invoice_doc(order["orderReference"], invoice["invoiceReference"])
    assert_figures_are_the_apis(xml, version_of(doc, 1))


# --- the PDF ------------------------------------------------------------------------------


def test_the_pdf_renders_and_carries_the_xml_as_its_attachment(api: Api, tmp_path: Path) -> None:
    order_ref, _ = invoice_example(api)
    path = version_path(api, order_ref, "INV-EXAMPLE", 1)

    response = api.get(path)  # no Accept: the PDF

    assert response.status_code == 200
    assert response.mimetype == PDF
    assert response.headers["Content-Disposition"] == "inline; filename=INV-EXAMPLE.pdf"
    pdf = response.get_data()
    assert pdf.startswith(b"%PDF-")
    # factur-x finds the e-invoice by its name and checks it against its own Factur-X schema.
    name, attached = get_xml_from_pdf(BytesIO(pdf), check_xsd=True)
    assert name == "factur-x.xml"
    assert attached == fetched(api, path, XML)
    reader = PdfReader(BytesIO(pdf))
    # Dated by the invoice, never by the clock; PDF/A-3b with the Factur-X extension.
    assert reader.metadata is not None
    assert reader.metadata["/CreationDate"].startswith("D:20240628000000")
    assert reader.metadata["/ModDate"] == reader.metadata["/CreationDate"]
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    assert b'pdfaid:part="3" pdfaid:conformance="B"' in xmp
    assert b"<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>" in xmp
    (tmp_path / "invoice.pdf").write_bytes(pdf)
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm, "pdftoppm (Debian's poppler-utils) renders PDFs; scripts/test.sh installs it"
    subprocess.run(
        [pdftoppm, "-png", "-r", "50", "-f", "1", "-l", "1", "-singlefile",
         str(tmp_path / "invoice.pdf"), str(tmp_path / "page")],
        check=True, timeout=60,
    )  # fmt: skip
    png = (tmp_path / "page.png").read_bytes()
    width, height = png_size(png)
    assert (width, height) == (414, 585)  # A4, 210 x 297 mm, at 50 dpi
    assert len(png) > 5_000  # text and tables, not a blank page


def test_a_credit_note_pdf_carries_its_own_xml(api: Api) -> None:
    order_ref, _ = invoice_example(api)
    correct_example(api, order_ref)
    path = credit_note_path(api, order_ref, "CN-EXAMPLE")

    pdf = fetched(api, path, PDF)

    _, attached = get_xml_from_pdf(BytesIO(pdf), check_xsd=False)
    assert attached == fetched(api, path, XML)
    assert one(attached, TYPE_CODE) == "381"


# --- HTTP: the same bytes, ETag, negotiation, errors, tenancy ------------------------------


def test_a_document_is_the_same_bytes_on_every_fetch_and_answers_304_to_its_etag(
    api: Api,
) -> None:
    order_ref, _ = invoice_example(api)
    path = version_path(api, order_ref, "INV-EXAMPLE", 1)

    for accept in (PDF, XML, "*/*"):
        first, second = (api.get(path, headers={"Accept": accept}) for _ in range(2))
        assert first.status_code == second.status_code == 200
        assert first.get_data() == second.get_data()
        assert first.headers["ETag"] == second.headers["ETag"]
        assert first.headers["Vary"] == "Accept"
        tag = first.headers["ETag"]
        unchanged = api.get(path, headers={"Accept": accept, "If-None-Match": tag})
        assert unchanged.status_code == 304
        assert unchanged.get_data() == b""
        assert unchanged.headers["ETag"] == tag
    pdf, xml = (api.get(path, headers={"Accept": a}) for a in (PDF, XML))
    assert pdf.headers["ETag"] != xml.headers["ETag"]
    assert api.get(path, headers={"Accept": "*/*"}).mimetype == PDF
    assert api.get(path, headers={"Accept": "application/xml;q=1, application/pdf;q=0.5"}
                   ).mimetype == XML  # fmt: skip
    stale = api.get(path, headers={"Accept": XML, "If-None-Match": '"0123"'})
    assert stale.status_code == 200


def test_an_unacceptable_media_type_is_406(api: Api) -> None:
    order_ref, _ = invoice_example(api)

    response = api.get(version_path(api, order_ref, "INV-EXAMPLE", 1),
                       headers={"Accept": "text/html"})  # fmt: skip

    problem(response, 406, "not-acceptable")


def test_unknown_invoices_versions_credit_notes_and_orders_are_404(api: Api) -> None:
    order_ref, _ = invoice_example(api)

    for path in (
        version_path(api, order_ref, "INV-EXAMPLE", 2),
        version_path(api, order_ref, "INV-NONE", 1),
        version_path(api, "ORDNONE", "INV-EXAMPLE", 1),
        credit_note_path(api, order_ref, "CN-NONE"),
        version_path(api, order_ref, "INV-EXAMPLE", 0),
    ):
        problem(api.get(path), 404, "not-found")


def test_another_business_or_customer_gets_404_like_on_every_endpoint(
    api: Api, client: FlaskClient, app: Flask
) -> None:
    order_ref, _ = invoice_example(api)
    correct_example(api, order_ref)
    elsewhere = Api(client, new_key(app, ["2000"]))
    other_customer = Api(client, api.key, customer="SOMEONE-ELSE")

    for path in (version_path(api, order_ref, "INV-EXAMPLE", 1),
                 credit_note_path(api, order_ref, "CN-EXAMPLE")):  # fmt: skip
        problem(elsewhere.get(path), 404, "not-found")
        problem(other_customer.get(path.replace(api.customer, other_customer.customer)), 404,
                "not-found")  # fmt: skip


def test_a_business_without_seller_data_is_told_so(client: FlaskClient, app: Flask) -> None:
    api = Api(client, new_key(app, ["2000"]), business="2000")
    order, invoice = api.invoiced_order()

    response = api.get(version_path(api, order["orderReference"], invoice["invoiceReference"], 1))

    problem(response, 409, "seller-not-configured")
