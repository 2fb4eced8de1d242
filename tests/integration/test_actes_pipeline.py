"""An acte through the real pipeline: broker, worker, API and HTTP simulators in their own processes."""

from __future__ import annotations

import re

from connectors.signature.pades import verify_pdf
from schemas.actes.archive import read_acte_archive
from schemas.actes.messages import parse_actes_message
from schemas.xml import validate
from tests.integration.conftest import Bus

NO_SIGNATURE, PADES, IPARAPHEUR = "214400152", "210600235", "491011698"
ID_ACTE = re.compile(r"^[09][0-9][AB0-9]-[0-9]{9}-[0-9]{8}-[A-Z0-9_]{1,15}-[A-Z]{2}$")


def states(doc: dict) -> list[str]:  # type: ignore[type-arg]
    """The states the document went through, in order (a redrive repeats a state: kept once)."""
    path: list[str] = []
    for entry in doc["timeline"]:
        if not path or path[-1] != entry["state"]:
            path.append(entry["state"])
    return path


def test_acte_is_transmitted_acknowledged_and_archived(bus: Bus) -> None:
    doc = bus.deposit(NO_SIGNATURE, "INT_ARCH_1", annexes=1)
    doc = bus.wait(NO_SIGNATURE, doc["id"])
    assert doc["state"] == "archived", doc
    assert states(doc) == ["deposited", "transmitting", "transmitted", "acknowledged", "archiving", "archived"]
    id_acte = doc["replies"]["id_acte"]
    assert ID_ACTE.match(id_acte) and id_acte.startswith("044-214400152-") and id_acte.endswith("-INT_ARCH_1-DE")
    assert doc["replies"]["archive_identifier"]

    roles = {f["role"]: f for f in doc["files"]}
    assert {"document", "annexe", "tdt_archive", "aracte", "seda_transfer", "seda_reply"} <= set(roles)
    # The transmitted archive follows the official naming and its XML validates against the ACTES XSD.
    archive_name = roles["tdt_archive"]["name"]
    assert re.match(r"^DMB-EACT--214400152--\d{8}-\d+\.tar\.gz$", archive_name)
    parsed = read_acte_archive(bus.file(NO_SIGNATURE, doc["id"], archive_name), name=archive_name,
                               trigramme="DMB", quadrigramme="EACT")
    validate("actes", parsed.acte_xml)
    validate("actes", parsed.enveloppe_xml)
    assert any(re.match(r"^99_DE-044-214400152-\d{8}-INT_ARCH_1-DE-1-1_1\.pdf$", n) for n in parsed.files)
    # The préfecture's AR is a real ARActe carrying the IDActe.
    aracte = bus.file(NO_SIGNATURE, doc["id"], roles["aracte"]["name"])
    validate("actes", aracte)
    assert parse_actes_message(aracte).fields["id_acte"] == id_acte
    # The SEDA transfer validates against SEDA 2.1.
    validate("seda21", bus.file(NO_SIGNATURE, doc["id"], roles["seda_transfer"]["name"]))
    assert bus.s2low_duplicates() == 0


def test_pades_signature_before_transmission(bus: Bus) -> None:
    doc = bus.wait(PADES, bus.deposit(PADES, "INT_SIGN_1", signature=True)["id"])
    assert doc["state"] == "archived", doc
    assert states(doc) == ["deposited", "signing", "signed", "transmitting", "transmitted", "acknowledged",
                           "archiving", "archived"]
    signed = next(f for f in doc["files"] if f["role"] == "signed_document")
    info = verify_pdf(bus.file(PADES, doc["id"], signed["name"]))
    assert info.signed and info.intact and "Commune PAdES" in (info.signer_common_name or "")


def test_iparapheur_signature_then_archive(bus: Bus) -> None:
    doc = bus.wait(IPARAPHEUR, bus.deposit(IPARAPHEUR, "INT_IPARAPH_1", signature=True)["id"])
    assert doc["state"] == "archived", doc
    assert "signed" in states(doc)
    roles = {f["role"] for f in doc["files"]}
    assert {"signed_document", "bordereau_signature"} <= roles


def test_parapheur_rejection(bus: Bus) -> None:
    doc = bus.deposit(IPARAPHEUR, "INT_IPARAPH_2", signature=True, objet="Délibération REJET par le maire")
    doc = bus.wait(IPARAPHEUR, doc["id"])
    assert doc["state"] == "rejected", doc
    assert doc["reason"]
    assert "transmitting" not in states(doc)


def test_anomalie_acte_from_the_prefecture(bus: Bus) -> None:
    doc = bus.wait(NO_SIGNATURE, bus.deposit(NO_SIGNATURE, "ERRANO_1")["id"])
    assert doc["state"] == "rejected", doc
    assert doc["replies"]["nature"] == "002"
    assert "ODT-VERIF-01" in doc["replies"]["detail"]
    assert any(f["role"] == "anomalie" for f in doc["files"])
    assert "archiving" not in states(doc)


def test_refusal_by_the_sae(bus: Bus) -> None:
    bus.sims.post("/asalae/_admin/faults", json={"refuse_next": 1}).raise_for_status()
    doc = bus.wait(NO_SIGNATURE, bus.deposit(NO_SIGNATURE, "INT_SAE_KO")["id"])
    assert doc["state"] == "error", doc
    assert "101" in doc["reason"]
    assert doc["replies"]["id_acte"]  # it was acknowledged by the préfecture before


def test_tdt_500_then_recovery_sends_once(bus: Bus) -> None:
    before = bus.sims.get("/s2low/_admin/transmissions").json()
    bus.sims.post("/s2low/_admin/faults", json={"fail_next": 2, "endpoint": "actes_transac_create.php"}).raise_for_status()
    doc = bus.wait(NO_SIGNATURE, bus.deposit(NO_SIGNATURE, "INT_RETRY_1")["id"])
    assert doc["state"] == "archived", doc
    after = bus.sims.get("/s2low/_admin/transmissions").json()
    mine = [t for t in after["transactions"] if t["numero"] == "INT_RETRY_1"]
    assert len(mine) == 1
    assert after["duplicates"] == before["duplicates"] == 0


def test_tdt_down_for_good_ends_in_error_with_the_reason(bus: Bus) -> None:
    bus.sims.post("/s2low/_admin/faults", json={"fail_next": 50, "endpoint": "actes_transac_create.php"}).raise_for_status()
    try:
        doc = bus.wait(NO_SIGNATURE, bus.deposit(NO_SIGNATURE, "INT_DOWN_1")["id"])
    finally:
        bus.sims.delete("/s2low/_admin/faults")
    assert doc["state"] == "error", doc
    assert "500" in doc["reason"] and "after 4 attempts" in doc["reason"]
    assert states(doc) == ["deposited", "transmitting", "error"]
    assert not [t for t in bus.sims.get("/s2low/_admin/transmissions").json()["transactions"]
                if t["numero"] == "INT_DOWN_1"]
