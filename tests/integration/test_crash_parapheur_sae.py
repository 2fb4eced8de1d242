"""Invariants 1 and 2 when the worker is SIGKILLed during slow submissions to the parapheur and to
the SAE, against simulators that behave as the real products do.

i-Parapheur v5 refuses no second folder of a name (createFolder documents 201, 401, 403, 404, 406:
libriciel/iparapheur-v5-api-php lib/Api/FolderApi.php) and lists folders per desk and state,
filtered by type and subtype only (listFoldersRequest, same file). A folder the dead worker was
creating lands as a DRAFT on our desk; the restarted worker finds it there by name and starts it.
A creation that outlives the client's timeout cannot be settled that way: it goes to an operator
with its facts, and the replay takes the folder once it has landed.

As@lae answers HTTP 500 "Transfert en cours de traitement" while a reply is pending
(PatPercot/cd56-connecteur-asalae src/main/java/fr/morbihan/patrickpercot/cd56_connecteur_asalae/
AsalaeConnector.java); a transfer the dead worker had sent is found by its Acknowledgement.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select

from bus.store.db import Store
from bus.store.models import Effect
from tests.integration.conftest import TERMINAL, Bus, until

IPARAPHEUR = "491011698"
NO_SIGNATURE = "214400152"
DOCS = 8


def recorded(bus: Bus, stage: str, doc_ids: list[str]) -> dict[str, list[Effect]]:
    """The effects ledger's rows of `stage` for these documents."""
    async def read() -> dict[str, list[Effect]]:
        store = Store(bus.stack.settings.db_url)
        try:
            async with store.sessions() as session:
                rows = (await session.execute(
                    select(Effect).where(Effect.stage == stage, Effect.document_id.in_(doc_ids))
                    .order_by(Effect.generation))).scalars()
                out: dict[str, list[Effect]] = {}
                for effect in rows:
                    out.setdefault(effect.document_id, []).append(effect)
                return out
        finally:
            await store.close()

    return asyncio.run(read())


def parapheur_folders(bus: Bus) -> dict[str, Any]:
    return bus.sims.get("/iparapheur/_admin/folders").json()


def test_worker_killed_while_creating_parapheur_folders(bus: Bus) -> None:
    # Each creation takes 2 s on the server (less than the 3 s client timeout): the kill lands
    # while folders are being made, whose ids the dead worker never gets.
    bus.sims.post("/iparapheur/_admin/faults", json={"create_delay": 2.0}).raise_for_status()
    ids = [bus.deposit(IPARAPHEUR, f"CRASHIP_{i:02d}", signature=True)["id"] for i in range(DOCS)]
    creating = until(lambda: parapheur_folders(bus)["creating"], "creations under way", interval=0.05)
    time.sleep(0.5)
    bus.stack.kill("worker")
    unknown_to_the_bus = parapheur_folders(bus)["creating"]
    assert creating and unknown_to_the_bus, "the kill came too late to prove anything"

    bus.sims.post("/iparapheur/_admin/faults", json={"create_delay": 0}).raise_for_status()
    until(lambda: parapheur_folders(bus)["creating"] == 0, "the orphaned creations to land")
    ledger = recorded(bus, "signature", ids)
    names = {f"dmb-{i}-signature-g1" for i in ids}
    landed = [f for f in parapheur_folders(bus)["folders"] if f["name"] in names]
    known = [e for effects in ledger.values() for e in effects if e.remote_id]
    assert len(landed) > len(known), "every folder was recorded before the kill: nothing to recover"

    bus.stack.start_worker()
    docs = [bus.wait(IPARAPHEUR, i, timeout=120) for i in ids]
    assert [d["state"] for d in docs] == ["archived"] * DOCS, [(d["id"], d["state"], d["reason"]) for d in docs]
    after = parapheur_folders(bus)
    ours = [f for f in after["folders"] if f["name"] in names]
    assert sorted(f["name"] for f in ours) == sorted(names)  # one folder per document, no namesake
    assert after["duplicates"] == 0
    assert all(f["events"][:3] == ["CREATE", "START", "SIGNATURE"] for f in ours)
    ledger = recorded(bus, "signature", ids)
    by_name = {f["name"]: f["id"] for f in ours}
    assert {i: [e.remote_id for e in ledger[i]] for i in ids} == {i: [by_name[f"dmb-{i}-signature-g1"]] for i in ids}


