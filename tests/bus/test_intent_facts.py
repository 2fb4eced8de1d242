"""The effects ledger keeps what a connector records with the intent (connectors.base.IntentRecorder):
written before the first call, handed back unchanged to every later lookup and submit, and an
earlier generation's facts to the lookup of that generation's effect."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from bus.blobs import BlobStore
from bus.stages.runner import RunnerSettings, StageRunner
from bus.store.models import Document, Effect
from connectors.base import ConnectorError, OutputFile, StageJob
from schemas.events import Command
from tests.conftest import SIREN_A


class RecordingConnector:
    """A TdT that loses the first answer; its facts change at every call, as a clock would."""

    def __init__(self) -> None:
        self.facts_made = 0
        self.lookups: list[tuple[str, dict[str, Any]]] = []
        self.submits: list[dict[str, Any]] = []

    async def intent_facts(self, job: StageJob) -> dict[str, Any]:
        self.facts_made += 1
        return {"number": job.metadata["numero_interne"], "call": self.facts_made}

    async def lookup(self, job: StageJob) -> str | None:
        self.lookups.append((job.reference, dict(job.intent)))
        return None

    async def submit(self, job: StageJob) -> tuple[str, list[OutputFile]]:
        self.submits.append(dict(job.intent))
        if len(self.submits) == 1:
            raise ConnectorError("timeout: did it get through?")
        return "42", []


class Registry:
    def __init__(self, connector: RecordingConnector) -> None:
        self.connector = connector

    def get(self, key: str, cfg: dict[str, Any]) -> RecordingConnector:
        return self.connector


async def test_facts_recorded_once_and_handed_back(settings, store, keys) -> None:  # type: ignore[no-untyped-def]
    connector = RecordingConnector()
    runner = StageRunner(store, BlobStore(settings.blob_dir), Registry(connector),  # type: ignore[arg-type]
                         RunnerSettings(retry_backoff=0, lease=0))
    async with store.transaction() as session:
        session.add(Document(id="doc1", flow="actes", siren=SIREN_A, state="transmitting", stage="tdt",
                             meta={"numero_interne": "NUM_1"}, generation=1))
    command = Command(document_id="doc1", siren=SIREN_A, flow="actes", stage="tdt", kind="tdt", generation=1)
    await runner.run_command(command)  # the answer is lost: retry
    await runner.run_command(command)
    assert connector.facts_made == 1
    assert connector.submits == [{"number": "NUM_1", "call": 1}] * 2
    assert connector.lookups == [("dmb-doc1-tdt-g1", {"number": "NUM_1", "call": 1})]
    async with store.sessions() as session:
        effect = (await session.execute(select(Effect))).scalar_one()
    assert effect.intent == {"number": "NUM_1", "call": 1} and effect.status == "submitted"

    # A replay under another numéro: the earlier generation's effect is looked up with its own facts.
    async with store.transaction() as session:
        await session.execute(update(Effect).values(status="failed"))
        await session.execute(update(Document).values(generation=2, state="transmitting",
                                                      meta={"numero_interne": "NUM_2"}))
    connector.lookups.clear()
    await runner.run_command(command.model_copy(update={"generation": 2}))
    assert connector.lookups == [("dmb-doc1-tdt-g1", {"number": "NUM_1", "call": 1})]
    assert connector.submits[-1] == {"number": "NUM_2", "call": 2}
