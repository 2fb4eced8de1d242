"""Live counters: a move counts once per (document, state), on its Paris day, in the transaction that
journals it (a rolled-back move counts nothing); the Prometheus sums carry no SIREN."""

from __future__ import annotations

import random
import uuid
from datetime import date
from typing import Any

import pytest
from prometheus_client import REGISTRY

from bus import moves
from bus.collectivites import add_collectivite
from bus.counters import increments, local_day, read_counters, refresh_gauges
from bus.store import journal
from bus.store.models import Document, JournalEntry
from schemas.actes.volumes import volume_counts as actes_volumes
from schemas.helios.volumes import volume_counts as helios_volumes
from schemas.siren import is_valid_siren
from tests.conftest import SIREN_A


def move(doc: str, state: str, at: str, volumes: dict[str, int] | None = None, seq: int = 1,
         siren: str = SIREN_A) -> dict[str, Any]:
    return {"event_id": f"{doc}:{seq}", "document_id": doc, "siren": siren, "flow": "actes", "state": state,
            "event": "x", "seq": seq, "at": at, "volumes": volumes or {}}


def fresh_siren() -> str:
    """A SIREN no other test counts for (a PostgreSQL store is shared by the tests)."""
    while True:
        head = f"{random.randrange(10**7, 10**8)}"
        for digit in "0123456789":
            if is_valid_siren(head + digit):
                return head + digit


def test_day_is_the_paris_day() -> None:
    # 31 January 23:30 UTC is 1 February in Paris, as the monthly reports count it.
    keys = increments(move("d1", "deposited", "2024-01-31T23:30:00.000000", {"actes_nature_DE": 1}))
    assert keys == {f"{SIREN_A}|actes|2024-02-01|deposited": 1, f"{SIREN_A}|actes|2024-02-01|actes_nature_DE": 1}


def test_volumes_from_the_deposit_metadata() -> None:
    assert actes_volumes({"nature": 3}) == {"actes_nature_AI": 1}
    assert actes_volumes({"nature": 9}) == {}
    meta = {"pj_count": 2, "bordereaux": [{"domain": "depense", "pieces": 4}, {"domain": "depense", "pieces": 1},
                                          {"domain": "recette", "pieces": 3}]}
    assert helios_volumes(meta) == {"pes_bordereaux": 3, "pes_mandats": 5, "pes_titres": 3, "pes_pj": 2}


class Crash(Exception):
    pass


async def test_a_state_counts_once_per_document_with_its_journal_entry(store) -> None:  # type: ignore[no-untyped-def]
    siren = fresh_siren()
    async with store.transaction() as session:
        await add_collectivite(session, siren=siren, name="Commune", departement="044")

    async def journaled(doc_id: str, event: str, state: str, generation: int = 1) -> JournalEntry:
        async with store.transaction() as session:
            doc = await session.get(Document, doc_id)
            if doc is None:
                doc = Document(id=doc_id, flow="actes", siren=siren, state=state, meta={"nature": 1})
                session.add(doc)
            doc.state, doc.generation = state, generation
            await session.flush()
            entry = await journal.append(session, doc_id, event, state, {})
            await moves.announce(session, doc, entry)
            return entry

    d1, d2 = str(uuid.uuid4()), str(uuid.uuid4())
    day = local_day((await journaled(d1, "deposited", "deposited")).at)
    await journaled(d1, "stage.started", "transmitting")
    await journaled(d1, "stage.submitted", "transmitted")
    await journaled(d1, "stage.failed", "error")
    await journaled(d1, "replay", "transmitting", generation=2)  # re-entered after a replay
    await journaled(d1, "stage.submitted", "transmitted", generation=2)
    await journaled(d2, "deposited", "deposited")
    with pytest.raises(Crash):
        async with store.transaction() as session:  # journaled, then rolled back: counts nothing
            doc = await session.get(Document, d2)
            doc.state = "transmitting"
            await session.flush()
            await moves.announce(session, doc, await journal.append(session, d2, "stage.started", "transmitting"))
            raise Crash

    rows = {(r.day, r.metric): r.value for r in await read_counters(store, sirens=[siren])}
    assert rows == {(day, "deposited"): 2, (day, "transmitting"): 1, (day, "transmitted"): 1, (day, "error"): 1,
                    (day, "actes_nature_DE"): 2}
    await refresh_gauges(store)
    gauge = REGISTRY.get_sample_value("dematbus_live_documents", {"flow": "actes", "metric": "deposited"})
    assert gauge is not None and gauge >= 2
    assert await read_counters(store, sirens=[siren], start=date.fromordinal(day.toordinal() + 1)) == []
