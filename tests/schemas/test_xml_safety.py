from __future__ import annotations

import pytest
from lxml import etree
from schemas_testlib import sample

from schemas.errors import SchemaError, XmlError, XsdError
from schemas.xml import parse_xml, validate

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol4;</lolz>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<foo>&xxe;</foo>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE foo SYSTEM "http://example.invalid/evil.dtd"><foo/>"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, XXE, EXTERNAL_DTD, b"<!doctype foo><foo/>"])
def test_doctype_refused(payload: bytes) -> None:
    with pytest.raises(XmlError) as exc:
        parse_xml(payload)
    assert exc.value.code == "xml_doctype_forbidden"
    assert isinstance(exc.value, SchemaError)


def test_utf16_doctype_refused() -> None:
    payload = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'.encode("utf-16")
    with pytest.raises(XmlError) as exc:
        parse_xml(payload)
    assert exc.value.code == "xml_doctype_forbidden"


def test_too_large() -> None:
    with pytest.raises(XmlError) as exc:
        parse_xml(b"<a>" + b"x" * 100 + b"</a>", max_bytes=50)
    assert exc.value.code == "xml_too_large"


@pytest.mark.parametrize("payload", [b"", b"   ", b"<a>", b"<a></b>", b"not xml"])
def test_malformed(payload: bytes) -> None:
    with pytest.raises(XmlError) as exc:
        parse_xml(payload)
    assert exc.value.code == "xml_malformed"


def test_parse_sample_latin1() -> None:
    root = parse_xml(sample("actes_ARActe"))
    assert etree.QName(root).localname == "ARActe"
    assert "durée" in "".join(root.itertext())


@pytest.mark.parametrize(
    "kind,prefix",
    [
        ("actes", "actes_ARActe"),
        ("actes", "actes_RetourClassification"),
        ("pes_aller", "pes_aller"),
        ("pes_acquit", "pes_acquit"),
    ],
)
def test_samples_validate(kind: str, prefix: str) -> None:
    data = sample(prefix)
    validate(kind, data)  # bytes
    validate(kind, parse_xml(data))  # element


def test_validate_reports_errors() -> None:
    bad = sample("actes_ARActe").replace(b'actes:IDActe="006-210600235-20180522-684-AI"', b'actes:IDActe="bad"')
    with pytest.raises(XsdError) as exc:
        validate("actes", bad)
    assert exc.value.code == "xsd_invalid"
    assert exc.value.errors and "IDActe" in " ".join(exc.value.errors)
    assert exc.value.to_dict()["error"]["code"] == "xsd_invalid"


def test_validate_wrong_kind() -> None:
    with pytest.raises(XsdError):
        validate("pes_aller", sample("actes_ARActe"))


def test_seda21_schema_compiles() -> None:
    doc = b'<ArchiveTransferReply xmlns="fr:gouv:culture:archivesdefrance:seda:v2.1"/>'
    with pytest.raises(XsdError):
        validate("seda21", doc)
