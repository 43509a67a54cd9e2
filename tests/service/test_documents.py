"""Documents from the service layer: what is rendered, and what a worker renders only once."""

from __future__ import annotations

from collections import Counter

from app.domain.documents import Document, Seller
from app.service.documents import PDF, XML, DocumentService, Renderers
from tests.service.conftest import FakeOrderService
from tests.service.test_order_use_cases import BUSINESS, INVOICE, ctx, invoiced, lowered, version_of

SELLER = Seller(name="Demo Shop GmbH", street="Musterstraße 1", postal_code="10115",
                city="Berlin", country_code="DE", vat_id="DE136695976")  # fmt: skip


class CountingRenderers:
    """Renderers that say what they were asked to render, and how often."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.renderers = Renderers(self.xml, self.pdf)

    def xml(self, document: Document) -> bytes:
        self.calls["xml", document.number] += 1
        return f"<xml>{document.number} {document.gross}</xml>".encode()

    def pdf(self, document: Document, xml: bytes) -> bytes:
        self.calls["pdf", document.number] += 1
        return b"%PDF-" + xml


def test_a_document_fetched_again_is_not_rendered_again(service: FakeOrderService) -> None:
    invoiced(service)
    counting = CountingRenderers()
    documents = DocumentService(service, {BUSINESS: SELLER}, counting.renderers)

    first = documents.invoice_version(ctx(), INVOICE, 1, PDF)
    again = documents.invoice_version(ctx(), INVOICE, 1, PDF)
    xml = documents.invoice_version(ctx(), INVOICE, 1, XML)

    assert again == first
    assert first.content == b"%PDF-<xml>INV1 3570</xml>"
    assert xml.content == b"<xml>INV1 3570</xml>"
    assert counting.calls == {("xml", INVOICE): 2, ("pdf", INVOICE): 1}


def test_a_corrected_version_and_its_credit_note_are_documents_of_their_own(
    service: FakeOrderService,
) -> None:
    invoiced(service)
    counting = CountingRenderers()
    documents = DocumentService(service, {BUSINESS: SELLER}, counting.renderers)
    before = documents.invoice_version(ctx(), INVOICE, 1, XML)

    service.correct_invoice(ctx(), INVOICE, lowered("17.85", "2.85", "CN1"), version_of)
    first = documents.invoice_version(ctx(), INVOICE, 1, XML)
    second = documents.invoice_version(ctx(), INVOICE, 2, XML)
    note = documents.credit_note(ctx(), "CN1", XML)

    assert first == before  # the first version is the same document, from the kept bytes
    assert second.content == b"<xml>INV1-v2 2975</xml>"
    assert note.content == b"<xml>CN1 3570</xml>"
    assert len({before.etag, second.etag, note.etag}) == 3
    assert counting.calls == {("xml", INVOICE): 1, ("xml", "INV1-v2"): 1, ("xml", "CN1"): 1}
