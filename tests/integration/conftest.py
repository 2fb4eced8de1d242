"""The real pipeline: spawned Tansu broker, simulators, API and worker as separate processes."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bus.collectivites import add_collectivite, simulator_connectors
from bus.demo import register_at_simulators
from bus.flows.definition import load_flow
from bus.stack import Stack
from bus.store.apikeys import create_key
from bus.store.db import Store
from bus.store.models import Effect, utcnow
from connectors.signature.certificates import make_test_certificate
from connectors.signature.pdf import make_pdf
from tests.databases import shared_database

TERMINAL = set(load_flow("actes").terminal)  # the Bus below deposits actes
FAST = {
    "DEMATBUS_POLL_INTERVAL": "0.2",
    "DEMATBUS_RETRY_BACKOFF": "0.3",
    "DEMATBUS_STAGE_TIMEOUT": "6",
    "DEMATBUS_RECONCILE_INTERVAL": "2",
    "DEMATBUS_CONNECTOR_TIMEOUT": "3",
    "DEMATBUS_MAX_ATTEMPTS": "4",
    "DEMATBUS_SIM_DELAY": "0.3",
}
COLLECTIVITES = {
    # siren: (name, département, arrondissement, nature, signature)
    "214400152": ("Commune sans signature", "044", "1", "31", None),
    "210600235": ("Commune PAdES", "006", "2", "31", "pades"),
    "491011698": ("CC i-Parapheur", "034", "3", "44", "iparapheur"),
    "755800646": ("Collectivité PES", "075", "1", "31", "pades"),  # IdColl of the real PES sample
}


def until(probe: Callable[[], Any], what: str, timeout: float = 90, interval: float = 0.3) -> Any:
    """Wait for `probe` to return something true, and return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


class Bus:
    """A running stack plus helpers to deposit and follow documents."""

    def __init__(self, stack: Stack, keys: dict[str, str]) -> None:
        self.stack = stack
        self.keys = keys
        self.api = httpx.Client(base_url=stack.api_url, timeout=30)
        self.sims = httpx.Client(base_url=stack.simulators_url, timeout=30)

    def deposit(self, siren: str, numero: str, *, signature: bool = False, objet: str = "Délibération de test",
                annexes: int = 0, classification: str = "1.1") -> dict[str, Any]:
        meta = {"nature": 1, "numero_interne": numero, "date_decision": date.today().isoformat(),
                "objet": objet, "classification": classification, "signature": signature}
        files = [("document", ("deliberation.pdf", make_pdf(objet, [numero]), "application/pdf"))]
        files += [("annexes", (f"annexe{i}.pdf", make_pdf(f"Annexe {i}"), "application/pdf")) for i in range(annexes)]
        resp = self.api.post("/api/v1/documents", headers={"Authorization": f"Bearer {self.keys[siren]}"},
                             data={"flow": "actes", "siren": siren, "metadata": json.dumps(meta)}, files=files)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def get(self, siren: str, doc_id: str) -> dict[str, Any]:
        resp = self.api.get(f"/api/v1/documents/{doc_id}", headers={"Authorization": f"Bearer {self.keys[siren]}"})
        assert resp.status_code == 200, resp.text
        return resp.json()

    def file(self, siren: str, doc_id: str, name: str) -> bytes:
        resp = self.api.get(f"/api/v1/documents/{doc_id}/files/{name}",
                            headers={"Authorization": f"Bearer {self.keys[siren]}"})
        assert resp.status_code == 200, resp.text
        return resp.content

    def wait(self, siren: str, doc_id: str, states: set[str] = TERMINAL, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        doc = self.get(siren, doc_id)
        while doc["state"] not in states and time.monotonic() < deadline:
            time.sleep(0.2)
            doc = self.get(siren, doc_id)
        assert doc["state"] in states, f"{doc_id} stuck in {doc['state']}: {doc['timeline']}\n{self.diagnose(doc_id)}"
        return doc

    def diagnose(self, doc_id: str) -> str:
        """What a stuck document's effects ledger and the processes' logs say about it."""
        async def ledger() -> list[dict[str, Any]]:
            store = Store(self.stack.settings.db_url)
            try:
                async with store.sessions() as session:
                    rows = (await session.execute(select(Effect).where(Effect.document_id == doc_id))).scalars()
                    return [{c: getattr(e, c) for c in ("stage", "generation", "status", "attempts", "remote_id",
                                                         "next_at", "last_error", "updated_at")} for e in rows]
            finally:
                await store.close()

        lines = [f"now={utcnow()} effects={asyncio.run(ledger())}"]
        for log in sorted((self.stack.data_dir / "logs").glob("*.log")):
            hits = [line for line in log.read_text(errors="replace").splitlines() if doc_id in line]
            lines += [f"{log.name}: {line}" for line in hits[-10:]]
        return "\n".join(lines)

    def s2low_duplicates(self) -> int:
        return self.sims.get("/s2low/_admin/transmissions").json()["duplicates"]

    def close(self) -> None:
        self.api.close()
        self.sims.close()


async def _setup(stack: Stack) -> dict[str, str]:
    store = Store(stack.settings.db_url)
    await store.migrate()
    keys = {}
    async with store.transaction() as session:
        for siren, (name, dep, arr, nature, signature) in COLLECTIVITES.items():
            cert_dir = stack.data_dir / "certs" / siren
            cert_dir.mkdir(parents=True, exist_ok=True)
            cert, key = make_test_certificate(f"Maire {name}", name, cert_dir)
            cert.rename(cert_dir / "cert.pem")
            key.rename(cert_dir / "key.pem")
            await add_collectivite(session, siren=siren, name=name, departement=dep, arrondissement=arr,
                                   nature_code=nature, connectors=simulator_connectors(siren, signature, cert_dir))
            keys[siren] = await create_key(session, [siren], ["depositor"])
        keys["operator"] = await create_key(session, ["*"], ["operator"], name="Opératrice Camille")
    await store.close()
    return keys


def start_bus(data_dir: Path, env: dict[str, str] | None = None) -> Bus:
    """The whole stack on its own database: the test's own when one is set in the environment
    (function-scoped callers on the PostgreSQL pass), else a fresh shared one (module-scoped)."""
    database = os.environ.get("DEMATBUS_DATABASE_URL") or shared_database()
    stack = Stack(data_dir, env={**FAST, **({"DEMATBUS_DATABASE_URL": database} if database else {}), **(env or {})})
    stack.start_broker()
    keys = asyncio.run(_setup(stack))
    stack.start_simulators()
    stack.start_api()
    stack.start_worker()
    stack.wait_healthy()
    register_at_simulators(stack.simulators_url, [(s, c[0], c[1], c[2], c[3]) for s, c in COLLECTIVITES.items()])
    return Bus(stack, keys)


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    bus = start_bus(tmp_path_factory.mktemp("bus"))
    try:
        yield bus
    finally:
        bus.close()
        bus.stack.stop()
