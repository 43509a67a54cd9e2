"""A document as UN/CEFACT Cross Industry Invoice XML, profile EN 16931 (Factur-X / ZUGFeRD
"EN 16931", also read by XRechnung receivers), written with drafthorse.

Checked against the Factur-X EN 16931 schema drafthorse ships as it is written; the tests
check it against the official CEN schema and business rules (schematron) as well.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drafthorse.models.accounting import ApplicableTradeTax
from drafthorse.models.document import Document as CrossIndustryInvoice
from drafthorse.models.note import IncludedNote
from drafthorse.models.party import TaxRegistration
from drafthorse.models.payment import PaymentMeans, PaymentTerms
from drafthorse.models.tradelines import LineItem

from app.domain.documents import Buyer, Document, Line, Seller, TaxLine
from app.domain.money import bp_to_rate, to_major

GUIDELINE = "urn:cen.eu:en16931:2017"  # BT-24: the EN 16931 core, Factur-X's "EN 16931"
SCHEMA = "FACTUR-X_EN16931"
UNIT = "H87"  # piece (UN/ECE Recommendation 20)
SEPA_CREDIT_TRANSFER = "58"


def _rate(rate_bp: int) -> Decimal:
    return bp_to_rate(rate_bp).quantize(Decimal("0.01"))


def _party(
    party: Any, name: str, address: tuple[str | None, ...], email: str | None, vat_id: str | None
) -> None:
    """A trade party's name, postal address (street, second line, postcode, city, country),
    e-mail and VAT ID, each written only when there is one."""
    party.name = name
    places = ("line_one", "line_two", "postcode", "city_name", "country_id")
    for place, value in zip(places, address, strict=True):
        if value:
            setattr(party.address, place, value)
    if email:
        party.electronic_address.uri_ID = ("EM", email)
    if vat_id:
        party.tax_registrations.add(TaxRegistration(id=("VA", vat_id)))


def _seller(cii: CrossIndustryInvoice, seller: Seller) -> None:
    party = cii.trade.agreement.seller
    address = (seller.street, None, seller.postal_code, seller.city, seller.country_code)
    _party(party, seller.name, address, seller.email, seller.vat_id)
    if seller.tax_number:
        party.tax_registrations.add(TaxRegistration(id=("FC", seller.tax_number)))


def _buyer(cii: CrossIndustryInvoice, buyer: Buyer) -> None:
    party = cii.trade.agreement.buyer
    party.id = buyer.customer_number
    address = (buyer.street, buyer.additional, buyer.postal_code, buyer.city, buyer.country_code)
    _party(party, buyer.name, address, buyer.email, buyer.vat_id)


def _line(line: Line, currency: str) -> LineItem:
    item = LineItem()
    item.document.line_id = str(line.number)
    if line.product_id:
        item.product.seller_assigned_id = line.product_id
    item.product.name = line.description
    item.agreement.net.amount = line.unit_net
    item.delivery.billed_quantity = (line.quantity, UNIT)
    item.settlement.trade_tax.type_code = "VAT"
    item.settlement.trade_tax.category_code = line.category
    item.settlement.trade_tax.rate_applicable_percent = _rate(line.rate_bp)
    item.settlement.monetary_summation.total_amount = to_major(line.net, currency)
    return item


def _tax(row: TaxLine, currency: str) -> ApplicableTradeTax:
    tax = ApplicableTradeTax()
    tax.calculated_amount = to_major(row.vat, currency)
    tax.type_code = "VAT"
    if row.exemption_reason:
        tax.exemption_reason = row.exemption_reason
    tax.basis_amount = to_major(row.basis, currency)
    tax.category_code = row.category
    tax.rate_applicable_percent = _rate(row.rate_bp)
    return tax


def _settlement(cii: CrossIndustryInvoice, document: Document) -> None:
    settlement, currency = cii.trade.settlement, document.currency
    settlement.currency_code = currency
    seller = document.seller
    if seller.iban and not document.is_credit_note:
        means = PaymentMeans()
        means.type_code = SEPA_CREDIT_TRANSFER
        means.payee_account.iban = seller.iban
        if seller.bic:
            means.payee_institution.bic = seller.bic
        settlement.payment_means.add(means)
    for row in document.taxes:
        settlement.trade_tax.add(_tax(row, currency))
    if document.payment_terms or document.due_date:
        terms = PaymentTerms()
        if document.payment_terms:
            terms.description = document.payment_terms
        if document.due_date:
            terms.due = document.due_date
        settlement.terms.add(terms)
    total = settlement.monetary_summation
    total.line_total = to_major(document.net, currency)
    total.tax_basis_total = to_major(document.net, currency)
    total.tax_total = (to_major(document.vat, currency), currency)
    total.grand_total = to_major(document.gross, currency)
    total.due_amount = to_major(document.gross, currency)
    if document.preceding is not None:
        settlement.invoice_referenced_document.issuer_assigned_id = document.preceding.number
        settlement.invoice_referenced_document.issue_date_time = document.preceding.issue_date


def cii_xml(document: Document) -> bytes:
    """The document's CII XML (UTF-8), validated against the Factur-X EN 16931 schema."""
    cii = CrossIndustryInvoice()
    cii.context.guideline_parameter.id = GUIDELINE
    cii.header.id = document.number
    cii.header.type_code = document.type_code
    cii.header.issue_date_time = document.issue_date
    for text in document.notes:
        cii.header.notes.add(IncludedNote(content=text))
    _seller(cii, document.seller)
    _buyer(cii, document.buyer)
    cii.trade.agreement.seller_order.issuer_assigned_id = document.order_reference
    if document.delivery_date:
        cii.trade.delivery.event.occurrence = document.delivery_date
    for line in document.lines:
        cii.trade.items.add(_line(line, document.currency))
    _settlement(cii, document)
    xml: bytes = cii.serialize(schema=SCHEMA)
    return xml
