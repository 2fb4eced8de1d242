"""State changes announced on the `dematbus.moves` topic, for the webhooks, and counted by the
live counters (bus.counters) in the same transaction.

Every journaled state change (a deposit, an engine move, an annulation) is announced by an outbox
row written in the SAME transaction as its journal entry, so a move is announced exactly when it
is durable. The relay delivers at least once: the message carries `event_id`
(`<document id>:<journal seq>`), stable across redeliveries, which consumers use to deduplicate.
The live counters are written with the move itself (bus.counters.count), once per document and
state: a state the document was in before (a replay re-enters its states) counts no more.

Flow-specific volumes (PES bordereaux, mandats, titres, PJ; ACTES per nature) are computed from
the metadata the deposit checks stored, by the function the flow's YAML names in `volume_counts`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bus import counters
from bus.flows.definition import load_flow, resolve
from bus.store.models import Document, JournalEntry, OutboxEvent
from bus.store.outbox import add_row
from bus.topics import MOVES


def volume_counts(flow: str, meta: dict[str, Any]) -> dict[str, int]:
    """Extra volumes a deposited document adds, e.g. {"pes_mandats": 12, "actes_nature_DE": 1}."""
    try:
        dotted = load_flow(flow).volume_counts
    except KeyError:
        return {}
    if not dotted:
        return {}
    return {k: int(v) for k, v in resolve(dotted)(meta).items() if v}


def move_message(doc: Document, entry: JournalEntry) -> dict[str, Any]:
    return {
        "event_id": f"{doc.id}:{entry.seq}",
        "document_id": doc.id,
        "siren": doc.siren,
        "flow": doc.flow,
        "state": entry.state,
        "event": entry.event,
        "seq": entry.seq,
        "at": entry.at.isoformat(timespec="microseconds"),
        "volumes": volume_counts(doc.flow, doc.meta or {}) if entry.state == "deposited" else {},
    }


# The moves the engine (and a deposit) makes: in a document's first generation, each enters a state
# for the first time, unless two stages of the flow share that state (`_shared_states`).
ENGINE_MOVES = frozenset({"deposited", "stage.started", "stage.submitted", "stage.done", "stage.rejected",
                          "stage.failed"})


async def announce(session: AsyncSession, doc: Document, entry: JournalEntry) -> None:
    """Call right after journaling a state change, in the same transaction."""
    message = move_message(doc, entry)
    add_row(session, OutboxEvent(topic=MOVES, key=doc.siren, payload=message))
    if not await _entered_before(session, doc, entry):
        counters.count(session, message)


async def announce_event(session: AsyncSession, doc: Document, entry: JournalEntry, event_type: str,
                         volumes: dict[str, int] | None = None, **data: Any) -> None:
    """A journaled event that is no state change (a préfecture message, bus.courriers): `type`
    names it (webhooks send it as such), the live counters count its `volumes` (it is journaled
    once) and not its state; `data` goes to the webhook payload."""
    message = {**move_message(doc, entry), "type": event_type, "volumes": volumes or {}, **data}
    add_row(session, OutboxEvent(topic=MOVES, key=doc.siren, payload=message))
    counters.count(session, message)


async def _entered_before(session: AsyncSession, doc: Document, entry: JournalEntry) -> bool:
    """Whether the document was in `entry.state` before this entry; the journal is only read where
    it can have been."""
    shared = _shared_states(doc.flow)
    if (doc.generation or 1) == 1 and entry.event in ENGINE_MOVES and shared is not None and entry.state not in shared:
        return False
    return (await session.execute(
        select(JournalEntry.id).where(JournalEntry.document_id == doc.id, JournalEntry.state == entry.state,
                                      JournalEntry.seq < entry.seq).limit(1)
    )).first() is not None


@cache
def _shared_states(flow: str) -> frozenset[str] | None:
    """States of the flow that one generation of a document can enter twice: a state two of its
    stages share (a terminal state ends the generation: it is entered once)."""
    try:
        definition = load_flow(flow)
    except KeyError:
        return None  # a flow no longer defined: read the journal
    seen, shared = {"deposited"}, set()
    for stage in definition.stages:
        for state in {stage.running, stage.submitted, stage.done, stage.rejected} - {None}:
            if state in definition.terminal:
                continue
            (shared if state in seen else seen).add(state)
    return frozenset(shared)
