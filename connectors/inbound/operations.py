"""Operator endpoints: the errors inbox and replay (one document, or every document of a filter).

Replay restarts a document in `error` at the stage that failed, as a new generation; the request
is journaled with the key that asked. The stage runner looks up earlier generations' effects at
the remote side before acting, so a document that was in fact transmitted is never sent twice.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import select

from bus.store import journal
from bus.store.models import ApiKey, Document
from bus.store.outbox import emit_event
from connectors.inbound.auth import ApiError, Key, require_role, require_scope
from schemas.events import Event

router = APIRouter(prefix="/api/v1", tags=["operations"])
OPERATOR_ROLES = ("operator", "admin")


class ReplayFilter(BaseModel):
    siren: str | None = None
    flow: str | None = None
    stage: str | None = None
    reason_contains: str | None = None
    dry_run: bool = False
    limit: int = 10_000


def cause(reason: str | None) -> str:
    """Errors grouped by cause: the reason with its variable parts (numbers, ids) blanked."""
    text = (reason or "unknown").split("(after")[0]
    return re.sub(r"\d+", "#", text).strip()[:160]


async def _in_error(request: Request, key: ApiKey, siren: str | None, flow: str | None, stage: str | None,
                    reason_contains: str | None = None, limit: int = 10_000) -> list[Document]:
    query = select(Document).where(Document.state == "error").order_by(Document.updated_at).limit(limit)
    if siren:
        require_scope(key, siren)
        query = query.where(Document.siren == siren)
    elif "*" not in key.sirens:
        query = query.where(Document.siren.in_(key.sirens))
    if flow:
        query = query.where(Document.flow == flow)
    if stage:
        query = query.where(Document.stage == stage)
    async with request.app.state.store.sessions() as session:
        docs = list((await session.execute(query)).scalars())
    if reason_contains:
        docs = [d for d in docs if reason_contains.lower() in (d.reason or "").lower()]
    return docs


@router.get("/errors")
async def errors(request: Request, key: Key, siren: str | None = None, flow: str | None = None) -> dict[str, Any]:
    """The errors inbox: documents in `error`, grouped by cause."""
    require_role(key, *OPERATOR_ROLES)
    groups: dict[tuple[str, str, str], list[Document]] = defaultdict(list)
    for doc in await _in_error(request, key, siren, flow, None):
        groups[(doc.flow, doc.stage or "", cause(doc.reason))].append(doc)
    return {"groups": [
        {"flow": flow_, "stage": stage, "cause": text, "count": len(docs),
         "documents": [{"id": d.id, "siren": d.siren, "reason": d.reason, "updated_at": d.updated_at.isoformat()}
                       for d in docs]}
        for (flow_, stage, text), docs in sorted(groups.items(), key=lambda kv: -len(kv[1]))
    ]}


async def _request_replay(request: Request, key: ApiKey, doc: Document) -> None:
    who = key.name or key.id
    async with request.app.state.store.transaction() as session:
        await journal.append(session, doc.id, "replay.requested", doc.state,
                             {"by": who, "stage": doc.stage, "generation": doc.generation})
        emit_event(session, Event(type="replay", document_id=doc.id, siren=doc.siren, stage=doc.stage,
                                  generation=doc.generation, fields={"by": who}))


@router.post("/documents/{document_id}/replay", status_code=202)
async def replay_one(document_id: str, request: Request, key: Key) -> dict[str, Any]:
    require_role(key, *OPERATOR_ROLES)
    async with request.app.state.store.sessions() as session:
        doc = await session.get(Document, document_id)
    if doc is None or ("*" not in key.sirens and doc.siren not in key.sirens):
        raise ApiError(404, "document_not_found", f"Document introuvable / no document {document_id}")
    if doc.state != "error":
        raise ApiError(409, "not_replayable",
                       f"Seul un document en erreur se rejoue / only a document in error can be replayed "
                       f"(this one is {doc.state})")
    await _request_replay(request, key, doc)
    return {"replayed": [doc.id], "dry_run": False}


@router.post("/replay")
async def replay_many(body: ReplayFilter, request: Request, key: Key) -> dict[str, Any]:
    """Replay every document in error matching the filter; `dry_run` only lists them."""
    require_role(key, *OPERATOR_ROLES)
    docs = await _in_error(request, key, body.siren, body.flow, body.stage, body.reason_contains, body.limit)
    if not body.dry_run:
        for doc in docs:
            await _request_replay(request, key, doc)
    return {"dry_run": body.dry_run, "count": len(docs),
            "replayed" if not body.dry_run else "would_replay": [
                {"id": d.id, "siren": d.siren, "flow": d.flow, "stage": d.stage, "reason": d.reason} for d in docs
            ]}
