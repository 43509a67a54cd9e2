"""A document as a PDF/A-3 with its e-invoice embedded (Factur-X / ZUGFeRD, profile EN 16931).

The page comes from an HTML/CSS template (Jinja, escaped) laid out by WeasyPrint, which also
writes the PDF/A-3b file, embeds the XML as `factur-x.xml` and takes the Factur-X XMP
extension below. Every date in the file is the document's issue date and its identifier is
derived from its number, so the same document renders to the same bytes on every request.
(factur-x's own embedding stamps the current time into the file and has no option against
it; the package is used by the tests to read the XML back.)
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from weasyprint import CSS, HTML, Attachment

from app.domain.documents import COMMERCIAL_INVOICE, CORRECTED_INVOICE, CREDIT_NOTE, Document
from app.domain.money import bp_to_rate, to_major

DEFAULT_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "documents"
TEMPLATE = "document.html"
STYLESHEET = "document.css"
XML_NAME = "factur-x.xml"
PDF_VARIANT = "pdf/a-3b"
TITLES = {
    COMMERCIAL_INVOICE: "Invoice",
    CORRECTED_INVOICE: "Corrected invoice",
    CREDIT_NOTE: "Credit note",
}
# The Factur-X 1.0 XMP extension schema and its values for an EN 16931 invoice (Factur-X
# specification, section 6.2.2): how a reader knows which attachment is the e-invoice.
FX = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
FX_PROPERTIES = (
    ("DocumentFileName", "The name of the embedded XML document"),
    ("DocumentType", "The type of the hybrid document in capital letters, e.g. INVOICE or ORDER"),
    ("Version", "The actual version of the standard applying to the embedded XML document"),
    ("ConformanceLevel", "The conformance level of the embedded XML document"),
)
FX_VALUES = (
    ("DocumentType", "INVOICE"),
    ("DocumentFileName", XML_NAME),
    ("Version", "1.0"),
    ("ConformanceLevel", "EN 16931"),
)


def _facturx_xmp() -> bytes:
    properties = "".join(
        '<rdf:li rdf:parseType="Resource">'
        f"<pdfaProperty:name>{name}</pdfaProperty:name>"
        "<pdfaProperty:valueType>Text</pdfaProperty:valueType>"
        "<pdfaProperty:category>external</pdfaProperty:category>"
        f"<pdfaProperty:description>{description}</pdfaProperty:description></rdf:li>"
        for name, description in FX_PROPERTIES
    )
    values = "".join(f"<fx:{name}>{value}</fx:{name}>" for name, value in FX_VALUES)
    return (
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about=""'
        ' xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"'
        ' xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#"'
        ' xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">'
        '<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">'
        "<pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>"
        f"<pdfaSchema:namespaceURI>{FX}</pdfaSchema:namespaceURI>"
        "<pdfaSchema:prefix>fx</pdfaSchema:prefix>"
        f"<pdfaSchema:property><rdf:Seq>{properties}</rdf:Seq></pdfaSchema:property>"
        "</rdf:li></rdf:Bag></pdfaExtension:schemas></rdf:Description>"
        f'<rdf:Description rdf:about="" xmlns:fx="{FX}">{values}</rdf:Description>'
        "</rdf:RDF>"
    ).encode()


FACTURX_XMP = _facturx_xmp()


class PdfRenderer:
    """Renders documents with the templates of one directory: `document.html`, styled by
    `document.css` (parsed once, here) and what either refers to, such as a logo."""

    def __init__(self, templates: Path = DEFAULT_TEMPLATES):
        self.templates = templates
        stylesheet = templates / STYLESHEET
        self.stylesheets = [CSS(filename=str(stylesheet))] if stylesheet.is_file() else []
        self.environment = Environment(
            loader=FileSystemLoader(templates),
            autoescape=select_autoescape(("html",), default=True),
            undefined=StrictUndefined,
            auto_reload=False,
        )

    def html(self, document: Document) -> str:
        """The document's page as HTML."""
        currency = document.currency
        return self.environment.get_template(TEMPLATE).render(
            doc=document,
            title=TITLES.get(document.type_code, "Invoice"),
            language="en",
            issued=_issued(document).isoformat(),
            money=lambda minor: f"{to_major(minor, currency):,}",
            rate=bp_to_rate,
            quantity=lambda value: f"{Decimal(value).normalize():f}",
        )

    def pdf(self, document: Document, xml: bytes) -> bytes:
        """The PDF/A-3b with `xml` embedded as factur-x.xml."""
        issued = _issued(document)
        html = HTML(string=self.html(document), base_url=str(self.templates))
        page = html.render(stylesheets=self.stylesheets, pdf_variant=PDF_VARIANT)
        page.metadata.xmp_metadata.append(FACTURX_XMP)
        einvoice = Attachment(
            string=xml,
            name=XML_NAME,
            description="Factur-X XML file (EN 16931)",
            created=issued,
            modified=issued,
            relationship="Alternative",
        )
        identifier = hashlib.sha256(f"{document.type_code}:{document.number}".encode())
        pdf: bytes = page.write_pdf(
            pdf_variant=PDF_VARIANT,
            pdf_identifier=identifier.hexdigest()[:32].encode(),
            attachments=[einvoice],
        )
        return pdf


def _issued(document: Document) -> datetime:
    return datetime.combine(document.issue_date, time(0), tzinfo=UTC)
