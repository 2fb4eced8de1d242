"""The courriers' bus side over the real S²low simulator (HTTP) and a real store, without Kafka:
actes transmitted and acknowledged at the simulator, recorded as the stage runner records them
(document, done tdt effect, `replies.tdt_transaction_id`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest

from bus.blobs import BlobStore
from bus.collectivites import add_collectivite
from bus.config import Settings
from bus.courriers.collect import Collector
from bus.courriers.sender import ReplyRunner
from bus.deposits import Depositor
from bus.stages.runner import RunnerSettings
from bus.store import journal
from bus.store.apikeys import create_key
from bus.store.db import Store
from bus.store.models import Document, Effect
from connectors.registry import ConnectorRegistry
from connectors.tdt.s2low import S2lowConnector
from tests.connectors.test_tdt_s2low import job
from tests.sim_servers import LOGIN, PASSWORD, SIREN, start_s2low  # noqa: F401  (pytest fixture)

OTHER_SIREN = "214400152"
FAST = RunnerSettings(max_attempts=4, retry_backoff=0.01, retry_backoff_max=0.05, poll_interval=0.01,
                      poll_interval_max=0.05, lease=0.2)


@dataclass
class World:
    store: Store
    blobs: BlobStore
    server: Any
    tdt: S2lowConnector
    registry: ConnectorRegistry
    collector: Collector
    runner: ReplyRunner
    depositor: Depositor
    keys: dict[str, str]

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, self.server.base_url + path, **kwargs)
        response.raise_for_status()
        return response.json()

    def calls(self) -> dict[str, int]:
        return self.admin("GET", "/_admin/stats")["calls"]  # type: ignore[no-any-return]

    def advance(self, seconds: float) -> None:
        self.admin("POST", "/_admin/clock/advance", json={"seconds": seconds})

    def send(self, acte_transaction: str, code: str) -> str:
        return str(self.admin("POST", "/_admin/prefecture-messages",
                              json={"transaction": int(acte_transaction), "type": code})["id"])

    async def acte(self, numero: str, state: str = "archived", flow: str = "actes") -> tuple[str, str]:
        """An acte transmitted and acknowledged at S²low, as the bus records it: (document id, transaction)."""
        remote_id, _ = await self.tdt.submit(job(numero))
        self.advance(3)
        status = await self.tdt.poll(job(numero), remote_id)
        assert status.status == "done", status
        doc_id = str(uuid.uuid4())
        async with self.store.transaction() as session:
            session.add(Document(id=doc_id, flow=flow, siren=SIREN, state=state, stage="sae", business_key=numero,
                                 meta={"nature": 1, "numero_interne": numero, "objet": "Budget",
                                       "date_decision": date(2024, 4, 30).isoformat(), "classification": "7.1"},
                                 replies={k: v for k, v in status.fields.items() if v is not None}))
            await session.flush()
            session.add(Effect(document_id=doc_id, stage="tdt", generation=1, reference=f"ref-{doc_id}",
                               status="done", remote_id=remote_id, attempts=1))
            await journal.append(session, doc_id, "deposited", "deposited", {})
            await journal.append(session, doc_id, "stage.done", state, {"stage": "tdt"})
        return doc_id, remote_id


@pytest.fixture
async def world(store: Store, settings: Settings, start_s2low) -> AsyncIterator[World]:  # noqa: F811
    server = start_s2low(validation_delay=1, transmit_delay=1, ack_delay=1)
    tdt = {"kind": "s2low", "url": server.base_url, "login": LOGIN, "password": PASSWORD}
    async with store.transaction() as session:
        await add_collectivite(session, siren=SIREN, name="Commune A", departement="006", arrondissement="2",
                               connectors={"tdt": tdt})
        await add_collectivite(session, siren=OTHER_SIREN, name="Commune B", departement="044", arrondissement="1",
                               connectors={})
        keys = {
            "depositor": await create_key(session, [SIREN], ["depositor"], name="Secrétariat A"),
            "operator": await create_key(session, [SIREN], ["operator"], name="Opératrice A"),
            "reporter": await create_key(session, [SIREN], ["reporter"]),
            "other": await create_key(session, [OTHER_SIREN], ["depositor", "operator"]),
            "rh": await create_key(session, [SIREN], ["depositor", "rh"], name="Service RH"),
        }
    blobs = BlobStore(settings.blob_dir, settings.keys_dir)
    registry = ConnectorRegistry("http://127.0.0.1:9", timeout=3)
    connector = S2lowConnector(server.base_url, LOGIN, PASSWORD, timeout=10)
    made = World(store, blobs, server, connector, registry, Collector(store, blobs, registry, interval=0.0),
                 ReplyRunner(store, blobs, registry, FAST), Depositor(store, blobs, settings), keys)
    yield made
    await connector.aclose()
    await registry.aclose()
