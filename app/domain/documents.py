"""What an issued invoice version or credit note says as an EN 16931 e-invoice.

Plain data built from the stored documents, which are never modified: the parties, the lines
with their net amounts, the VAT breakdown per category and rate (the very figures the API
presents and the ledger booked), the totals and the references to earlier documents. The XML
(CII) and the PDF are rendered from it by adapters, so both say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from app.domain import model
from app.domain.errors import NotFound, StateConflict
from app.domain.money import QUANTITY_SCALE, exponent
from app.domain.tax import TaxAmount, vat_of_gross

# UNTDID 1001 document types (BT-3).
COMMERCIAL_INVOICE, CREDIT_NOTE, CORRECTED_INVOICE = "380", "381", "384"
# UNTDID 5305 VAT categories (BT-118, BT-151), by the order's VAT type. TAXLESS positions are
# exempt (E), with the seller's exemption reason: "outside the scope" (O) forbids the seller's
# VAT ID and any other category on the same invoice (BR-O-02, BR-O-11), and the zero rate (Z)
# is a rate of its own that German law applies to few goods.
STANDARD, REVERSE_CHARGE, EXEMPT = "S", "AE", "E"
CATEGORIES = {"NORMAL": STANDARD, "REDUCED": STANDARD, "REVERSE": REVERSE_CHARGE, "TAXLESS": EXEMPT}
# EN 16931 allows amounts with at most two decimals (BR-DEC-*).
MAX_DECIMALS = 2
UNIT_PRICE_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class Seller:
    """The business issuing the documents, as configured per business code."""

    name: str
    street: str
    postal_code: str
    city: str
    country_code: str
    vat_id: str | None = None  # BT-31
    tax_number: str | None = None  # BT-32, when there is no VAT ID
    email: str | None = None
    phone: str | None = None
    iban: str | None = None  # BT-84: payment by SEPA credit transfer when given
    bic: str | None = None
    payment_terms: str | None = None  # BT-20, printed and sent with every invoice
    exemption_reason: str = "Steuerfreie Leistung / VAT exempt"  # BT-120 for TAXLESS
    reverse_charge_reason: str = (
        "Steuerschuldnerschaft des Leistungsempfängers / Reverse charge"  # BT-120 for REVERSE
    )
    legal_text: str | None = None  # registration, directors: the PDF's footer


@dataclass(frozen=True)
class Buyer:
    """The billed customer, from the billing address the document was issued with."""

    name: str
    street: str | None
    additional: str | None
    postal_code: str | None
    city: str | None
    country_code: str
    customer_number: str
    vat_id: str | None  # BT-48, only a valid EU VAT ID
    email: str | None


@dataclass(frozen=True)
class Billed:
    """Whom a version was issued to and the dispatch date it names (BT-72), as stored."""

    buyer: Buyer
    delivery_date: date | None


@dataclass(frozen=True)
class Line:
    """One document line: amounts in minor units, the net one allocated from its tax group."""

    number: int
    product_id: str | None
    description: str
    quantity: Decimal  # negative on a line that takes money off (a discount)
    unit_net: Decimal  # BT-146, never negative (BR-27)
    net: int  # BT-131
    gross: int
    unit_gross: int
    category: str
    rate_bp: int


@dataclass(frozen=True)
class TaxLine:
    """The VAT breakdown of one category and rate (BG-23)."""

    category: str
    rate_bp: int
    basis: int  # BT-116
    vat: int  # BT-117
    exemption_reason: str | None


@dataclass(frozen=True)
class Preceding:
    """The document this one corrects or cancels (BG-3: BT-25 and BT-26)."""

    number: str
    issue_date: date


@dataclass(frozen=True)
class Document:
    """An invoice version or a credit note, ready to be written as CII XML or as a PDF."""

    type_code: str
    number: str  # BT-1
    issue_date: date  # BT-2
    currency: str
    seller: Seller
    buyer: Buyer
    lines: tuple[Line, ...]
    taxes: tuple[TaxLine, ...]
    net: int  # BT-106 = BT-109
    vat: int  # BT-110
    gross: int  # BT-112 = BT-115 (nothing prepaid is stated: a document never changes)
    due_date: date | None  # BT-9
    delivery_date: date | None  # BT-72
    order_reference: str  # BT-14
    preceding: Preceding | None
    notes: tuple[str, ...]  # BT-22
    payment_terms: str | None  # BT-20

    @property
    def is_credit_note(self) -> bool:
        return self.type_code == CREDIT_NOTE


def document_number(invoice_reference: str, version: int) -> str:
    """Each version its own number: version 1 keeps the invoice reference, later ones add
    `-v2`, `-v3`, ... so no two documents a customer holds carry one number."""
    return invoice_reference if version == 1 else f"{invoice_reference}-v{version}"


def clean_text(value: Any) -> str | None:
    """A stored value as a document's text: stripped, and None when there is nothing."""
    text = str(value).strip() if value is not None else ""
    return text or None


