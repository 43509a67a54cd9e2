"""What an invoice version or credit note says as an EN 16931 document, without a database:
line net amounts, the VAT breakdown, references, parties; and the seller configuration."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from app.adapters.billing import billed
from app.adapters.cii import cii_xml
from app.adapters.pdf import PdfRenderer
from app.config import BadSetting, sellers
from app.domain import documents
from app.domain.documents import Seller
from app.domain.errors import NotFound, StateConflict
from app.domain.model import CreditNote, Invoice, Order
from tests.domain_factories import (
    InvoiceSpecFactory,
    ItemSpecFactory,
    OrderAggregateFactory,
    invoice_open,
    restated,
)
from tests.en16931 import assert_valid_en16931, rule_failures, schema_errors

SELLER = Seller(
    name="Demo Shop GmbH", street="Musterstraße 1", postal_code="10115", city="Berlin",
    country_code="DE", vat_id="DE136695976", iban="DE02120300000000202051",
)  # fmt: skip
ADDRESS = {
    "firstName": "Max", "lastName": "Mustermann", "street": "Beispielstr.", "streetNumber": "13A",
    "postalCode": "48213", "postalPlace": "Muenster", "countryCode": "DE",
}  # fmt: skip
DEMO_SELLERS = Path(__file__).resolve().parents[2] / "config" / "sellers.demo.toml"


def worked_example() -> Order:
    """SPEC section 4's example: 2 x 19.99 and a discount at 19 %, 3 x 4.29 at 7 %, shipping."""
    return OrderAggregateFactory(
        header={"orderDate": "2024-06-01", "vatDeclarationCountry": "DE",
                "billToAddress": ADDRESS},
        items=[
            ItemSpecFactory(item_ref=1, unit_gross=1999, quantity_milli=2000),
            ItemSpecFactory(item_ref=2, unit_gross=429, quantity_milli=3000, rate_bp=700,
                            vat_type="REDUCED"),
            ItemSpecFactory(item_ref=3, unit_gross=-500, position_type="DISCOUNT"),
            ItemSpecFactory(item_ref=4, unit_gross=495, position_type="SHIPPING_COSTS"),
        ],
    )  # fmt: skip


def invoice_document(order: Order, invoice: Invoice, number: int) -> documents.Document:
    version = documents.version_of(invoice, number)
    return documents.invoice_document(order, invoice, number, SELLER, billed(order, version))


def credit_note_document(order: Order, invoice: Invoice, note: CreditNote) -> documents.Document:
    version = documents.version_of(invoice, note.nullifies_version)
    return documents.credit_note_document(order, invoice, note, SELLER, billed(order, version))


def invoiced(order: Order) -> documents.Document:
    invoice_open(order, invoice_reference="INV-1", invoice_date=date(2024, 6, 28))
    return invoice_document(order, order.invoices[0], 1)


def corrected(order: Order) -> None:
    """Correct INV-1: position 1 down to 17.99, dated 2024-07-05, credit note CN-1."""
    spec = InvoiceSpecFactory(invoice_reference="INV-1", invoice_date=date(2024, 7, 5),
                              item_refs=(1, 2, 3, 4))  # fmt: skip
    order.correct_invoice("INV-1", spec, order.restated_header(), restated(order, p1=1799),
                          order.identity(), "CN-1")  # fmt: skip


def test_line_net_amounts_add_up_to_each_groups_booked_net() -> None:
    document = invoiced(worked_example())

    by_rate: dict[int, int] = {}
    for line in document.lines:
        by_rate[line.rate_bp] = by_rate.get(line.rate_bp, 0) + line.net
    assert by_rate == {1900: 3355, 700: 1203}
    assert [(t.category, t.rate_bp, t.basis, t.vat) for t in document.taxes] == [
        ("S", 700, 1203, 84),
        ("S", 1900, 3355, 638),
    ]
    assert (document.net, document.vat, document.gross) == (4558, 722, 5280)
    assert sum(line.net for line in document.lines) == document.net


def test_a_discount_line_is_a_negative_quantity_at_a_price_never_below_zero() -> None:
    discount = invoiced(worked_example()).lines[2]

    assert discount.net < 0
    assert discount.quantity == Decimal("-1.000")
    # Its share of the 19 % VAT, rounded cumulatively: VAT(34.98) - VAT(39.98) = 5.59 - 6.38.
    assert (discount.net, discount.unit_net) == (-421, Decimal("4.2100"))


def test_an_invoice_is_380_and_names_no_earlier_document() -> None:
    document = invoiced(worked_example())

    assert (document.type_code, document.number, document.preceding) == ("380", "INV-1", None)
    assert document.buyer.name == "Max Mustermann"
    assert document.buyer.street == "Beispielstr. 13A"
    assert document.delivery_date == date(2024, 6, 9)


def test_a_corrected_version_is_384_and_names_the_version_it_replaces() -> None:
    order = worked_example()
    invoiced(order)
    corrected(order)

    document = invoice_document(order, order.invoices[0], 2)

    assert (document.type_code, document.number) == ("384", "INV-1-v2")
    assert document.preceding == documents.Preceding("INV-1", date(2024, 6, 28))
    assert "CN-1" in document.notes[0]
    assert document.gross == 5280 - 400


