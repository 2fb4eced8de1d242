"""The As@lae simulator over real HTTP: auth, SEDA 2.1 checks, messages, refusals, faults.

While a message is not ready the real server answers HTTP 500 "Transfert en cours de traitement"
(PatPercot/cd56-connecteur-asalae src/main/java/fr/morbihan/patrickpercot/cd56_connecteur_asalae/
AsalaeConnector.java compares the body with that text); what it answers for a transfer it never
received, or to a second POST of a transfer id, no public source shows."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx

from connectors.sae.asalae import pack_tar_gz
from schemas.seda.transfer import (
    build_archive_transfer,
    parse_acknowledgement,
    parse_transfer_reply,
    validate_seda21,
)

LOGIN, PASSWORD = "pastell", "pastell"
AUTH = (LOGIN, hashlib.sha256(PASSWORD.encode()).hexdigest())
FILES = [("acte.pdf", b"%PDF-1.4 acte", "application/pdf"), ("aracte.xml", b"<ARActe/>", "application/xml")]


def transfer(message_identifier: str = "DOC1-sae-1", originating: str = "210600235", files=FILES) -> bytes:
    return build_archive_transfer(
        message_identifier=message_identifier, archival_agency="FRAD006", transferring_agency="210600235",
        originating_agency=originating, archival_agreement="ACCORD-ACTES", title="Délibération budget",
        description="Acte télétransmis", files=files, start_date=date(2024, 4, 30),
        keywords={"numero_interne": "DEL2024_001"}, date=datetime(2024, 5, 2, 10, 0),
    )


def post(client: httpx.Client, bordereau: bytes, attachment: bytes | None = None) -> httpx.Response:
    files: dict[str, Any] = {"seda_message": ("bordereau.xml", bordereau, "application/xml")}
    if attachment is not None:
        files["attachments"] = ("archive.tar.gz", attachment, "application/gzip")
    return client.post("/sedaMessages", files=files)


def message_path(kind: str, org: str, ident: str) -> str:
    return (f"/sedaMessages/sequence:ArchiveTransfer/message:{kind}/"
            f"originOrganizationIdentification:{org}/originMessageIdentifier:{ident}")


def tar(files=FILES) -> bytes:
    return pack_tar_gz([(n, d) for n, d, _ in files])


def test_ping_versions_and_sha256_password(start_asalae) -> None:
    server = start_asalae()
    with httpx.Client(base_url=server.base_url) as client:
        assert client.get("/ping", auth=AUTH).json() == "webservices as@lae accessibles"
        assert client.get("/versions", auth=AUTH).json()["application"] == "as@lae"
        assert client.get("/ping", auth=(LOGIN, PASSWORD)).status_code == 401  # clear password refused
        assert client.get("/ping").status_code == 401


def test_transfer_ack_and_reply(start_asalae) -> None:
    server = start_asalae(reply_delay=60)
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        assert client.get(message_path("Acknowledgement", "210600235", "DOC1-sae-1")).status_code == 404
        answer = post(client, transfer(), tar())
        assert answer.status_code == 200 and answer.json() == "ok"
        ack = client.get(message_path("Acknowledgement", "210600235", "DOC1-sae-1"))
        assert ack.status_code == 200
        validate_seda21(ack.content)
        assert parse_acknowledgement(ack.content)["message_received_identifier"] == "DOC1-sae-1"
        pending = client.get(message_path("ArchiveTransferReply", "210600235", "DOC1-sae-1"))
        assert (pending.status_code, pending.text) == (500, "Transfert en cours de traitement")
        client.post("/_admin/clock/advance", json={"seconds": 60})
        atr = client.get(message_path("ArchiveTransferReply", "210600235", "DOC1-sae-1"))
        validate_seda21(atr.content)
        reply = parse_transfer_reply(atr.content)
        assert reply["reply_code"] == "000" and reply["archive_identifier"] == "AE_2024_1"
        assert reply["message_identifier"] == "DOC1-sae-1" and reply["request_identifier"] == "ATR_1"
        assert post(client, transfer("DOC2-sae-1"), tar()).status_code == 200
        client.post("/_admin/clock/advance", json={"seconds": 60})
        second = client.get(message_path("ArchiveTransferReply", "210600235", "DOC2-sae-1")).content
        assert parse_transfer_reply(second)["archive_identifier"] == "AE_2024_2"


def test_refusals(start_asalae) -> None:
    server = start_asalae(refuse_originating_agencies=["^999"], refuse_transfer_ids=["REFUSE"])
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        assert post(client, transfer("A1", originating="999000001"), tar()).status_code == 200
        assert post(client, transfer("REFUSE-2"), tar()).status_code == 200
        client.post("/_admin/faults", json={"refuse_next": 1})
        assert post(client, transfer("A3"), tar()).status_code == 200
        assert post(client, transfer("A4"), tar()).status_code == 200
        codes = {}
        for org, ident in (("999000001", "A1"), ("210600235", "REFUSE-2"), ("210600235", "A3"), ("210600235", "A4")):
            reply = parse_transfer_reply(client.get(message_path("ArchiveTransferReply", org, ident)).content)
            codes[ident] = (reply["reply_code"], reply["archive_identifier"])
        assert codes == {"A1": ("101", None), "REFUSE-2": ("101", None), "A3": ("101", None),
                         "A4": ("000", "AE_2024_1")}


def test_invalid_transfers_get_400(start_asalae) -> None:
    server = start_asalae()
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        assert post(client, b"<not-seda/>", tar()).status_code == 400
        assert post(client, transfer(), None).status_code == 400  # attachment missing
        tampered = tar([("acte.pdf", b"%PDF-1.4 other", "application/pdf"), FILES[1]])
        bad = post(client, transfer(), tampered)
        assert bad.status_code == 400 and "empreinte" in bad.json()["message"]
        missing = post(client, transfer(), tar(FILES[:1]))
        assert missing.status_code == 400 and "aracte.xml" in missing.json()["message"]
        doctype = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "x">]><x>&e;</x>'
        assert post(client, doctype, tar()).status_code == 400
        assert client.get("/_admin/transfers").json()["transfers"] == []


def test_acknowledgement_pending_and_unknown_transfer_answers(start_asalae) -> None:
    server = start_asalae(ack_delay=30)
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        unknown = client.get(message_path("Acknowledgement", "210600235", "JAMAIS"))
        assert (unknown.status_code, unknown.text) == (404, "message introuvable")
        assert post(client, transfer(), tar()).status_code == 200
        ack = client.get(message_path("Acknowledgement", "210600235", "DOC1-sae-1"))
        assert (ack.status_code, ack.text) == (500, "Transfert en cours de traitement")
    server = start_asalae(unknown_transfer_status=500, unknown_transfer_text="Transfert en cours de traitement")
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        unknown = client.get(message_path("ArchiveTransferReply", "210600235", "JAMAIS"))
        assert (unknown.status_code, unknown.text) == (500, "Transfert en cours de traitement")


def test_duplicate_transfer_counted(start_asalae) -> None:
    server = start_asalae()
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        assert post(client, transfer(), tar()).status_code == 200
        again = post(client, transfer(), tar())
        assert again.status_code == 400 and "déjà" not in again.text  # no source shows its words
        view = client.get("/_admin/transfers").json()
        assert view["duplicates"] == 1 and len(view["transfers"]) == 1
    server = start_asalae(duplicate_transfers="accept")
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        assert post(client, transfer(), tar()).status_code == 200
        assert post(client, transfer(), tar()).status_code == 200
        view = client.get("/_admin/transfers").json()
        assert view["duplicates"] == 1 and len(view["transfers"]) == 2


def test_faults_and_malformed(start_asalae) -> None:
    server = start_asalae()
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        client.post("/_admin/faults", json={"fail_next": 1})
        assert post(client, transfer(), tar()).status_code == 500
        assert client.get("/_admin/transfers").json()["transfers"] == []
        assert post(client, transfer(), tar()).status_code == 200
        client.post("/_admin/faults", json={"malformed_next": 1})
        garbled = client.get(message_path("ArchiveTransferReply", "210600235", "DOC1-sae-1"))
        assert garbled.status_code == 200 and b"ArchiveTransferReply" not in garbled.content


def test_state_file_survives_restart(start_asalae, tmp_path: Path) -> None:
    state = tmp_path / "asalae.json"
    server = start_asalae(state_file=state)
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        assert post(client, transfer(), tar()).status_code == 200
    server.stop()
    again = start_asalae(state_file=state)
    with httpx.Client(base_url=again.base_url, auth=AUTH) as client:
        atr = client.get(message_path("ArchiveTransferReply", "210600235", "DOC1-sae-1"))
        assert parse_transfer_reply(atr.content)["archive_identifier"] == "AE_2024_1"
        assert post(client, transfer("DOC2"), tar()).status_code == 200
        atr = client.get(message_path("ArchiveTransferReply", "210600235", "DOC2"))
        assert parse_transfer_reply(atr.content)["archive_identifier"] == "AE_2024_2"
