"""The errors inbox and replay, shared by the API (`/api/v1/errors`, `/replay`) and the console.

Replay restarts a document in `error` at the stage that failed, as a new generation; the request
is journaled with the name of the key that asked. The engine ignores a replay request for a
generation the document has already left, so asking twice replays once.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bus.scope import in_scope, restrict
from bus.store import journal
from bus.store.db import Store
from bus.store.models import ApiKey, Document
from bus.store.outbox import emit_event
from schemas.events import Event

OPERATOR_ROLES = ("operator", "admin")


class ReplayRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class ErrorFilter:
    siren: str | None = None
    flow: str | None = None
    stage: str | None = None
    reason_contains: str | None = None
    limit: int = 10_000


@dataclass
class ErrorGroup:
    flow: str
    stage: str
    cause: str
    documents: list[Document] = field(default_factory=list)


def cause(reason: str | None) -> str:
    """Errors grouped by cause: the reason with its variable parts (numbers, ids) blanked."""
    text = (reason or "unknown").split("(after")[0]
    return re.sub(r"\d+", "#", text).strip()[:160]


async def in_error(store: Store, key: ApiKey, where: ErrorFilter) -> list[Document]:
    """Documents in `error` the key may see, oldest change first. A SIREN outside the key's scope
    matches nothing (the caller decides whether that is a 403)."""
    query = select(Document).where(Document.state == "error").order_by(Document.updated_at).limit(where.limit)
    if where.siren:
        if not in_scope(key, where.siren):
            return []
        query = query.where(Document.siren == where.siren)
    else:
        query = restrict(query, Document.siren, key)
    if where.flow:
        query = query.where(Document.flow == where.flow)
    if where.stage:
        query = query.where(Document.stage == where.stage)
    async with store.sessions() as session:
        docs = list((await session.execute(query)).scalars())
    if where.reason_contains:
        needle = where.reason_contains.lower()
        docs = [d for d in docs if needle in (d.reason or "").lower()]
    return docs


def group_by_cause(docs: list[Document]) -> list[ErrorGroup]:
    """Groups (flow, stage, cause), the largest first."""
    groups: dict[tuple[str, str, str], ErrorGroup] = defaultdict(lambda: ErrorGroup("", "", ""))
    for doc in docs:
        k = (doc.flow, doc.stage or "", cause(doc.reason))
        group = groups[k]
        group.flow, group.stage, group.cause = k
        group.documents.append(doc)
    return sorted(groups.values(), key=lambda g: (-len(g.documents), g.flow, g.stage, g.cause))


BATCH = 100  # documents replayed per transaction


async def _journal_and_emit(session: AsyncSession, key: ApiKey, doc: Document) -> None:
    who = key.name or key.id
    await journal.append(session, doc.id, "replay.requested", doc.state,
                         {"by": who, "stage": doc.stage, "generation": doc.generation})
    emit_event(session, Event(type="replay", document_id=doc.id, siren=doc.siren, stage=doc.stage,
                              generation=doc.generation, fields={"by": who}))


async def replay_ids(store: Store, key: ApiKey, ids: list[str]) -> tuple[list[Document], list[tuple[str, str]]]:
    """Replay these documents, a batch per transaction, each checked as it is now: the ones not
    the key's or no longer in error are skipped, with why. Returns (replayed, skipped)."""
    done: list[Document] = []
    skipped: list[tuple[str, str]] = []
    wanted = list(dict.fromkeys(ids))
    for start in range(0, len(wanted), BATCH):
        chunk = wanted[start:start + BATCH]
        async with store.transaction() as session:
            found = {d.id: d for d in (await session.execute(select(Document).where(Document.id.in_(chunk)))).scalars()}
            for document_id in chunk:
                doc = found.get(document_id)
                if doc is None or not in_scope(key, doc.siren):
                    skipped.append((document_id, f"Document introuvable / no document {document_id}"))
                elif doc.state != "error":
                    skipped.append((document_id, f"Pas en erreur / not in error (this one is {doc.state})"))
                else:
                    await _journal_and_emit(session, key, doc)
                    done.append(doc)
    return done, skipped


async def replay_one(store: Store, key: ApiKey, document_id: str) -> Document:
    """Replay one document in error; refused (404/409) when it is not the key's or not in error."""
    async with store.sessions() as session:
        doc = await session.get(Document, document_id)
    if doc is None or not in_scope(key, doc.siren):
        raise ReplayRefused(404, "document_not_found", f"Document introuvable / no document {document_id}")
    if doc.state != "error":
        raise ReplayRefused(409, "not_replayable",
                            f"Seul un document en erreur se rejoue / only a document in error can be replayed "
                            f"(this one is {doc.state})")
    async with store.transaction() as session:
        await _journal_and_emit(session, key, doc)
    return doc


async def replay_many(store: Store, key: ApiKey, where: ErrorFilter, *, dry_run: bool) -> list[Document]:
    """Every document in error matching the filter; replayed unless `dry_run`."""
    docs = await in_error(store, key, where)
    if dry_run:
        return docs
    done, _ = await replay_ids(store, key, [d.id for d in docs])
    return done
