from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from helios_testlib import SAMPLE_SIREN, pes_sample, sample_path

from schemas.errors import SchemaError
from schemas.helios.pes import HeliosError, PesSummary, check_idcoll, read_pes_aller


def _code(data: bytes | Path, **kw) -> str:
    with pytest.raises(HeliosError) as exc:
        read_pes_aller(data, **kw)
    assert isinstance(exc.value, SchemaError)
    return exc.value.code


def test_real_sample() -> None:
    data = pes_sample()
    s = read_pes_aller(sample_path("pes_aller__"))
    assert isinstance(s, PesSummary)
    assert s.id_coll == "75580064600099"
    assert s.siren == SAMPLE_SIREN
    assert s.nom_fic == "STELA11"
    assert (s.id_post, s.cod_col, s.cod_bud) == ("010001", "244", "00")
    assert s.dte_str == "2017-09-19"
    assert s.libelle_col_bud == "Commune de Berger-Levrault"
    assert s.root_id == "M07802724420170919175245964"
    assert len(s.bordereaux) == 1
    b = s.bordereaux[0]
    assert (b.domain, b.exercice, b.id_bord, b.id, b.type_bord) == ("depense", "2019", "11", "N10025", "01")
    assert b.pieces == 1
    assert b.montant_ht == "4874.40"
    assert b.signed is True
    assert s.pj_count == 2
    assert s.pj_ids == ["21780537300016DEPENSE2016001384", "21780537300016DEPENSE2016001385"]
    assert s.signed is True and s.signatures == 1
    assert s.size == len(data)
    assert s.sha1 == hashlib.sha1(data).hexdigest()
    assert s.sha256 == hashlib.sha256(data).hexdigest()
    d = s.to_dict()
    json.dumps(d)
    assert d["siren"] == SAMPLE_SIREN and d["bordereaux"][0]["montant_ht"] == "4874.40"
    assert read_pes_aller(data) == s  # bytes and path agree


def test_check_idcoll() -> None:
    s = read_pes_aller(pes_sample())
    check_idcoll(s, SAMPLE_SIREN)
    with pytest.raises(HeliosError) as exc:
        check_idcoll(s, "210600235")
    assert exc.value.code == "pes_wrong_idcoll"
    assert "75580064600099" in exc.value.message


def test_wrong_idcoll_in_file() -> None:
    data = pes_sample().replace(b'<IdColl V="75580064600099"/>', b'<IdColl V="21060023500017"/>')
    s = read_pes_aller(data)
    with pytest.raises(HeliosError) as exc:
        check_idcoll(s, SAMPLE_SIREN)
    assert exc.value.code == "pes_wrong_idcoll"


@pytest.mark.parametrize("decl", [b'<?xml version="1.0" encoding="UTF-8"?>', b'<?xml version="1.0"?>', b""])
def test_not_iso_8859_1(decl: bytes) -> None:
    data = pes_sample().replace(b'<?xml version="1.0" encoding="ISO-8859-1"?>', decl)
    assert _code(data) == "pes_not_iso_8859_1"


def test_iso_declaration_case_insensitive() -> None:
    data = pes_sample().replace(b'encoding="ISO-8859-1"', b"encoding='iso-8859-1'")
    assert read_pes_aller(data).nom_fic == "STELA11"


def test_utf8_bom_refused() -> None:
    assert _code(b"\xef\xbb\xbf" + pes_sample().replace(b"ISO-8859-1", b"UTF-8")) == "pes_not_iso_8859_1"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.replace(b"</Piece>", b"</Pice>"),  # tag mismatch
        lambda d: d[:5000],  # truncated (lxml misses this with resolve_entities=False + schema)
        lambda d: d + b"<extra/>",  # content after the root
        lambda d: d.replace(b'<IdBord V="11"/>', b'<IdBord V="&foo;"/>'),  # undefined entity
    ],
)
def test_malformed(mutate) -> None:
    assert _code(mutate(pes_sample())) == "pes_invalid_xml"


