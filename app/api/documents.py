"""The documents of an order: each invoice version and credit note as a PDF/A-3 with its
EN 16931 e-invoice embedded (application/pdf, the default) or as the CII XML alone
(application/xml), chosen by the Accept header."""

from __future__ import annotations

from flask import Response, current_app, request
from flask.views import MethodView
from werkzeug.exceptions import NotAcceptable

from app.api.views import ORDER, PREFIX, business_blueprint, located, problems_documented
from app.service.documents import MEDIA_TYPES, PDF, XML, DocumentService, Rendered

blp = business_blueprint(
    "documents",
    PREFIX,
    "Invoice and credit-note documents: PDF/A-3 with the EN 16931 e-invoice, or its XML",
)
INVOICE_VERSION = (
    ORDER + "/invoices/<string(maxlength=30):invoiceReference>/versions/<int(min=1):version>"
)
CREDIT_NOTE = ORDER + "/credit-notes/<string(maxlength=48):creditNoteReference>"
ERRORS = (401, 404, 406, 409, 429, 503)

ETAG = {
    "description": "A hash of the document's bytes; send it as If-None-Match.",
    "required": True,
    "schema": {"type": "string", "pattern": '^"[0-9a-f]{40}"$'},
}
DOCUMENT_RESPONSES = {
    "200": {
        "description": "OK",  # docs.STATUS_DESCRIPTIONS sets every 200's
        "headers": {"ETag": ETAG},
        # No schema: the bytes are a PDF or a CII document (OpenAPI 3.1 binary content).
        "content": {PDF: {}, XML: {}},
    },
    "304": {
        "description": "If-None-Match named the document's ETag: it has not changed.",
        "headers": {"ETag": ETAG},
    },
}
# Accept is not a parameter (OpenAPI ignores one named so): the 200's media types say it.
DOCUMENT_PARAMETERS = [
    {
        "in": "header",
        "name": "If-None-Match",
        "required": False,
        "description": "The ETag of an earlier fetch: 304 without a body while it is current.",
        "schema": {"type": "string"},
    },
]
STATUS_406 = "The Accept header names neither application/pdf nor application/xml."
errors_documented = problems_documented(blp, ERRORS)


def service() -> DocumentService:
    documents: DocumentService = current_app.extensions["documents"]
    return documents


def negotiated() -> str:
    """The media type the client accepts: the PDF unless it asks for the XML only."""
    if not request.headers.get("Accept", "").strip():
        return PDF
    found = request.accept_mimetypes.best_match(MEDIA_TYPES)
    if found is None:
        raise NotAcceptable(f"{STATUS_406} Sent: {request.headers.get('Accept', '')[:100]}")
    return str(found)


def sent(rendered: Rendered) -> Response:
    """The document, or 304 when the client holds these bytes already."""
    if request.if_none_match.contains_weak(rendered.etag):
        response = Response(status=304)
    else:
        response = Response(rendered.content, mimetype=rendered.media_type)
        response.headers.set("Content-Disposition", "inline", filename=rendered.filename)
    response.set_etag(rendered.etag)
    response.headers["Vary"] = "Accept"
    response.headers["Cache-Control"] = "private, no-cache"
    return response


DESCRIPTION = (
    "Rendered from the document as issued, the same bytes on every request. Accept: "
    "application/pdf (also `*/*` or none) or application/xml; 406 `not-acceptable` for an "
    "Accept naming neither; 409 `seller-not-configured` for a business without seller data, "
    "`document-currency-unsupported` for a currency with more than two decimals."
)


document_doc = blp.doc(
    description=DESCRIPTION, responses=DOCUMENT_RESPONSES, parameters=DOCUMENT_PARAMETERS
)


@blp.route(INVOICE_VERSION + "/document")
class InvoiceVersionDocument(MethodView):
    @document_doc
    @errors_documented
    def get(self, invoiceReference: str, version: int, **path: str) -> Response:
        """An invoice version as PDF/A-3 with its e-invoice, or as CII XML"""
        media_type = negotiated()
        return sent(
            service().invoice_version(located(**path), invoiceReference, version, media_type)
        )


@blp.route(CREDIT_NOTE + "/document")
class CreditNoteDocument(MethodView):
    @document_doc
    @errors_documented
    def get(self, creditNoteReference: str, **path: str) -> Response:
        """A credit note as PDF/A-3 with its e-invoice, or as CII XML"""
        media_type = negotiated()
        return sent(service().credit_note(located(**path), creditNoteReference, media_type))
