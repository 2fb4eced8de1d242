"""State changes announced on the `dematbus.moves` topic, for the live counters and the webhooks.

Every journaled state change (a deposit, an engine move, an annulation) is announced by an outbox
row written in the SAME transaction as its journal entry, so a move is announced exactly when it
is durable. The relay delivers at least once: the message carries `event_id`
(`<document id>:<journal seq>`), stable across redeliveries, which consumers use to deduplicate.

Flow-specific volumes (PES bordereaux, mandats, titres, PJ; ACTES per nature) are computed from
the metadata the deposit checks stored, by the function the flow's YAML names in `volume_counts`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

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


def announce(session: AsyncSession, doc: Document, entry: JournalEntry) -> None:
    """Call right after journaling a state change, in the same transaction."""
    add_row(session, OutboxEvent(topic=MOVES, key=doc.siren, payload=move_message(doc, entry)))


def announce_event(session: AsyncSession, doc: Document, entry: JournalEntry, event_type: str,
                   volumes: dict[str, int] | None = None, **data: Any) -> None:
    """A journaled event that is no state change (a préfecture message, bus.courriers): `type`
    names it (webhooks send it as such), the live counters count its `volumes` once per event id
    and not its state; `data` goes to the webhook payload."""
    message = {**move_message(doc, entry), "type": event_type, "volumes": volumes or {}, **data}
    add_row(session, OutboxEvent(topic=MOVES, key=doc.siren, payload=message))