def test_a_credit_note_is_381_and_names_the_invoice_it_cancels() -> None:
    order = worked_example()
    invoiced(order)
    corrected(order)
    invoice, note = documents.find_credit_note(order, "CN-1")

    document = credit_note_document(order, invoice, note)

    assert (document.type_code, document.number, document.issue_date) == (
        "381", "CN-1", date(2024, 7, 5),
    )  # fmt: skip
    assert document.preceding == documents.Preceding("INV-1", date(2024, 6, 28))
    assert (document.net, document.vat, document.gross) == (4558, 722, 5280)
    assert document.payment_terms and "INV-1" in document.payment_terms


def test_reverse_charge_is_ae_and_taxless_is_exempt_each_with_the_sellers_reason() -> None:
    address = {**ADDRESS, "companyName": "Muster GmbH", "taxIdentificationNumber": "ATU13585627"}
    order = OrderAggregateFactory(
        header={"orderDate": "2024-06-01", "vatDeclarationCountry": "DE",
                "billToAddress": address},
        items=[ItemSpecFactory(item_ref=1, unit_gross=10000, rate_bp=0, vat_type="REVERSE"),
               ItemSpecFactory(item_ref=2, unit_gross=2000, rate_bp=0, vat_type="TAXLESS")],
    )  # fmt: skip

    document = invoiced(order)

    assert [(t.category, t.basis, t.vat, t.exemption_reason) for t in document.taxes] == [
        ("AE", 10000, 0, SELLER.reverse_charge_reason),
        ("E", 2000, 0, SELLER.exemption_reason),
    ]
    assert (document.buyer.name, document.buyer.vat_id) == ("Muster GmbH", "ATU13585627")
    assert_valid_en16931(cii_xml(document))


def test_a_buyer_vat_id_that_is_no_valid_eu_vat_id_is_left_out() -> None:
    order = worked_example()
    invoiced(order)
    version = order.invoices[0].current
    version.header = {
        **version.header,
        "billToAddress": {**ADDRESS, "taxIdentificationNumber": "12345"},
    }

    assert billed(order, version).buyer.vat_id is None


def test_the_worked_example_and_its_correction_are_valid_en16931_xml() -> None:
    order = worked_example()
    first = invoiced(order)
    corrected(order)
    invoice, note = documents.find_credit_note(order, "CN-1")

    for document in (
        first,
        invoice_document(order, invoice, 2),
        credit_note_document(order, invoice, note),
    ):
        assert_valid_en16931(cii_xml(document))


def test_the_validators_refuse_a_document_that_breaks_a_rule_or_the_schema() -> None:
    """The checks above can fail: a grand total that is not net + VAT breaks BR-CO-15, a
    document without its type code BR-04, an element CII does not know the schema."""
    xml = cii_xml(invoiced(worked_example()))
    assert schema_errors(xml) == rule_failures(xml) == []

    assert b"<ram:GrandTotalAmount>52.80<" in xml
    wrong_total = xml.replace(b"<ram:GrandTotalAmount>52.80<", b"<ram:GrandTotalAmount>52.81<")
    assert any(failure.startswith("BR-CO-15") for failure in rule_failures(wrong_total))

    assert b"<ram:TypeCode>380</ram:TypeCode>" in xml
    no_type = xml.replace(b"<ram:TypeCode>380</ram:TypeCode>", b"")
    assert any(failure.startswith("BR-04") for failure in rule_failures(no_type))
    unknown = xml.replace(b"<ram:TypeCode>380</ram:TypeCode>", b"<ram:Kind>380</ram:Kind>")
    assert any("Kind" in error for error in schema_errors(unknown))


def test_rendering_a_document_twice_gives_the_same_bytes() -> None:
    """Nothing timed or random goes in: a worker that renders it anew (another worker, or
    after its kept documents moved on) sends the very bytes, and so the same ETag."""
    document = invoiced(worked_example())
    xml = cii_xml(document)

    assert cii_xml(document) == xml
    assert PdfRenderer().pdf(document, xml) == PdfRenderer().pdf(document, xml)


def test_unknown_versions_and_credit_notes_are_not_found() -> None:
    order = worked_example()
    invoiced(order)

    with pytest.raises(NotFound):
        invoice_document(order, order.invoices[0], 2)
    with pytest.raises(NotFound):
        documents.find_credit_note(order, "CN-1")


def test_a_currency_with_three_decimals_has_no_en16931_document() -> None:
    kuwait = OrderAggregateFactory(currency="KWD")
    invoice_open(kuwait)

    with pytest.raises(StateConflict) as refused:
        invoice_document(kuwait, kuwait.invoices[0], 1)
    assert refused.value.code == "document-currency-unsupported"


# --- the seller configuration ---------------------------------------------------------------


def test_the_demo_sellers_file_names_business_1000() -> None:
    configured = sellers(str(DEMO_SELLERS))

    assert list(configured) == ["1000"]
    assert configured["1000"].vat_id == "DE136695976"


def test_no_file_means_no_seller() -> None:
    assert sellers(None) == {}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('[businesses."1000"]\nname = "A"', "missing keys"),
        ('[businesses."1000"]\nname = "A"\nstreet = "B"\npostal_code = "1"\ncity = "C"\n'
         'country_code = "DE"', "vat_id or tax_number"),
        ('[businesses."1000"]\ncolour = "red"', "unknown keys ['colour']"),
        ("businesses = [", "is not TOML"),
    ],
)  # fmt: skip
def test_an_unusable_sellers_file_is_refused_by_name(
    tmp_path: Path, text: str, complaint: str
) -> None:
    path = tmp_path / "sellers.toml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(BadSetting) as refused:
        sellers(str(path))
    assert complaint in str(refused.value)


def test_a_missing_sellers_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadSetting, match="cannot read"):
        sellers(str(tmp_path / "absent.toml"))
