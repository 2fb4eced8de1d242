from __future__ import annotations

import json
from datetime import date

import pytest
from schemas_testlib import PDF, sample

from schemas.actes.archive import build_acte_archive
from schemas.actes.messages import build_aracte
from schemas.errors import SchemaError, XmlError
from schemas.inspect import inspect_message


def test_aracte() -> None:
    r = inspect_message(sample("actes_ARActe"))
    json.dumps(r)
    assert r["format"] == "ARActe"
    assert r["type_code"] == "1-2"
    assert r["id_acte"] == "006-210600235-20180522-684-AI"
    assert r["date_reception"] == "2018-05-28"
    assert r["numero_interne"] == "684"
    assert r["nature"] == 3


def test_retour_classification() -> None:
    r = inspect_message(sample("actes_RetourClassification"))
    assert r["format"] == "RetourClassification" and r["type_code"] == "7-2"
    assert r["date_classification"] == "2019-03-01"


def test_pes_aller() -> None:
    r = inspect_message(sample("pes_aller"))
    json.dumps(r)
    assert r["format"] == "PES_Aller"
    assert r["id_coll"] == "75580064600099"
    assert r["nom_fic"] == "STELA11"
    assert r["bordereaux"] == 1
    assert r["pj"] == 2
    assert r["signed"] is True


def test_pes_acquit() -> None:
    r = inspect_message(sample("pes_acquit"))
    assert r["format"] == "PES_ACQUIT"
    assert r["nom_fic"] == "HELIOS_SIMU_ALR2_1514384631_264491346.xml"
    assert r["etat_ack"] == ["1"] * 5


def test_seda() -> None:
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<ArchiveTransferReply xmlns="fr:gouv:culture:archivesdefrance:seda:v2.1">
  <Date>2024-01-02T10:00:00</Date>
  <MessageIdentifier>ATR-1</MessageIdentifier>
  <ReplyCode>OK</ReplyCode>
  <MessageRequestIdentifier>AT-1</MessageRequestIdentifier>
  <ArchivalAgency><Identifier>SAE</Identifier></ArchivalAgency>
  <TransferringAgency><Identifier>COLL</Identifier></TransferringAgency>
</ArchiveTransferReply>"""
    r = inspect_message(xml)
    assert r["format"] == "ArchiveTransferReply"
    assert r["seda_version"] == "2.1"
    assert r["message_identifier"] == "ATR-1"
    assert r["reply_code"] == "OK"
    assert r["archival_agency"] == "SAE"
    assert inspect_message(xml.replace(b"v2.1", b"v2.2"))["seda_version"] == "2.2"


def test_actes_archive_and_aracte(emetteur, metadata) -> None:
    built = build_acte_archive(
        emetteur=emetteur, metadata=metadata, classification_date=date(2019, 3, 1),
        document=("a.pdf", PDF), annexes=[], trigramme="SLO", quadrigramme="EACT",
        serial=1, day=date(2017, 12, 27), return_emails=["tdt@example.org"],
    )
    r = inspect_message(built.data)
    json.dumps(r)
    assert r["format"] == "actes_archive"
    assert r["members"] == built.members
    assert r["enveloppe"]["siren"] == "491011698"
    assert r["message"]["date_decision"] == "2017-12-07"
    ar = build_aracte(built.acte_xml, id_acte="034-491011698-20171207-CL20171227_06-DE",
                      date_reception=date(2017, 12, 28), classification_date=date(2019, 3, 1))
    assert inspect_message(ar)["id_acte"] == "034-491011698-20171207-CL20171227_06-DE"


def test_unknown() -> None:
    with pytest.raises(SchemaError) as exc:
        inspect_message(b"<foo xmlns='urn:x'/>")
    assert exc.value.code == "unknown_format"
    with pytest.raises(SchemaError) as exc:
        inspect_message(b"%PDF-1.4 hello")
    assert exc.value.code == "unknown_format"
    with pytest.raises(XmlError):
        inspect_message(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
