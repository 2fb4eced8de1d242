"""The RH flows through the real pipeline (broker, worker, API, HTTP simulators as processes):
a month of 500 payslips, HR decrees to the préfecture, contracts signed twice; personal data
sealed at rest, readable only with the rh role, and absent from every log."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import func, select

from bus.store.apikeys import create_key
from bus.store.db import Store
from bus.store.models import Collectivite, Document
from connectors.signature.pades import verify_pdf
from connectors.signature.pdf import make_pdf
from schemas.actes.archive import read_acte_archive
from schemas.actes.messages import parse_actes_message
from schemas.xml import validate
from tests.integration.conftest import Bus, start_bus

PAYROLL, PARAPHEUR, TRANSMITS = "214400152", "491011698", "210600235"
PERIODE = "2026-10"
SIZE = 500
UNDELIVERABLE = {17: "INCONNU-17", 230: "INCONNU-230", 411: "FERME-411"}
# Agent names that must never reach a log: rare enough that a hit can only be a leak.
NOM, PRENOM = "Zorglubowski", "Eulalinette"


def agent(i: int) -> tuple[str, str]:
    return f"{NOM}{i:03d}", f"{PRENOM}{i:03d}"


@pytest.fixture(scope="module")
def rh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bus, dict[str, str]]]:
    # A 500-payslip batch queues on one partition (key = SIREN) for minutes on a loaded 2-core
    # machine: FAST's 6 s stage timeout would have the reconciler re-drive every payslip again and
    # again (the production default is 120 s).
    # Simulators answer at once and pending effects are polled twice a second: a batch is CPU-bound.
    bus = start_bus(tmp_path_factory.mktemp("rh"), env={"DEMATBUS_STAGE_TIMEOUT": "300", "DEMATBUS_SIM_DELAY": "0",
                                                        "DEMATBUS_POLL_INTERVAL": "0.5"})
    try:
        yield bus, asyncio.run(_rh_setup(bus))
    finally:
        bus.close()
        bus.stack.stop()


async def _rh_setup(bus: Bus) -> dict[str, str]:
    store = Store(bus.stack.settings.db_url)
    keys: dict[str, str] = {}
    async with store.transaction() as session:
        for siren in (PAYROLL, PARAPHEUR, TRANSMITS):
            keys[siren] = await create_key(session, [siren], ["depositor", "rh"], name=f"SIRH {siren}")
        keys["no_rh"] = await create_key(session, [PAYROLL, PARAPHEUR], ["depositor", "operator"])
        coll = await session.get(Collectivite, TRANSMITS)
        assert coll is not None
        flows = dict(coll.connectors["flows"])
        flows["rh-contrat"] = {"teletransmission": True}
        coll.connectors = {**coll.connectors, "flows": flows}
    await store.close()
    return keys


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def batch_files(size: int, *, skip: set[int] = frozenset(), extra: list[str] = (),  # type: ignore[assignment]
                duplicate: int | None = None) -> list[tuple[str, Any]]:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["matricule", "nom", "prenom", "fichier", "coffre"])
    for i in range(size):
        nom, prenom = agent(i)
        matricule = f"M{duplicate:05d}" if duplicate is not None and i == size - 1 else f"M{i:05d}"
        writer.writerow([matricule, nom, prenom, f"bulletin_{i:05d}.pdf", UNDELIVERABLE.get(i, f"CFN-{i:05d}")])
    files: list[tuple[str, Any]] = [("manifest", ("manifest.csv", out.getvalue().encode(), "text/csv"))]
    for i in range(size):
        if i not in skip:
            nom, prenom = agent(i)
            pdf = make_pdf(f"Bulletin de paie {PERIODE}", [f"{prenom} {nom}", f"Matricule M{i:05d}", "Net à payer"])
            files.append(("payslips", (f"bulletin_{i:05d}.pdf", pdf, "application/pdf")))
    files += [("payslips", (name, make_pdf("Intrus"), "application/pdf")) for name in extra]
    return files


def post_batch(bus: Bus, key: str, files: list[tuple[str, Any]], periode: str = PERIODE) -> httpx.Response:
    return bus.api.post("/api/v1/documents", headers=auth(key), files=files, timeout=120,
                        data={"flow": "rh-bulletin", "siren": PAYROLL, "metadata": json.dumps({"periode": periode})})


def count_payslips(bus: Bus) -> int:
    async def count() -> int:
        store = Store(bus.stack.settings.db_url)
        async with store.sessions() as session:
            n = (await session.execute(select(func.count()).select_from(Document)
                                       .where(Document.flow == "rh-bulletin"))).scalar_one()
        await store.close()
        return int(n)
    return asyncio.run(count())


@pytest.mark.parametrize(("kwargs", "periode", "status", "code"), [
    ({"skip": {3}}, PERIODE, 422, "missing_payslip"),
    ({"duplicate": 2}, PERIODE, 422, "duplicate_matricule"),
    ({"extra": ["bulletin_intrus.pdf"]}, PERIODE, 422, "unlisted_payslip"),
    ({}, "2026-13", 422, "invalid_periode"),
])
def test_manifest_errors_refuse_the_whole_batch(rh: tuple[Bus, dict[str, str]], kwargs: dict[str, Any],
                                                periode: str, status: int, code: str) -> None:
    bus, keys = rh
    before = count_payslips(bus)
    resp = post_batch(bus, keys[PAYROLL], batch_files(6, **kwargs), periode)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code
    assert count_payslips(bus) == before


def deposit_rh(bus: Bus, key: str, siren: str, flow: str, numero: str, objet: str,
               **extra: Any) -> dict[str, Any]:
    meta = {"numero_interne": numero, "date_decision": date.today().isoformat(), "objet": objet,
            "classification": "4.1", **extra}
    resp = bus.api.post("/api/v1/documents", headers=auth(key), data={
        "flow": flow, "siren": siren, "metadata": json.dumps(meta)},
        files=[("document", (f"{numero}.pdf", make_pdf(objet, ["Article 1er"]), "application/pdf"))])
    assert resp.status_code == 201, resp.text
    return resp.json()


def wait(bus: Bus, key: str, doc_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc = bus.api.get(f"/api/v1/documents/{doc_id}", headers=auth(key)).json()
        if doc["state"] in {"archived", "rejected", "error", "undeliverable"} or time.monotonic() > deadline:
            return doc
        time.sleep(0.3)


def states(doc: dict[str, Any]) -> list[str]:
    path: list[str] = []
    for entry in doc["timeline"]:
        if not path or path[-1] != entry["state"]:
            path.append(entry["state"])
    return path


def decree(bus: Bus, key: str, numero: str, objet: str, matricule: str) -> dict[str, Any]:
    return wait(bus, key, deposit_rh(bus, key, PARAPHEUR, "rh-acte", numero, objet, matricule=matricule)["id"])


def test_arrete_signed_sent_as_acte_individuel_acknowledged_and_archived(rh: tuple[Bus, dict[str, str]]) -> None:
    bus, keys = rh
    key = keys[PARAPHEUR]
    doc = decree(bus, key, "RHA_2026_001", "Arrêté portant avancement d'échelon", "M00042")
    assert doc["state"] == "archived", doc
    assert states(doc) == ["deposited", "signing", "signed", "transmitting", "transmitted", "acknowledged",
                           "archiving", "archived"]
    assert doc["metadata"]["nature"] == 3 and doc["metadata"]["matricule"] == "M00042"
    roles = {f["role"]: f for f in doc["files"]}
    archive_name = roles["tdt_archive"]["name"]
    archive = bus.api.get(f"/api/v1/documents/{doc['id']}/files/{archive_name}", headers=auth(key)).content
    parsed = read_acte_archive(archive, name=archive_name, trigramme="DMB", quadrigramme="EACT")
    validate("actes", parsed.acte_xml)
    validate("actes", parsed.enveloppe_xml)
    assert re.search(rb"CodeNatureActe=\"3\"", parsed.acte_xml), parsed.acte_xml[:400]
    assert doc["replies"]["id_acte"].endswith("-RHA_2026_001-AI")
    aracte = bus.api.get(f"/api/v1/documents/{doc['id']}/files/{roles['aracte']['name']}", headers=auth(key)).content
    validate("actes", aracte)
    assert parse_actes_message(aracte).fields["id_acte"] == doc["replies"]["id_acte"]
    assert verify_pdf(bus.api.get(f"/api/v1/documents/{doc['id']}/files/{roles['signed_document']['name']}",
                                  headers=auth(key)).content).intact
    assert bus.s2low_duplicates() == 0


def test_rejected_arrete_ends_rejected_with_the_signers_reason(rh: tuple[Bus, dict[str, str]]) -> None:
    bus, keys = rh
    doc = decree(bus, keys[PARAPHEUR], "RHA_2026_002", "Arrêté de nomination REJET", "M00043")
    assert doc["state"] == "rejected", doc
    assert doc["reason"] == "Refusé par le signataire (simulateur i-Parapheur)"
    assert "transmitting" not in states(doc)


def contract(bus: Bus, key: str, siren: str, numero: str, i: int, objet: str = "Contrat de travail") -> dict[str, Any]:
    nom, prenom = agent(i)
    return wait(bus, key, deposit_rh(bus, key, siren, "rh-contrat", numero, objet, matricule=f"M{i:05d}",
                                     nom=nom, prenom=prenom, agent_email=f"agent{i}@example.fr",
                                     agent_mobile="+33 6 00 00 00 42")["id"])


def test_contract_collects_both_signatures_then_archive(rh: tuple[Bus, dict[str, str]]) -> None:
    bus, keys = rh
    key = keys[PARAPHEUR]
    doc = contract(bus, key, PARAPHEUR, "CTR_2026_001", 7)
    assert doc["state"] == "archived", doc
    assert states(doc) == ["deposited", "signing", "signed", "archiving", "archived"]  # not transmitted
    signed_name = next(f["name"] for f in doc["files"] if f["role"] == "signed_document")
    signed = bus.api.get(f"/api/v1/documents/{doc['id']}/files/{signed_name}", headers=auth(key)).content
    assert len(PdfFileReader(io.BytesIO(signed)).embedded_signatures) == 2
    assert verify_pdf(signed).intact
    assert doc["replies"]["signer"] == "Signataire externe"


def test_contract_refused_by_the_agent(rh: tuple[Bus, dict[str, str]]) -> None:
    bus, keys = rh
    key = keys[PARAPHEUR]
    doc = contract(bus, key, PARAPHEUR, "CTR_2026_002", 8, objet="Contrat de travail REFUS_AGENT")
    assert doc["state"] == "rejected", doc
    assert doc["reason"] == "Refusé par le signataire externe (simulateur i-Parapheur)"


def test_contract_transmitted_when_the_collectivite_says_so(rh: tuple[Bus, dict[str, str]]) -> None:
    bus, keys = rh
    key = keys[TRANSMITS]
    doc = contract(bus, key, TRANSMITS, "CTR_2026_003", 9)
    assert doc["state"] == "archived", doc
    assert states(doc) == ["deposited", "signing", "signed", "transmitting", "transmitted", "acknowledged",
                           "archiving", "archived"]
    assert doc["replies"]["id_acte"].endswith("-CTR_2026_003-CC")


@pytest.mark.timeout(900)
def test_a_month_of_500_payslips(rh: tuple[Bus, dict[str, str]]) -> None:
    bus, keys = rh
    started = time.monotonic()
    resp = post_batch(bus, keys[PAYROLL], batch_files(SIZE))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["size"] == SIZE and len({d["id"] for d in body["documents"]}) == SIZE
    assert [d["matricule"] for d in body["documents"]] == [f"M{i:05d}" for i in range(SIZE)]
    deposited = time.monotonic() - started

    batch = bus.api.get(f"/api/v1/batches/{body['batch_id']}", headers=auth(keys[PAYROLL])).json()
    deadline = time.monotonic() + 600
    while batch["finished"] < SIZE and time.monotonic() < deadline:
        time.sleep(1)
        batch = bus.api.get(f"/api/v1/batches/{body['batch_id']}", headers=auth(keys[PAYROLL])).json()
    elapsed = time.monotonic() - started
    print(f"\n500 payslips: deposit {deposited:.1f}s, all terminal after {elapsed:.1f}s: {batch['states']}")
    assert batch["states"] == {"archived": SIZE - 3, "undeliverable": 3}, batch
    flagged = {f["matricule"]: f for f in batch["to_check"]}
    assert set(flagged) == {f"M{i:05d}" for i in UNDELIVERABLE}
    assert "inconnu" in flagged["M00017"]["reason"].lower() and "M00017" in flagged["M00017"]["reason"]
    assert "clos" in flagged["M00411"]["reason"]
    safe = bus.sims.get("/coffre/_admin/deposits").json()
    assert safe["count"] == SIZE - 2 and safe["duplicates"] == 0  # unknown agents get nothing

    # One payslip, end to end: sealed by the collectivité, delivered with a receipt, archived.
    doc_id = body["documents"][42]["id"]
    doc = bus.api.get(f"/api/v1/documents/{doc_id}", headers=auth(keys[PAYROLL])).json()
    assert states(doc) == ["deposited", "sealing", "sealed", "delivering", "delivered", "archiving", "archived"]
    roles = {f["role"]: f for f in doc["files"]}
    assert {"document", "signed_document", "delivery_receipt", "seda_transfer", "seda_reply"} <= set(roles)
    sealed = bus.api.get(f"/api/v1/documents/{doc_id}/files/{roles['signed_document']['name']}",
                         headers=auth(keys[PAYROLL]))
    assert sealed.status_code == 200
    info = verify_pdf(sealed.content)
    assert info.signed and info.intact and "Commune sans signature" in (info.signer_common_name or "")
    receipt = json.loads(bus.api.get(f"/api/v1/documents/{doc_id}/files/{roles['delivery_receipt']['name']}",
                                     headers=auth(keys[PAYROLL])).content)
    assert receipt["recipient"] == "CFN-00042" and receipt["size"] == len(sealed.content)
    transfer = bus.api.get(f"/api/v1/documents/{doc_id}/files/{roles['seda_transfer']['name']}",
                           headers=auth(keys[PAYROLL])).content
    validate("seda21", transfer)
    assert doc["replies"]["archive_identifier"]

    # At rest the payslip is ciphertext; the API gives the PDF back only to a key with the rh role.
    original = bus.api.get(f"/api/v1/documents/{doc_id}/files/bulletin_00042.pdf", headers=auth(keys[PAYROLL]))
    assert original.content.startswith(b"%PDF-")
    on_disk = (bus.stack.data_dir / "blobs" / roles["document"]["sha256"][:2] / roles["document"]["sha256"][2:4]
               / roles["document"]["sha256"]).read_bytes()
    assert not on_disk.startswith(b"%PDF") and original.content not in on_disk
    assert NOM.encode() not in on_disk
    forbidden = bus.api.get(f"/api/v1/documents/{doc_id}/files/bulletin_00042.pdf", headers=auth(keys["no_rh"]))
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "rh_role_required"
    redacted = bus.api.get(f"/api/v1/documents/{doc_id}", headers=auth(keys["no_rh"])).json()
    assert redacted["metadata"]["nom"] == "***" and redacted["metadata"]["matricule"] == "M00042"

    # The same month again is refused: a payslip is delivered once.
    again = post_batch(bus, keys[PAYROLL], batch_files(3))
    assert again.status_code == 409 and again.json()["error"]["code"] == "duplicate_payslip"


def test_no_agent_name_in_any_log(rh: tuple[Bus, dict[str, str]]) -> None:
    bus, _ = rh
    logs = sorted(Path(bus.stack.data_dir / "logs").glob("*.log"))
    assert {p.name for p in logs} >= {"api.log", "worker.log", "simulators.log"}
    assert sum(p.stat().st_size for p in logs) > 0
    for path in logs:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert NOM not in text and PRENOM not in text, f"an agent name leaked into {path.name}"
