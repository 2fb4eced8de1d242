"""`bus.annulation.request_annulation`, the function the API and the web console call: what it
refuses (status, code), and what it records (the ledger row and the journal entry with who asked)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from bus.annulation import AnnulationRefused, request_annulation
from bus.store import journal
from bus.store.models import AnnulationEffect, Document, Effect, JournalEntry
from tests.conftest import SIREN_A, SIREN_B


async def document(store, flow: str, state: str, acknowledged: bool) -> str:  # type: ignore[no-untyped-def]
    doc_id = str(uuid.uuid4())
    async with store.transaction() as session:
        session.add(Document(id=doc_id, flow=flow, siren=SIREN_A, state=state, stage="tdt", meta={}))
        await session.flush()
        await journal.append(session, doc_id, "deposited", "deposited", {})
        if acknowledged:
            session.add(Effect(document_id=doc_id, stage="tdt", generation=1, reference=f"ref-{doc_id}",
                               status="done", remote_id="4242"))
    return doc_id


async def refused(store, doc_id: str, **kwargs) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(AnnulationRefused) as exc:
        await request_annulation(store, doc_id, "Camille", **kwargs)
    return exc.value.status, exc.value.code


async def test_refusals(store, keys) -> None:  # type: ignore[no-untyped-def]
    assert await refused(store, "nope") == (404, "document_not_found")
    archived = await document(store, "actes", "archived", acknowledged=True)
    assert await refused(store, archived, scope=[SIREN_B]) == (404, "document_not_found")  # not the caller's
    assert await refused(store, await document(store, "helios", "archived", True)) == (409, "not_cancellable")
    assert await refused(store, await document(store, "actes", "transmitted", False)) == (409, "not_acknowledged")
    assert await refused(store, await document(store, "actes", "rejected", True)) == (409, "not_acknowledged")
    assert await refused(store, await document(store, "actes", "cancelled", True)) == (409, "already_cancelled")


@pytest.mark.parametrize("state", ["acknowledged", "archiving", "archived"])
async def test_an_acknowledged_acte_is_recorded_once(store, keys, state: str) -> None:  # type: ignore[no-untyped-def]
    doc_id = await document(store, "actes", state, acknowledged=True)
    await request_annulation(store, doc_id, "Camille", scope=["*"])
    assert await refused(store, doc_id) == (409, "annulation_pending")
    async with store.sessions() as session:
        [row] = (await session.execute(select(AnnulationEffect).where(AnnulationEffect.document_id == doc_id)))\
            .scalars().all()
        last = (await session.execute(select(JournalEntry).where(JournalEntry.document_id == doc_id)
                                      .order_by(JournalEntry.seq.desc()).limit(1))).scalar_one()
        assert (await journal.verify_chain(session, doc_id)).valid
    assert (row.status, row.target_id, row.requested_by) == ("intent", "4242", "Camille")
    assert (last.event, last.state, last.detail["by"]) == ("annulation.requested", state, "Camille")
