"""The reconciler re-drives open documents idle past their stage timeout, and only those: finished
documents (the years of history) and effects the poller or the retry timer own are left alone."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from bus.collectivites import add_collectivite
from bus.reconciler import reconcile
from bus.store.models import Document, Effect, OutboxEvent, utcnow

SIREN = "214400152"


async def _seed(store, state: str, stage: str | None, idle: float, effect: str | None = None) -> str:  # type: ignore[no-untyped-def]
    doc_id = str(uuid.uuid4())
    at = utcnow() - timedelta(seconds=idle)
    async with store.transaction() as session:
        session.add(Document(id=doc_id, flow="actes", siren=SIREN, state=state, stage=stage, meta={},
                             created_at=at, updated_at=at))
        if effect:
            await session.flush()
            session.add(Effect(document_id=doc_id, stage=stage, generation=1, reference=f"ref-{doc_id}",
                               status=effect, next_at=utcnow()))
    return doc_id


async def test_only_idle_open_documents_are_redriven(store) -> None:  # type: ignore[no-untyped-def]
    async with store.transaction() as session:
        await add_collectivite(session, siren=SIREN, name="Commune", departement="044", arrondissement="1",
                               nature_code="31", connectors={})
    idle_open = await _seed(store, "transmitting", "tdt", idle=600)
    idle_not_started = await _seed(store, "deposited", None, idle=600)
    await _seed(store, "transmitting", "tdt", idle=1)  # still within its timeout
    await _seed(store, "transmitted", "tdt", idle=600, effect="submitted")  # the poller's
    await _seed(store, "transmitting", "tdt", idle=600, effect="retry")  # the retry timer's
    for state in ("archived", "rejected", "error", "cancelled"):  # history
        await _seed(store, state, "sae", idle=86_400)

    assert await reconcile(store, stage_timeout=120) == 2
    async with store.sessions() as session:
        events = [row.payload for row in (await session.execute(select(OutboxEvent))).scalars()]
    assert sorted(e["document_id"] for e in events) == sorted([idle_open, idle_not_started])
    assert {e["type"] for e in events} == {"redrive"}

    # Redriven once per timeout: a second pass right after finds nothing idle.
    assert await reconcile(store, stage_timeout=120) == 0