def _category(vat_type: str) -> str:
    return CATEGORIES.get(vat_type, STANDARD)


def _reason(seller: Seller, category: str) -> str | None:
    if category == REVERSE_CHARGE:
        return seller.reverse_charge_reason
    if category == EXEMPT:
        return seller.exemption_reason
    return None


def tax_lines(taxes: list[TaxAmount], seller: Seller) -> tuple[TaxLine, ...]:
    """The stored per-rate taxes as a VAT breakdown, one row per category and rate."""
    rows: dict[tuple[str, int], tuple[int, int]] = {}
    for t in taxes:
        key = (_category(t.key.vat_type), t.key.rate_bp)
        basis, vat = rows.get(key, (0, 0))
        rows[key] = (basis + t.net, vat + t.vat)
    return tuple(
        TaxLine(category, rate, basis, vat, _reason(seller, category))
        for (category, rate), (basis, vat) in sorted(rows.items())
    )


def _line_vats(lines: list[dict[str, Any]], taxes: list[TaxAmount]) -> list[int]:
    """Each line's share of its tax group's VAT, cumulatively rounded in line order, so a
    group's lines add up to exactly the VAT the group was booked with (BR-S-08: a group's
    taxable amount is the sum of its lines' net amounts)."""
    booked = {(t.key.vat_type, t.key.rate_bp): t.vat for t in taxes}
    running: dict[tuple[str, int], int] = {}
    members: dict[tuple[str, int], list[int]] = {}
    shares: list[int] = []
    for index, line in enumerate(lines):
        key = (line["vat_type"], line["rate_bp"])
        before = running.get(key, 0)
        running[key] = before + line["gross"]
        shares.append(vat_of_gross(running[key], key[1]) - vat_of_gross(before, key[1]))
        members.setdefault(key, []).append(index)
    for key, indexes in members.items():
        # The stored figure is the document's: a difference (none, by construction) goes on
        # the group's last line.
        allocated = sum(shares[i] for i in indexes)
        shares[indexes[-1]] += booked.get(key, allocated) - allocated
    return shares


def document_lines(
    lines: list[dict[str, Any]], taxes: list[TaxAmount], currency: str
) -> tuple[Line, ...]:
    """The stored lines with their net amounts and net unit prices."""
    scale = Decimal(10) ** exponent(currency)
    result = []
    for number, (line, vat) in enumerate(zip(lines, _line_vats(lines, taxes), strict=True), 1):
        net = line["gross"] - vat
        # Fixed decimals (never an exponent, which XML decimals do not allow).
        quantity = (Decimal(line["quantity_milli"]) / QUANTITY_SCALE).quantize(Decimal("0.001"))
        signed = -quantity if net < 0 else quantity
        unit_net = (Decimal(abs(net)) / scale / quantity).quantize(UNIT_PRICE_PLACES)
        result.append(
            Line(
                number=number,
                product_id=clean_text(line.get("product_id")),
                description=clean_text(line.get("description"))
                or clean_text(line.get("product_id"))
                or str(line["position_type"]),
                quantity=signed,
                unit_net=unit_net,
                net=net,
                gross=line["gross"],
                unit_gross=line["unit_gross"],
                category=_category(line["vat_type"]),
                rate_bp=line["rate_bp"],
            )
        )
    return tuple(result)


