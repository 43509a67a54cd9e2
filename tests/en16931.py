"""The official EN 16931 validation artefacts (tests/fixtures/en16931/README.md): the CII schema
(UN/CEFACT D16B) and the CEN business rules as compiled XSLT, run by Saxon."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree
from saxonche import PySaxonProcessor, PyXslt30Processor

FIXTURES = Path(__file__).parent / "fixtures" / "en16931"
XSD = FIXTURES / "xsd" / "CrossIndustryInvoice_100pD16B.xsd"
RULES = FIXTURES / "EN16931-CII-validation.xslt"
SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}
CII = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}


@cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


def schema_errors(xml: bytes) -> list[str]:
    """Every way the XML departs from the CII D16B schema."""
    schema = _schema()
    if schema.validate(etree.fromstring(xml)):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


@cache
def _processor() -> tuple[PySaxonProcessor, PyXslt30Processor, object]:
    processor = PySaxonProcessor(license=False)
    xslt = processor.new_xslt30_processor()
    return processor, xslt, xslt.compile_stylesheet(stylesheet_file=str(RULES))


def rule_failures(xml: bytes) -> list[str]:
    """The fatal failed assertions of the EN 16931 business rules, with their messages."""
    processor, _, rules = _processor()
    node = processor.parse_xml(xml_text=xml.decode("utf-8"))
    report = rules.transform_to_string(xdm_node=node)  # type: ignore[attr-defined]
    svrl = etree.fromstring(report.encode("utf-8"))
    return [
        f"{failed.get('id')} at {failed.get('location')}: "
        + " ".join(failed.findtext("svrl:text", "", SVRL).split())
        for failed in svrl.iterfind(".//svrl:failed-assert", SVRL)
        if failed.get("flag") == "fatal"
    ]


def assert_valid_en16931(xml: bytes) -> None:
    """Fail naming every schema error and every fatal business-rule failure."""
    problems = schema_errors(xml) + rule_failures(xml)
    assert not problems, "not a valid EN 16931 invoice:\n  " + "\n  ".join(problems)


def texts(xml: bytes, path: str) -> list[str]:
    """The text of every element at this XPath (namespaces rsm, ram, udt)."""
    return [str(found) for found in etree.fromstring(xml).xpath(path + "/text()", namespaces=CII)]
