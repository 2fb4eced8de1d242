"""A redrive finishes what a lost event left open: when a worker dies with a stage's outcome event
still in its lanes, the effects ledger has the outcome, and the next redrive applies it."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from bus.collectivites import add_collectivite
from bus.engine import Engine
from bus.store.models import Document, Effect, JournalEntry, OutboxEvent
from bus.topics import command_topic
from schemas.events import Event

SIREN = "214400152"


async def _transmitted_acte(store, outcome: dict | None) -> str:  # type: ignore[no-untyped-def,type-arg]
    doc_id = str(uuid.uuid4())
    async with store.transaction() as session:
        await add_collectivite(session, siren=SIREN, name="Commune", departement="044", arrondissement="1",
                               nature_code="31", connectors={})
        session.add(Document(id=doc_id, flow="actes", siren=SIREN, state="transmitted", stage="tdt", meta={}))
        await session.flush()
        session.add(Effect(document_id=doc_id, stage="tdt", generation=1, reference=f"dmb-{doc_id}-tdt-g1",
                           status="done", remote_id="17", outcome=outcome))
    return doc_id


async def test_a_redrive_applies_the_outcome_the_ledger_recorded(store) -> None:  # type: ignore[no-untyped-def]
    doc_id = await _transmitted_acte(store, None)
    done = Event(type="stage.done", document_id=doc_id, siren=SIREN, stage="tdt", generation=1,
                 fields={"id_acte": "044-214400152-20261124-X-DE", "date_reception": "2026-11-24"})
    async with store.transaction() as session:
        effect = (await session.execute(select(Effect).where(Effect.document_id == doc_id))).scalar_one()
        effect.outcome = done.model_dump(mode="json")

    assert await Engine(store).handle(Event(type="redrive", document_id=doc_id, siren=SIREN))

    async with store.sessions() as session:
        doc = await session.get(Document, doc_id)
        journal = [(e.event, e.state) for e in (await session.execute(
            select(JournalEntry).where(JournalEntry.document_id == doc_id).order_by(JournalEntry.seq))).scalars()]
        topics = [row.topic for row in (await session.execute(select(OutboxEvent))).scalars()]
    assert doc is not None and doc.replies["id_acte"] == "044-214400152-20261124-X-DE"
    assert journal == [("stage.done", "acknowledged"), ("stage.started", "archiving")]
    assert doc.state == "archiving" and doc.stage == "sae"
    assert command_topic("sae") in topics


async def test_without_a_recorded_outcome_a_redrive_sends_the_command_again(store) -> None:  # type: ignore[no-untyped-def]
    doc_id = await _transmitted_acte(store, None)
    assert await Engine(store).handle(Event(type="redrive", document_id=doc_id, siren=SIREN))
    async with store.sessions() as session:
        doc = await session.get(Document, doc_id)
        topics = [row.topic for row in (await session.execute(select(OutboxEvent))).scalars()]
    assert doc is not None and doc.state == "transmitted"
    assert topics == [command_topic("tdt")]
