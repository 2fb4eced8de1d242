"""Operators and managers on the real pipeline: live counters agree with the journal's report,
webhooks get every state change (signed, retried past a failing receiver), an acknowledged acte is
cancelled (6-1 Annulation → ARAnnulation → `cancelled`)."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import random
import socket
import tarfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from connectors.signature.pdf import make_pdf
from schemas.actes.messages import parse_actes_message
from schemas.xml import validate
from tests.integration.conftest import Bus, start_bus
from tests.integration.test_helios_pipeline import (
    PES_SIREN,
    deposit_pes,
    unsigned_sample,
)
from tests.webhook_receiver import Receiver

SIRENS = ["214400152", "210600235", "491011698"]
OUTCOMES = ("deposited", "signed", "transmitted", "acknowledged", "rejected", "archived", "delivered", "error")
HOOK_SIREN = "214400152"
SECRET = "a-webhook-secret-of-some-length"
FAILING_CALLS = 3
DEPOSITED_NATURES: Counter[tuple[str, int]] = Counter()  # (siren, nature) of every acte this module deposits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bus, int]]:
    port = free_port()
    bus = start_bus(tmp_path_factory.mktemp("ops"), env={
        "DEMATBUS_WORKER_METRICS_PORT": str(port), "DEMATBUS_WEBHOOK_RETRY_BACKOFF": "0.3"})
    try:
        yield bus, port
    finally:
        bus.close()
        bus.stack.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver(FAILING_CALLS)
    yield r
    r.close()


def op(bus: Bus) -> dict[str, str]:
    return {"Authorization": f"Bearer {bus.keys['operator']}"}


def test_annulation_of_an_acknowledged_acte(ops: tuple[Bus, int]) -> None:
    bus, _ = ops
    siren = SIRENS[0]
    doc = bus.wait(siren, bus.deposit(siren, "ANNUL_1")["id"])
    assert doc["state"] == "archived"
    rejected = bus.wait(siren, bus.deposit(siren, "ERRANO_ANNUL")["id"])
    DEPOSITED_NATURES[(siren, 1)] += 2  # Bus.deposit sends délibérations
    assert rejected["state"] == "rejected"

    refused = bus.api.post(f"/api/v1/documents/{rejected['id']}/annulation", headers=op(bus))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_acknowledged"
    depositor = bus.api.post(f"/api/v1/documents/{doc['id']}/annulation",
                             headers={"Authorization": f"Bearer {bus.keys[siren]}"})
    assert depositor.status_code == 403 and depositor.json()["error"]["code"] == "forbidden_role"

    asked = bus.api.post(f"/api/v1/documents/{doc['id']}/annulation", headers=op(bus))
    assert asked.status_code == 202, asked.text
    twice = bus.api.post(f"/api/v1/documents/{doc['id']}/annulation", headers=op(bus))
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "annulation_pending"

    done = bus.wait(siren, doc["id"], {"cancelled"}, timeout=60)
    events = [e["event"] for e in done["timeline"]]
    assert events[-3:] == ["annulation.requested", "annulation.submitted", "annulation.acknowledged"]
    requested = next(e for e in done["timeline"] if e["event"] == "annulation.requested")
    assert requested["detail"]["by"] == "Opératrice Camille"
    roles = {f["role"]: f["name"] for f in done["files"]}
    ar = parse_actes_message(bus.file(siren, doc["id"], roles["ar_annulation"]), check_xsd=True)
    assert ar.root == "ARAnnulation" and ar.fields["id_acte"] == done["replies"]["id_acte"]

    # The 6-1 that went to the préfecture: enveloppe + Annulation, both valid against the ACTES XSD.
    with tarfile.open(fileobj=io.BytesIO(bus.file(siren, doc["id"], roles["annulation_archive"]))) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    message_name = next(n for n in members if n.endswith("-6-1_0.xml"))
    for data in members.values():
        validate("actes", data)
    annulation = parse_actes_message(members[message_name], check_xsd=True)
    assert annulation.root == "Annulation" and annulation.fields["id_acte"] == done["replies"]["id_acte"]

    transactions = bus.sims.get("/s2low/_admin/transmissions").json()
    acte = next(t for t in transactions["transactions"] if t["numero"] == "ANNUL_1" and t["type"] == 1)
    cancels = [t for t in transactions["transactions"] if t["type"] == 6 and t["related_transaction_id"] == acte["id"]]
    assert acte["status"] == 0 and len(cancels) == 1 and transactions["duplicates"] == 0
    again = bus.api.post(f"/api/v1/documents/{doc['id']}/annulation", headers=op(bus))
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_cancelled"


def test_random_workload_live_counters_equal_the_report_and_webhooks_get_every_change(
        ops: tuple[Bus, int], receiver: Receiver) -> None:
    bus, metrics_port = ops
    hook = bus.api.post("/api/v1/webhooks", headers=op(bus),
                        json={"siren": HOOK_SIREN, "url": receiver.url, "secret": SECRET})
    assert hook.status_code == 201, hook.text
    bad = bus.api.post("/api/v1/webhooks", headers=op(bus), json={"siren": HOOK_SIREN, "url": "ftp://x"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_webhook_url"

    rng = random.Random(20231)
    ids: list[tuple[str, str]] = []
    for i in range(24):
        siren = rng.choice(SIRENS)
        nature = rng.choice([1, 2, 3, 6])
        numero = ("ERRANO" if rng.random() < 0.25 else "LIVE") + f"_{i:03d}"
        meta = {"nature": nature, "numero_interne": numero, "date_decision": date.today().isoformat(),
                "objet": f"Acte {i}", "classification": "1.1", "signature": rng.random() < 0.3}
        resp = bus.api.post("/api/v1/documents", headers={"Authorization": f"Bearer {bus.keys[siren]}"},
                            data={"flow": "actes", "siren": siren, "metadata": json.dumps(meta)},
                            files=[("document", ("acte.pdf", make_pdf(f"Acte {i}"), "application/pdf"))])
        assert resp.status_code == 201, resp.text
        ids.append((siren, resp.json()["id"]))
        DEPOSITED_NATURES[(siren, nature)] += 1
    pes = deposit_pes(bus, unsigned_sample("LIVE_PES_1"))
    ids.append((PES_SIREN, pes["id"]))
    docs = {doc_id: bus.wait(siren, doc_id, timeout=120) for siren, doc_id in ids}
    # errors too: a signature asked where no signature connector is configured
    assert {d["state"] for d in docs.values()} <= {"archived", "rejected", "error"}

    year = datetime.now(ZoneInfo("Europe/Paris")).year
    report = bus.api.get("/api/v1/reports/volumes", params={"year": year}, headers=op(bus)).json()
    expected = {(t["siren"], t["flow"]): {s: t[s] for s in OUTCOMES} for t in report["totals"]["collectivites"]}
    assert sum(t["deposited"] for t in expected.values()) >= len(ids)

    def live() -> dict[tuple[str, str], dict[str, int]]:
        got = bus.api.get("/api/v1/counters", headers=op(bus)).json()
        return {(t["siren"], t["flow"]): {s: t["counts"].get(s, 0) for s in OUTCOMES}
                for t in got["totals"]["collectivites"]}

    deadline = time.monotonic() + 30
    while live() != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    assert live() == expected

    counters = bus.api.get("/api/v1/counters", headers=op(bus)).json()
    per = {(t["siren"], t["flow"]): t["counts"] for t in counters["totals"]["collectivites"]}
    abbr = {1: "DE", 2: "AR", 3: "AI", 6: "AU"}
    for (siren, nature), n in DEPOSITED_NATURES.items():
        assert per[(siren, "actes")][f"actes_nature_{abbr[nature]}"] == n
    bordereaux = docs[pes["id"]]["metadata"]["bordereaux"]
    pes_counts = per[(PES_SIREN, "helios")]
    assert pes_counts["pes_bordereaux"] == len(bordereaux) > 0
    assert pes_counts.get("pes_mandats", 0) == sum(b["pieces"] for b in bordereaux if b["domain"] == "depense")
    assert pes_counts.get("pes_titres", 0) == sum(b["pieces"] for b in bordereaux if b["domain"] == "recette")
    assert pes_counts.get("pes_pj", 0) == docs[pes["id"]]["metadata"]["pj_count"]
    assert pes_counts.get("pes_mandats", 0) + pes_counts.get("pes_titres", 0) > 0
    today = datetime.now(ZoneInfo("Europe/Paris")).date().isoformat()  # counters count French days
    one_day = bus.api.get("/api/v1/counters", headers=op(bus), params={"siren": PES_SIREN, "flow": "helios",
                                                                       "from": today, "to": today}).json()
    assert [d["counts"]["deposited"] for d in one_day["days"]] == [1]

    # Prometheus, worker and API: aggregate labels only, summing to the same figures.
    deposited = sum(c["deposited"] for (_, flow), c in expected.items() if flow == "actes")
    for text in (httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text, bus.api.get("/metrics").text):
        assert f'dematbus_live_documents{{flow="actes",metric="deposited"}} {float(deposited)}' in text
        assert not any(s in text for s in [*SIRENS, PES_SIREN])

    # Webhooks: every state change of HOOK_SIREN's new documents, signed, each event id delivered.
    mine = [doc_id for siren, doc_id in ids if siren == HOOK_SIREN]
    wanted = {f"{doc_id}:{e['seq']}" for doc_id in mine for e in docs[doc_id]["timeline"]
              if e["event"] in ("deposited", "stage.started", "stage.submitted", "stage.done", "stage.rejected")}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        delivered = {h["x-dematbus-event-id"] for h, _ in receiver.calls[FAILING_CALLS:]}
        if wanted <= delivered:
            break
        time.sleep(0.5)
    assert wanted <= delivered
    assert len(receiver.calls) >= len(wanted) + FAILING_CALLS  # the failed calls were retried
    for headers, body in receiver.calls:
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-dematbus-signature"] == f"sha256={digest}"
        event = json.loads(body)
        assert event["event_id"] == headers["x-dematbus-event-id"] and event["siren"] == HOOK_SIREN
    states = {json.loads(b)["state"] for _, b in receiver.calls}
    assert {"deposited", "transmitting", "transmitted", "acknowledged", "archived"} <= states
    hooks = bus.api.get("/api/v1/webhooks", headers=op(bus)).json()["webhooks"]
    listing = bus.api.get(f"/api/v1/webhooks/{hooks[0]['id']}/deliveries", headers=op(bus)).json()["deliveries"]
    assert any(d["attempts"] > 1 and d["status"] == "delivered" for d in listing)