def _check_currency(currency: str) -> None:
    if exponent(currency) > MAX_DECIMALS:
        raise StateConflict(
            f"EN 16931 amounts have at most two decimals; {currency} has {exponent(currency)}",
            code="document-currency-unsupported",
        )


def version_of(invoice: model.Invoice, number: int) -> model.InvoiceVersion:
    found = next((v for v in invoice.versions if v.version == number), None)
    if found is None:
        raise NotFound(f"invoice {invoice.invoice_reference} has no version {number}")
    return found


def invoice_document(
    order: model.Order,
    invoice: model.Invoice,
    number: int,
    seller: Seller,
    billed: Billed,
) -> Document:
    """Version `number` of an invoice, to the buyer as billed by it and with the dispatch
    date it names; a later version names the one it replaces."""
    _check_currency(order.currency)
    version = version_of(invoice, number)
    taxes = version.tax_amounts()
    reference = invoice.invoice_reference
    preceding: Preceding | None = None
    notes: tuple[str, ...] = ()
    if number > 1:
        replaced = version_of(invoice, number - 1)
        preceding = Preceding(document_number(reference, number - 1), replaced.invoice_date)
        notes = (
            f"Corrected invoice: replaces invoice {preceding.number} of "
            f"{preceding.issue_date.isoformat()}, cancelled by credit note "
            f"{replaced.nullified_by}.",
        )
    return Document(
        type_code=CORRECTED_INVOICE if number > 1 else COMMERCIAL_INVOICE,
        number=document_number(reference, number),
        issue_date=version.invoice_date,
        currency=order.currency,
        seller=seller,
        buyer=billed.buyer,
        lines=document_lines(version.lines, taxes, order.currency),
        taxes=tax_lines(taxes, seller),
        net=version.net,
        vat=version.vat,
        gross=version.gross,
        due_date=version.due_date,
        delivery_date=billed.delivery_date,
        order_reference=order.order_reference,
        preceding=preceding,
        notes=notes,
        payment_terms=seller.payment_terms,
    )


def credit_note_document(
    order: model.Order,
    invoice: model.Invoice,
    credit_note: model.CreditNote,
    seller: Seller,
    billed: Billed,
) -> Document:
    """A credit note (381) cancelling the invoice version it nullifies, line by line, to the
    buyer as billed by that version."""
    _check_currency(order.currency)
    nullified = version_of(invoice, credit_note.nullifies_version)
    taxes = credit_note.tax_amounts()
    preceding = Preceding(
        document_number(invoice.invoice_reference, nullified.version), nullified.invoice_date
    )
    cancels = f"Credit note cancelling invoice {preceding.number} of {preceding.issue_date}."
    return Document(
        type_code=CREDIT_NOTE,
        number=credit_note.reference,
        issue_date=credit_note.document_date,
        currency=order.currency,
        seller=seller,
        buyer=billed.buyer,
        lines=document_lines(credit_note.lines, taxes, order.currency),
        taxes=tax_lines(taxes, seller),
        net=credit_note.net,
        vat=credit_note.vat,
        gross=credit_note.gross,
        due_date=None,
        delivery_date=billed.delivery_date,
        order_reference=order.order_reference,
        preceding=preceding,
        notes=(cancels,),
        payment_terms=f"Nothing to pay: the amount is credited against {preceding.number}.",
    )


def find_credit_note(order: model.Order, reference: str) -> tuple[model.Invoice, model.CreditNote]:
    """The credit note of this order with this reference, and the invoice it corrects."""
    for invoice in order.invoices:
        for note in invoice.credit_notes:
            if note.reference == reference:
                return invoice, note
    raise NotFound(f"credit note {reference} not found")
