"""Safe XML parsing and XSD validation against the official schemas shipped in `schemas/xsd`."""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import Literal

from lxml import etree

from schemas.errors import SchemaError, XmlError, XsdError

__all__ = ["XSD_DIR", "SchemaError", "XmlError", "XsdError", "XsdKind", "check_xml_stream", "parse_xml", "validate"]

XSD_DIR = Path(__file__).resolve().parent / "xsd"

XsdKind = Literal["actes", "seda21", "seda22", "pes_aller", "pes_acquit"]

_ENTRY_POINTS: dict[str, str] = {
    "actes": "actes/actesv1_1.xsd",
    "seda21": "seda_v2/2.1/seda-2.1-main.xsd",
    "seda22": "seda_v2/2.2/seda-2.2-main.xsd",
    "pes_aller": "pes_v2/PES_V2/Rev0/PES_Aller.xsd",
    "pes_acquit": "pes_v2/PES_V2/Rev0/PES_V2_Acquit_Autonome_V2.xsd",
}

# The DOCTYPE marker in the encodings an XML declaration may announce (UTF-16 has NULs).
_DOCTYPE_MARKERS = (b"<!DOCTYPE", "<!DOCTYPE".encode("utf-16-le"), "<!DOCTYPE".encode("utf-16-be"))


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def parse_xml(data: bytes, *, max_bytes: int = 20_000_000) -> etree._Element:
    """Parse untrusted XML bytes. Any DOCTYPE is refused (no DTD, no entity can then exist)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise XmlError("xml_malformed", "le document doit être fourni en octets / XML must be bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise XmlError(
            "xml_too_large",
            f"document XML trop volumineux / XML too large: {len(data)} > {max_bytes} bytes",
        )
    if not data.strip():
        raise XmlError("xml_malformed", "document XML vide / empty XML document")
    upper = data.upper()
    if any(m in upper for m in _DOCTYPE_MARKERS):
        raise XmlError("xml_doctype_forbidden", "DOCTYPE interdit / DOCTYPE is not allowed")
    try:
        root = etree.fromstring(data, parser=_safe_parser())
    except etree.XMLSyntaxError as exc:
        raise XmlError("xml_malformed", f"XML mal formé / malformed XML: {exc}") from None
    except ValueError as exc:  # e.g. unsupported encoding declaration
        raise XmlError("xml_malformed", f"XML mal formé / malformed XML: {exc}") from None
    if root is None:
        raise XmlError("xml_malformed", "document XML vide / empty XML document")
    # Belt and braces: the byte scan above could be fooled by an exotic encoding.
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlError("xml_doctype_forbidden", "DOCTYPE interdit / DOCTYPE is not allowed")
    return root


MAX_DEPTH = 256
MAX_ATTRIBUTE = 1 << 20


def check_xml_stream(source: Path | bytes, name: str = "document") -> None:
    """Check an untrusted XML file of any size, streaming: well-formed, no DOCTYPE (hence no
    entity, no external DTD), at most MAX_DEPTH levels deep, no attribute longer than MAX_ATTRIBUTE.

    Big text nodes are allowed (a PES carries its PJ in base64). Codes: `xml_malformed`,
    `xml_doctype_forbidden`, `xml_too_deep`, `xml_attribute_too_large`.
    """
    import io

    stream = source.open("rb") if isinstance(source, Path) else io.BytesIO(source)
    depth = 0
    try:
        with stream:
            events = etree.iterparse(stream, events=("start", "end"), resolve_entities=False, no_network=True,
                                     load_dtd=False, huge_tree=True, remove_comments=True, remove_pis=True)
            for event, element in events:
                if event == "end":
                    depth -= 1
                    element.clear(keep_tail=False)
                    continue
                if depth == 0 and element.getroottree().docinfo.doctype:
                    raise XmlError("xml_doctype_forbidden", f"DOCTYPE interdit / DOCTYPE is not allowed in {name!r}")
                depth += 1
                if depth > MAX_DEPTH:
                    raise XmlError("xml_too_deep", f"XML trop imbriqué / {name!r} nests more than {MAX_DEPTH} levels")
                if any(len(v) > MAX_ATTRIBUTE for v in element.attrib.values()):
                    raise XmlError("xml_attribute_too_large",
                                   f"Attribut trop long / an attribute of {name!r} exceeds {MAX_ATTRIBUTE} characters")
    except etree.XMLSyntaxError as exc:
        raise XmlError("xml_malformed", f"XML mal formé / malformed XML in {name!r}: {exc}"[:500]) from None
    except ValueError as exc:  # e.g. unsupported encoding declaration
        raise XmlError("xml_malformed", f"XML mal formé / malformed XML in {name!r}: {exc}"[:500]) from None


@cache
def _schema(kind: str) -> tuple[etree.XMLSchema, threading.Lock]:
    try:
        rel = _ENTRY_POINTS[kind]
    except KeyError:
        raise SchemaError("xsd_unknown_kind", f"unknown schema kind {kind!r}") from None
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    doc = etree.parse(str(XSD_DIR / rel), parser)
    # lxml keeps the error log on the schema object: serialise validations per schema.
    return etree.XMLSchema(doc), threading.Lock()


def validate(kind: XsdKind, root_or_bytes: etree._Element | etree._ElementTree | bytes) -> None:
    """Validate against the official XSD of `kind`; raise XsdError listing the errors."""
    if isinstance(root_or_bytes, (bytes, bytearray, memoryview)):
        node: etree._Element | etree._ElementTree = parse_xml(bytes(root_or_bytes))
    else:
        node = root_or_bytes
    schema, lock = _schema(kind)
    with lock:
        ok = schema.validate(node)
        errors = [f"line {e.line}: {e.message}" for e in schema.error_log] if not ok else []
    if not ok:
        raise XsdError(
            "xsd_invalid",
            f"document non conforme au schéma {kind} / does not validate against {kind}: "
            + (errors[0] if errors else "unknown error"),
            errors,
        )
