from __future__ import annotations

import gzip
import io
import tarfile
from datetime import date

import pytest
from schemas_testlib import PDF

from schemas.actes.archive import (
    ParsedArchive,
    build_acte_archive,
    pack_tar_gz,
    read_acte_archive,
)
from schemas.errors import ArchiveError, MetadataError, SchemaError
from schemas.xml import parse_xml, validate

DOC_NAME = "99_DE-034-491011698-20171207-CL20171227_06-DE-1-1_1.pdf"


def build(emetteur, metadata, annexes=None, **kw):
    params = dict(
        emetteur=emetteur,
        metadata=metadata,
        classification_date=date(2019, 3, 1),
        document=("deliberation.pdf", PDF),
        annexes=annexes if annexes is not None else [("annexe 1.pdf", PDF + b"1"), ("plan.png", b"\x89PNG")],
        trigramme="SLO",
        quadrigramme="EACT",
        serial=3,
        day=date(2017, 12, 27),
        return_emails=["actes@tdt.example.org", "mairie@example.fr"],
    )
    params.update(kw)
    return build_acte_archive(**params)


def test_names_follow_protocol(emetteur, metadata) -> None:
    built = build(emetteur, metadata)
    assert built.name == "SLO-EACT--491011698--20171227-3.tar.gz"
    assert built.enveloppe_name == "EACT--491011698--20171227-3.xml"
    assert built.acte_xml_name == "034-491011698-20171207-CL20171227_06-DE-1-1_0.xml"
    assert built.members == [
        "EACT--491011698--20171227-3.xml",
        "034-491011698-20171207-CL20171227_06-DE-1-1_0.xml",
        DOC_NAME,
        "99_DE-034-491011698-20171207-CL20171227_06-DE-1-1_2.pdf",
        "99_DE-034-491011698-20171207-CL20171227_06-DE-1-1_3.png",
    ]


def test_xml_valid_and_shaped(emetteur, metadata) -> None:
    built = build(emetteur, metadata)
    assert built.acte_xml.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    validate("actes", built.acte_xml)
    validate("actes", built.enveloppe_xml)
    acte = parse_xml(built.acte_xml)
    ns = "{http://www.interieur.gouv.fr/ACTES#v1.1-20040216}"
    assert acte.get(f"{ns}Date") == "2017-12-07"
    assert acte.get(f"{ns}NumeroInterne") == "CL20171227_06"
    assert acte.get(f"{ns}CodeNatureActe") == "1"
    names = [c.tag.replace(ns, "") for c in acte]
    assert names == [
        "CodeMatiere1", "CodeMatiere2", "CodeMatiere3", "Objet", "ClassificationDateVersion",
        "Document", "Annexes", "DocumentPapier",
    ]
    assert [c.get(f"{ns}CodeMatiere") for c in acte[:3]] == ["7", "1", "2"]
    assert acte.find(f"{ns}Annexes").get(f"{ns}Nombre") == "2"
    assert acte.findtext(f"{ns}DocumentPapier") == "N"
    assert acte.findtext(f"{ns}Objet") == metadata.objet  # œ survives as a character reference
    env = parse_xml(built.enveloppe_xml)
    idcl = env.find(f"{ns}Emetteur/{ns}IDCL")
    assert idcl.get("{http://xml.insee.fr/schema}SIREN") == "491011698"
    assert idcl.get(f"{ns}Nature") == "31"
    assert [e.text for e in env.find(f"{ns}AdressesRetour")] == ["actes@tdt.example.org", "mairie@example.fr"]


def test_tar_format(emetteur, metadata) -> None:
    built = build(emetteur, metadata)
    assert built.data[:2] == b"\x1f\x8b"
    assert built.data[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime 0
    with tarfile.open(fileobj=io.BytesIO(built.data), mode="r:gz") as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos] == built.members
    assert all(i.isreg() and i.mtime == 0 and "/" not in i.name for i in infos)
    assert tarfile.open(fileobj=io.BytesIO(built.data)).extractfile(DOC_NAME).read() == PDF


def test_deterministic(emetteur, metadata) -> None:
    assert build(emetteur, metadata).data == build(emetteur, metadata).data


def test_round_trip(emetteur, metadata) -> None:
    built = build(emetteur, metadata)
    parsed = read_acte_archive(built.data, name=built.name, trigramme="SLO", quadrigramme="EACT")
    assert isinstance(parsed, ParsedArchive)
    assert parsed.enveloppe["siren"] == "491011698"
    assert parsed.enveloppe["files"] == [built.acte_xml_name]
    assert parsed.acte["numero_interne"] == "CL20171227_06"
    assert parsed.acte["classification"] == "7.1.2"
    assert parsed.acte["date_decision"] == date(2017, 12, 7)
    assert parsed.acte["document"] == DOC_NAME
    assert len(parsed.acte["annexes"]) == 2
    assert parsed.acte_xml == built.acte_xml
    assert parsed.enveloppe_xml == built.enveloppe_xml
    assert parsed.files[DOC_NAME] == PDF
    assert parsed.message_type == "1-1"


def test_typologies_and_referent(emetteur, metadata) -> None:
    md = metadata.model_copy(update={"typologie": ["99_DE", "22_DP"]})
    emetteur.referent_email = "referent@mairie.example.fr"
    built = build(emetteur, md, annexes=[("a.pdf", PDF)])
    assert built.members[-1] == "22_DP-034-491011698-20171207-CL20171227_06-DE-1-1_2.pdf"
    assert b"referent@mairie.example.fr" in built.enveloppe_xml
    with pytest.raises(MetadataError) as exc:
        build(emetteur, md.model_copy(update={"typologie": ["99_DE", "22_DP", "22_DP"]}), annexes=[("a.pdf", PDF)])
    assert exc.value.code == "typologie_count"


