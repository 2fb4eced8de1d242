"""A runner that finishes a stage applies its outcome itself: the ledger's outcome, the engine's
move (journal, announcement) and the next stage's command commit in one transaction, with no
outcome event through Kafka; a concurrent move of the document makes it all start again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from bus.blobs import BlobStore
from bus.engine import Engine
from bus.stages.runner import RunnerSettings, StageRunner
from bus.store.models import Document, Effect, JournalEntry, OutboxEvent, utcnow
from bus.topics import EVENTS, MOVES, command_topic
from connectors.base import StageResult
from schemas.events import Event
from tests.conftest import SIREN_A


class DoneConnector:
    async def poll(self, job: Any, remote_id: str) -> StageResult:
        return StageResult("done", fields={"id_acte": "006-210600235-X"})


class Registry:
    def get(self, key: str, cfg: dict[str, Any]) -> DoneConnector:
        return DoneConnector()


class ClashingOnce(Engine):
    """As if another process had moved the document just before the first commit."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.calls = 0

    async def apply_in(self, session: Any, event: Event) -> bool:
        self.calls += 1
        moved = await super().apply_in(session, event)
        if self.calls == 1:
            raise StaleDataError("document changed concurrently")
        return moved


async def _transmitted(store: Any) -> None:
    async with store.transaction() as session:
        session.add(Document(id="doc1", flow="actes", siren=SIREN_A, state="transmitted", stage="tdt", meta={}))
        await session.flush()
        session.add(Effect(document_id="doc1", stage="tdt", generation=1, reference="ref-1", status="submitted",
                           remote_id="42", next_at=utcnow()))


async def _outcome(store: Any) -> tuple[Document, Effect, list[tuple[str, str]], list[str]]:
    async with store.sessions() as session:
        doc = await session.get(Document, "doc1")
        effect = (await session.execute(select(Effect).where(Effect.stage == "tdt"))).scalar_one()
        entries = [(e.event, e.state) for e in (await session.execute(
            select(JournalEntry).where(JournalEntry.document_id == "doc1").order_by(JournalEntry.seq))).scalars()]
        topics = [o.topic for o in (await session.execute(select(OutboxEvent).order_by(OutboxEvent.id))).scalars()]
    assert doc is not None
    return doc, effect, entries, topics


async def test_the_runner_moves_the_document_in_the_finishing_transaction(settings, store, keys) -> None:  # type: ignore[no-untyped-def]
    await _transmitted(store)
    runner = StageRunner(store, BlobStore(settings.blob_dir), Registry(), RunnerSettings())  # type: ignore[arg-type]
    assert await runner.poll_due() == 1
    doc, effect, entries, topics = await _outcome(store)
    assert effect.status == "done" and effect.outcome is not None and effect.outcome["type"] == "stage.done"
    assert doc.state == "archiving" and doc.stage == "sae" and doc.replies["id_acte"] == "006-210600235-X"
    assert entries == [("stage.done", "acknowledged"), ("stage.started", "archiving")]
    assert EVENTS not in topics and topics.count(MOVES) == 2 and command_topic("sae") in topics


async def test_a_concurrent_move_replays_the_whole_finish(settings, store, keys) -> None:  # type: ignore[no-untyped-def]
    await _transmitted(store)
    engine = ClashingOnce(store)
    runner = StageRunner(store, BlobStore(settings.blob_dir), Registry(), RunnerSettings(),  # type: ignore[arg-type]
                         engine)
    assert await runner.poll_due() == 1
    doc, effect, entries, topics = await _outcome(store)
    assert engine.calls == 2  # rolled back once, then decided again on fresh data
    assert effect.status == "done" and doc.state == "archiving"
    assert entries == [("stage.done", "acknowledged"), ("stage.started", "archiving")]  # once, not twice
    assert topics == [MOVES, MOVES, command_topic("sae")]