def test_not_xml() -> None:
    assert _code(b"%PDF-1.4 not xml") == "pes_invalid_xml"
    assert _code(b"") == "pes_invalid_xml"


BILLION_LAUGHS = b"""<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<n:PES_Aller xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller">&lol3;</n:PES_Aller>"""

XXE = b"""<?xml version="1.0" encoding="ISO-8859-1"?>
<!-- comment first --><!doctype n:PES_Aller SYSTEM "file:///etc/passwd">
<n:PES_Aller xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller"/>"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, XXE, BILLION_LAUGHS.replace(b'encoding="ISO-8859-1"', b"")])
def test_doctype_refused(data: bytes) -> None:
    assert _code(data) == "pes_doctype_forbidden"


def test_doctype_utf16_refused() -> None:
    data = BILLION_LAUGHS.decode("latin-1").replace("ISO-8859-1", "UTF-16").encode("utf-16")
    assert _code(data) == "pes_doctype_forbidden"


def test_xsd_invalid_with_line() -> None:
    data = pes_sample().replace(b'<IdBord V="11"/>', b'<IdBord V="x11"/>')
    with pytest.raises(HeliosError) as exc:
        read_pes_aller(data)
    assert exc.value.code == "pes_xsd_invalid"
    assert "line 28" in exc.value.message and "IdBord" in exc.value.message
    assert exc.value.errors and exc.value.to_dict()["error"]["details"]


def test_xsd_missing_element_line() -> None:
    data = pes_sample().replace(b'<NomPJ V="FAC3056619100002920160000000000010075.pdf"/>', b"")
    with pytest.raises(HeliosError) as exc:
        read_pes_aller(data)
    assert exc.value.code == "pes_xsd_invalid"
    assert "near line 159" in exc.value.message and "TypePJ" in exc.value.message


def test_codcol_too_long() -> None:
    with pytest.raises(HeliosError) as exc:
        read_pes_aller(pes_sample().replace(b'<CodCol V="244"/>', b'<CodCol V="2444"/>'))
    assert exc.value.code == "pes_codcol_too_long"
    assert "Le CodCol est trop long" in exc.value.message


def test_empty() -> None:
    data = pes_sample()
    empty = data[: data.index(b"<PES_DepenseAller>")] + b"</n:PES_Aller>"
    with pytest.raises(HeliosError) as exc:
        read_pes_aller(empty)
    assert exc.value.code == "pes_empty"
    assert "ni bordereau, ni PJ, ni marché" in exc.value.message


def test_not_pes_aller() -> None:
    assert _code(sample_path("pes_acquit_v2__").read_bytes()) == "pes_not_pes_aller"
    assert _code(b'<?xml version="1.0" encoding="ISO-8859-1"?><PES_Aller/>') == "pes_not_pes_aller"


def test_too_large(tmp_path: Path) -> None:
    assert _code(pes_sample(), max_bytes=1000) == "pes_too_large"
    p = tmp_path / "pes.xml"
    p.write_bytes(pes_sample())
    assert _code(p, max_bytes=1000) == "pes_too_large"


def test_missing_file(tmp_path: Path) -> None:
    assert _code(tmp_path / "nope.xml") == "pes_unreadable"


def test_xsd_error_located_by_value() -> None:
    # the same IdUnique appears at line 49 (PJRef) and 157 (PJ): the first bad one is reported
    data = pes_sample().replace(b'<IdUnique V="21780537300016DEPENSE2016001385"/>', b'<IdUnique V="bad id!"/>')
    with pytest.raises(HeliosError) as exc:
        read_pes_aller(data)
    assert exc.value.code == "pes_xsd_invalid" and "line 49:" in exc.value.message


def test_xsd_error_at_end_of_document() -> None:
    data = pes_sample()
    only_enveloppe = data[: data.index(b"<EnTetePES>")] + b"</n:PES_Aller>"
    with pytest.raises(HeliosError) as exc:
        read_pes_aller(only_enveloppe)
    assert exc.value.code == "pes_xsd_invalid" and "EnTetePES" in exc.value.message
