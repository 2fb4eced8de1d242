"""The recorded messages: reading them (per acte, the operators' inbox) and journaling what
happens to them. Each event is an entry of the acte's journal at the acte's own state (an archived
acte stays archived) and a move announced with its type (bus.moves.announce_event): the webhooks
send it, the live counters count the messages received."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bus import moves
from bus.blobs import BlobRef
from bus.courriers import rules
from bus.scope import restrict
from bus.store import journal
from bus.store.db import Store
from bus.store.models import (
    Document,
    File,
    JournalEntry,
    PrefectureMessage,
    PrefectureReply,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Listed:
    message: PrefectureMessage
    reply: PrefectureReply | None  # the latest one


def summary(message: PrefectureMessage) -> dict[str, Any]:
    """What a journal entry and a webhook say of a message."""
    return {"id": message.id, "type": message.code, "label": rules.LABELS[message.code], "state": message.state,
            "remote_id": message.remote_id,
            "due_date": message.due_date.isoformat() if message.due_date else None}


async def record_event(session: AsyncSession, doc: Document, message: PrefectureMessage, event: str,
                       detail: dict[str, Any] | None = None, *, counted: bool = False) -> JournalEntry:
    """Journal `event` (prefecture_message.received, …) on the acte and announce it; `counted`: the
    message's arrival, which the volumes count."""
    about = summary(message)
    entry = await journal.append(session, doc.id, event, doc.state,
                                 {"message": message.id, "type": message.code, **(detail or {})})
    await moves.announce_event(session, doc, entry, event, {rules.metric(message.code): 1} if counted else None,
                         prefecture_message=about)
    return entry


async def retrying(store: Store, work: Callable[[AsyncSession], Awaitable[T]], attempts: int = 3) -> T:
    """`work` in one transaction, run again when a concurrent writer took the same key (the next
    entry of the acte's journal, the same message, the same reply generation): the next run reads
    what that writer did."""
    for attempt in range(attempts):
        try:
            async with store.transaction() as session:
                return await work(session)
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


async def add_files(session: AsyncSession, document_id: str, files: list[tuple[str, str, str]],
                    refs: list[BlobRef]) -> list[str]:
    """Files (name, role, media type) of the acte, under names not taken yet; returns the names given."""
    taken = set((await session.execute(select(File.name).where(File.document_id == document_id))).scalars())
    names = []
    for (wanted, role, media_type), ref in zip(files, refs, strict=True):
        stem, dot, ext = wanted.rpartition(".")
        name, n = wanted, 1
        while name in taken:
            n += 1
            name = f"{stem}.{n}.{ext}" if dot else f"{wanted}.{n}"
        taken.add(name)
        names.append(name)
        session.add(File(document_id=document_id, role=role, name=name, size=ref.size, sha256=ref.sha256,
                         media_type=media_type))
    return names


async def latest_replies(session: AsyncSession, message_ids: Collection[int]) -> dict[int, PrefectureReply]:
    if not message_ids:
        return {}
    rows = (await session.execute(
        select(PrefectureReply).where(PrefectureReply.message_id.in_(list(message_ids)))
        .order_by(PrefectureReply.message_id, PrefectureReply.generation))).scalars()
    return {r.message_id: r for r in rows}  # the last generation wins


async def of_documents(session: AsyncSession, document_ids: Collection[str]) -> dict[str, list[Listed]]:
    """Each acte's messages, oldest first (a list of many actes costs a query per 500)."""
    ids, out = list(document_ids), {}
    for start in range(0, len(ids), 500):
        found = list((await session.execute(
            select(PrefectureMessage).where(PrefectureMessage.document_id.in_(ids[start:start + 500]))
            .order_by(PrefectureMessage.received_at, PrefectureMessage.id))).scalars())
        replies = await latest_replies(session, [m.id for m in found])
        for m in found:
            out.setdefault(m.document_id, []).append(Listed(m, replies.get(m.id)))
    return out


async def of_document(session: AsyncSession, document_id: str) -> list[Listed]:
    return (await of_documents(session, [document_id])).get(document_id, [])


async def listed(session: AsyncSession, scope: Any, state: str = rules.RECEIVED,
                 limit: int = 500) -> list[tuple[Listed, Document]]:
    """Messages in `state` of the collectivités `scope` reaches (a key, bus/scope.py), nearest due
    date first: with `received`, the operators' inbox of the messages waiting for an answer."""
    query = restrict(
        select(PrefectureMessage, Document).join(Document, Document.id == PrefectureMessage.document_id)
        .where(PrefectureMessage.state == state)
        .order_by(PrefectureMessage.due_date.is_(None), PrefectureMessage.due_date, PrefectureMessage.received_at)
        .limit(limit), PrefectureMessage.siren, scope)
    rows = (await session.execute(query)).tuples().all()
    replies = await latest_replies(session, [m.id for m, _ in rows])
    return [(Listed(m, replies.get(m.id)), d) for m, d in rows]