def test_file_type_rules(emetteur, metadata) -> None:
    with pytest.raises(ArchiveError) as exc:
        build(emetteur, metadata, document=("acte.docx", b"PK"))
    assert exc.value.code == "archive_bad_file_type"
    with pytest.raises(ArchiveError):
        build(emetteur, metadata, document=("budget.xml", b"<a/>"))  # XML acte only for BF 7.1
    bf = metadata.model_copy(update={"nature": 5, "classification": "7.1"})
    built = build(emetteur, bf, document=("budget.xml", b"<a/>"), annexes=[("a.pdf", PDF)])
    assert built.members[2].startswith("99_BU-") and built.members[2].endswith("-BF-1-1_1.xml")


def test_invalid_input_refused_by_xsd(emetteur, metadata) -> None:
    with pytest.raises(SchemaError):
        build(emetteur, metadata, return_emails=["not-an-email"])
    with pytest.raises(SchemaError):
        build(emetteur, metadata, return_emails=[])


# ---- reading hostile archives -------------------------------------------------------------


def _tar_gz(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tar.addfile(info, io.BytesIO(m[1]))
    return gzip.compress(raw.getvalue())


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../x", "..\\x", "C:/x"])
def test_path_traversal_refused(bad: str) -> None:
    with pytest.raises(ArchiveError) as exc:
        read_acte_archive(_tar_gz([(bad, b"x")]))
    assert exc.value.code == "archive_path_traversal"


def test_subdirectory_refused() -> None:
    with pytest.raises(ArchiveError) as exc:
        read_acte_archive(_tar_gz([("dir/x.pdf", b"x")]))
    assert exc.value.code == "archive_not_flat"


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE])
def test_links_dirs_devices_refused(kind: bytes) -> None:
    info = tarfile.TarInfo("EACT--491011698--20171227-3.xml")
    info.type = kind
    info.linkname = "/etc/passwd"
    with pytest.raises(ArchiveError) as exc:
        read_acte_archive(_tar_gz([info]))
    assert exc.value.code == "archive_forbidden_member"


def test_gzip_bomb_refused() -> None:
    # 64 MiB of zeros compresses to ~64 KiB; the cap must stop decompression early.
    bomb = _tar_gz([("EACT--491011698--20171227-3.xml", b"\x00" * (64 * 1024 * 1024))])
    assert len(bomb) < 1024 * 1024
    with pytest.raises(ArchiveError) as exc:
        read_acte_archive(bomb, max_bytes=2 * 1024 * 1024)
    assert exc.value.code == "archive_too_large"


def test_compressed_too_large() -> None:
    with pytest.raises(ArchiveError) as exc:
        read_acte_archive(b"\x1f\x8b" + b"\x00" * 100, max_bytes=10)
    assert exc.value.code == "archive_too_large"


def test_member_count_cap() -> None:
    with pytest.raises(ArchiveError) as exc:
        read_acte_archive(_tar_gz([(f"f{i}.pdf", b"x") for i in range(20)]), max_members=10)
    assert exc.value.code == "archive_too_many_members"


def test_not_gzip() -> None:
    with pytest.raises(ArchiveError) as exc:
        read_acte_archive(b"PK\x03\x04 zip")
    assert exc.value.code == "archive_corrupt"


def test_bad_name(emetteur, metadata) -> None:
    built = build(emetteur, metadata)
    with pytest.raises(ArchiveError) as exc:
        read_acte_archive(built.data, name=built.name, trigramme="abc", quadrigramme="EACT")
    assert exc.value.code == "archive_bad_name"
    with pytest.raises(ArchiveError) as exc:
        read_acte_archive(built.data, name="whatever.tar.gz")
    assert exc.value.code == "archive_bad_name"
    # a well-formed name that does not match the enveloppe inside
    with pytest.raises(ArchiveError) as exc:
        read_acte_archive(built.data, name="SLO-EACT--491011698--20171227-4.tar.gz")
    assert exc.value.code == "archive_missing_file"


def test_missing_listed_file(emetteur, metadata) -> None:
    built = build(emetteur, metadata)
    with tarfile.open(fileobj=io.BytesIO(built.data)) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers() if m.name != DOC_NAME]
    with pytest.raises(ArchiveError) as exc:
        read_acte_archive(pack_tar_gz(members))
    assert exc.value.code == "archive_missing_file"
    assert DOC_NAME in exc.value.message


def test_invalid_xml_in_archive(emetteur, metadata) -> None:
    built = build(emetteur, metadata)
    with tarfile.open(fileobj=io.BytesIO(built.data)) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    members[1] = (members[1][0], members[1][1].replace(b"actes:Objet", b"actes:Sujet"))
    with pytest.raises(ArchiveError) as exc:
        read_acte_archive(pack_tar_gz(members))
    assert exc.value.code == "archive_invalid_xml"
    members[0] = (members[0][0], b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
    with pytest.raises(ArchiveError) as exc:
        read_acte_archive(pack_tar_gz(members))
    assert exc.value.code == "archive_invalid_xml"


def test_no_enveloppe() -> None:
    with pytest.raises(ArchiveError) as exc:
        read_acte_archive(pack_tar_gz([("a.pdf", PDF)]))
    assert exc.value.code == "archive_missing_file"
