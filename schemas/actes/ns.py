"""ACTES namespaces and small lxml helpers shared by the builders and parsers."""

from __future__ import annotations

from datetime import date

from lxml import etree

from schemas.errors import SchemaError

ACTES_NS = "http://www.interieur.gouv.fr/ACTES#v1.1-20040216"
INSEE_NS = "http://xml.insee.fr/schema"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{ACTES_NS} actesv1_1.xsd"
NSMAP = {"actes": ACTES_NS, "insee": INSEE_NS, "xsi": XSI_NS}
XML_DECLARATION = b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'


def q(name: str) -> str:
    """Qualified ACTES name (elements and attributes are both qualified)."""
    return f"{{{ACTES_NS}}}{name}"


def root_element(name: str, attrs: dict[str, str] | None = None) -> etree._Element:
    el = etree.Element(q(name), nsmap=NSMAP)
    el.set(f"{{{XSI_NS}}}schemaLocation", SCHEMA_LOCATION)
    for k, v in (attrs or {}).items():
        el.set(q(k), v)
    return el


def sub(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, q(name))
    for k, v in attrs.items():
        el.set(f"{{{INSEE_NS}}}SIREN" if k == "SIREN" else q(k), v)
    if text is not None:
        el.text = text
    return el


def iso(d: date) -> str:
    return d.isoformat()


def serialize(root: etree._Element) -> bytes:
    """ISO-8859-1 with a double-quoted declaration, as S²low writes it.

    Characters outside Latin-1 are written as character references by lxml.
    """
    etree.indent(root, space="  ")
    return XML_DECLARATION + etree.tostring(
        root, encoding="ISO-8859-1", xml_declaration=False, pretty_print=True
    )


def local(el: etree._Element) -> str:
    return etree.QName(el).localname


def child(el: etree._Element, name: str) -> etree._Element | None:
    return el.find(q(name))


def child_text(el: etree._Element, name: str) -> str | None:
    c = el.find(q(name))
    return None if c is None else (c.text or "")


def attr(el: etree._Element | None, name: str) -> str | None:
    if el is None:
        return None
    if name == "SIREN":
        return el.get(f"{{{INSEE_NS}}}SIREN")
    v = el.get(q(name))
    # Tolerate unqualified attributes written by lax producers.
    return v if v is not None else el.get(name)


def to_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise SchemaError("actes_invalid_date", f"Date invalide / invalid date {value[:40]!r}") from None
