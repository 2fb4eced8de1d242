"""SEDA 2.1 builders/parsers: XSD validity and hardened reading."""

from __future__ import annotations

import hashlib
from datetime import date, datetime

import pytest

from schemas.seda.transfer import (
    SedaError,
    build_acknowledgement,
    build_archive_transfer,
    build_transfer_reply,
    parse_acknowledgement,
    parse_archive_transfer,
    parse_seda,
    parse_transfer_reply,
    validate_seda21,
)
from schemas.xml import validate

WHEN = datetime(2024, 5, 2, 10, 0)


def transfer(**overrides) -> bytes:
    args = dict(
        message_identifier="DOC1-sae-1", archival_agency="FRAD006", transferring_agency="210600235",
        originating_agency="210600235", archival_agreement=None, title="Délibération n°1",
        description=None, files=[("acte.pdf", b"%PDF-1.4", "application/pdf"), ("vide.txt", b"", "text/plain")],
        start_date=None, keywords=None, date=WHEN,
    )
    args.update(overrides)
    return build_archive_transfer(**args)


def test_archive_transfer_valid_against_xsd() -> None:
    minimal = transfer()
    full = transfer(archival_agreement="ACCORD", description="desc", start_date=date(2024, 4, 30),
                    keywords={"numero_interne": "DEL1", "classification": "7.1.2"})
    for message in (minimal, full):
        validate_seda21(message)
        validate("seda21", message)
    info = parse_archive_transfer(full)
    assert info["message_identifier"] == "DOC1-sae-1" and info["archival_agreement"] == "ACCORD"
    assert [f["filename"] for f in info["files"]] == ["acte.pdf", "vide.txt"]
    assert info["files"][0]["digest"] == hashlib.sha256(b"%PDF-1.4").hexdigest()
    assert info["files"][0]["algorithm"] == "SHA-256"
    assert info["files"][0]["size"] == 8 and info["files"][1]["size"] == 0


def test_builder_refuses_no_file_and_duplicate_names() -> None:
    with pytest.raises(SedaError):
        transfer(files=[])
    with pytest.raises(SedaError):
        transfer(files=[("a.pdf", b"1", "application/pdf"), ("a.pdf", b"2", "application/pdf")])


def test_acknowledgement_and_replies_valid() -> None:
    ack = build_acknowledgement(message_identifier="ACK_1", message_received_identifier="DOC1",
                                sender="FRAD006", receiver="210600235", date=WHEN)
    validate_seda21(ack)
    assert parse_acknowledgement(ack)["message_received_identifier"] == "DOC1"
    accepted = build_transfer_reply(message_identifier="DOC1", reply_code="000", comment="ok",
                                    archive_unit_identifier="AE_2024_15", request_identifier="ATR_1",
                                    archival_agency="FRAD006", transferring_agency="210600235", date=WHEN)
    refused = build_transfer_reply(message_identifier="DOC1", reply_code="101", comment="Refus",
                                   archive_unit_identifier=None, request_identifier="ATR_2",
                                   archival_agency="FRAD006", transferring_agency="210600235", date=WHEN)
    for message in (accepted, refused):
        validate_seda21(message)
    assert parse_transfer_reply(accepted) == {
        "reply_code": "000", "comment": "ok", "message_identifier": "DOC1", "request_identifier": "ATR_1",
        "archive_identifier": "AE_2024_15", "date": "2024-05-02T10:00:00", "grant_date": "2024-05-02T10:00:00",
    }
    assert parse_transfer_reply(refused)["archive_identifier"] is None


def test_hardened_parser() -> None:
    with pytest.raises(SedaError):
        parse_seda(b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>')
    with pytest.raises(SedaError):
        parse_seda(b"<html>not seda</html>")
    with pytest.raises(SedaError):
        parse_seda(b"not xml at all")
    with pytest.raises(SedaError):
        parse_transfer_reply(transfer())  # wrong message type