def test_creations_outliving_the_timeout_go_to_an_operator_then_replay_takes_their_folder(bus: Bus) -> None:
    # 4.5 s on the server, 3 s client timeout: the answer is lost and nothing is listed yet.
    bus.sims.post("/iparapheur/_admin/faults", json={"create_delay": 4.5}).raise_for_status()
    ids = [bus.deposit(IPARAPHEUR, f"LENTIP_{i:02d}", signature=True)["id"] for i in range(2)]
    docs = [bus.wait(IPARAPHEUR, i, timeout=60) for i in ids]
    bus.sims.post("/iparapheur/_admin/faults", json={"create_delay": 0}).raise_for_status()
    for doc in docs:
        name = f"dmb-{doc['id']}-signature-g1"
        assert doc["state"] == "error", doc
        assert name in doc["reason"] and "no draft of that name is listed" in doc["reason"], doc["reason"]
        assert "Not sent again" in doc["reason"] and "Secrétariat général" in doc["reason"]
    names = {f"dmb-{i}-signature-g1" for i in ids}
    until(lambda: {f["name"] for f in parapheur_folders(bus)["folders"]} >= names, "the slow creations to land")

    operator = {"Authorization": f"Bearer {bus.keys['operator']}"}
    for doc_id in ids:
        assert bus.api.post(f"/api/v1/documents/{doc_id}/replay", headers=operator).status_code == 202
    docs = [bus.wait(IPARAPHEUR, i, states=TERMINAL - {"error"}, timeout=120) for i in ids]
    assert [d["state"] for d in docs] == ["archived"] * 2, docs
    folders = parapheur_folders(bus)
    ours = [f for f in folders["folders"] if f["name"].startswith(tuple(f"dmb-{i}-" for i in ids))]
    assert sorted(f["name"] for f in ours) == sorted(names)  # the replay took the g1 folder, made none
    assert folders["duplicates"] == 0


def test_worker_killed_while_posting_transfers_to_the_sae(bus: Bus) -> None:
    # Every POST /sedaMessages is received at once, then answered 1.5 s later: the kill loses the
    # answers of transfers As@lae already has.
    before = bus.sims.get("/asalae/_admin/transfers").json()
    bus.sims.post("/asalae/_admin/faults", json={"slow_seconds": 1.5, "endpoint": "sedaMessages"}).raise_for_status()
    ids = [bus.deposit(NO_SIGNATURE, f"CRASHSAE_{i:02d}")["id"] for i in range(DOCS)]
    ours = {f"dmb-{i}-sae-g1" for i in ids}

    def received() -> int:
        transfers = bus.sims.get("/asalae/_admin/transfers").json()["transfers"]
        return sum(t["message_identifier"] in ours for t in transfers)

    until(received, "a first transfer", timeout=90)
    time.sleep(0.5)
    bus.stack.kill("worker")
    at_kill = received()
    known = sum(1 for effects in recorded(bus, "sae", ids).values() for e in effects if e.remote_id)
    assert at_kill > known, "every transfer was recorded before the kill: nothing to recover"

    bus.sims.delete("/asalae/_admin/faults").raise_for_status()
    bus.stack.start_worker()
    docs = [bus.wait(NO_SIGNATURE, i, timeout=120) for i in ids]
    assert [d["state"] for d in docs] == ["archived"] * DOCS, [(d["id"], d["state"], d["reason"]) for d in docs]
    assert len({d["replies"]["archive_identifier"] for d in docs}) == DOCS
    after = bus.sims.get("/asalae/_admin/transfers").json()
    assert after["duplicates"] == before["duplicates"] == 0
    assert sorted(t["message_identifier"] for t in after["transfers"] if t["message_identifier"] in ours) == sorted(ours)
