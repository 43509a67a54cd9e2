"""Documents a customer, an accountant or an auditor can open: every invoice version and
credit note as a PDF/A-3 carrying its EN 16931 e-invoice, or as the XML alone.

Rendered on request from the stored documents, which are never modified, in one read-only
snapshot; nothing is stored. The same document renders to the same bytes every time, so its
ETag is the hash of those bytes (docs/decisions.md, "Documents are rendered, not stored").
A worker keeps the bytes of the documents it rendered last, by the document's whole content:
what is read again (a customer's portal, a 304 check) costs the read, not the render, and
cannot be stale, since other content is another key.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from app.adapters import billing
from app.domain import documents
from app.domain.documents import Document, Seller
from app.domain.errors import StateConflict
from app.service.orders import Context, OrderService

log = logging.getLogger("app.documents")

PDF, XML = "application/pdf", "application/xml"
MEDIA_TYPES = (PDF, XML)
# Documents a worker keeps rendered (a PDF is some 50 kB).
KEPT_RENDERED = 128


@dataclass(frozen=True)
class Rendered:
    """A document's bytes as sent, with its media type, file name and strong ETag."""

    content: bytes
    media_type: str
    filename: str
    etag: str


@dataclass(frozen=True)
class Renderers:
    """The adapters that write a document: its CII XML, and the PDF embedding that XML."""

    xml: Callable[[Document], bytes]
    pdf: Callable[[Document, bytes], bytes]


class DocumentService:
    """Renders the documents of one database's orders for the businesses with a seller."""

    def __init__(self, orders: OrderService, sellers: Mapping[str, Seller], render: Renderers):
        self.orders = orders
        self.sellers = sellers
        self.render = render

    def _seller(self, business: str) -> Seller:
        seller = self.sellers.get(business)
        if seller is None:
            raise StateConflict(
                f"business {business} has no seller data for its documents (ACCOUNTING_SELLERS)",
                code="seller-not-configured",
            )
        return seller

    def invoice_version(
        self, ctx: Context, invoice_reference: str, version: int, media_type: str
    ) -> Rendered:
        """Version `version` of an invoice (380, or 384 naming the version it replaces)."""
        order, invoice = self.orders.get_invoice(ctx, invoice_reference)
        seller = self._seller(ctx.business)
        billed = billing.billed(order, documents.version_of(invoice, version))
        document = documents.invoice_document(order, invoice, version, seller, billed)
        return _render(self.render, ctx.business, document, media_type)

    def credit_note(self, ctx: Context, reference: str, media_type: str) -> Rendered:
        """A credit note (381) naming the invoice version it cancels (BT-25, BT-26)."""
        order = self.orders.get_order(ctx, history=True)
        invoice, note = documents.find_credit_note(order, reference)
        seller = self._seller(ctx.business)
        billed = billing.billed(order, documents.version_of(invoice, note.nullifies_version))
        document = documents.credit_note_document(order, invoice, note, seller, billed)
        return _render(self.render, ctx.business, document, media_type)


@functools.lru_cache(maxsize=KEPT_RENDERED)
def _render(render: Renderers, business: str, document: Document, media_type: str) -> Rendered:
    """The document as sent: its XML, or the PDF carrying it, with its ETag. Kept by the
    document's whole content (a frozen dataclass), so a change of anything in it is another
    document; only a render is logged."""
    started = time.perf_counter()
    xml = render.xml(document)
    content = xml if media_type == XML else render.pdf(document, xml)
    log.info(
        "document rendered",
        extra={
            "business": business,
            "type_code": document.type_code,
            "media_type": media_type,
            "bytes": len(content),
            "render_ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )
    extension = "xml" if media_type == XML else "pdf"
    return Rendered(
        content,
        media_type,
        f"{document.number}.{extension}",
        hashlib.sha256(content).hexdigest()[:40],
    )
