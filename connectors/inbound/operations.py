"""Operator endpoints: the errors inbox and replay (one document, or every document of a filter).

The logic lives in `bus.replays`, shared with the web console; this module is its HTTP face.
The stage runner looks up earlier generations' effects at the remote side before acting, so a
document that was in fact transmitted is never sent twice.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from bus import replays
from bus.replays import OPERATOR_ROLES, ErrorFilter, ReplayRefused
from connectors.inbound.auth import ApiError, Key, require_role, require_scope

router = APIRouter(prefix="/api/v1", tags=["operations"])


class ReplayFilter(BaseModel):
    siren: str | None = None
    flow: str | None = None
    stage: str | None = None
    reason_contains: str | None = None
    dry_run: bool = False
    limit: int = 10_000


@router.get("/errors")
async def errors(request: Request, key: Key, siren: str | None = None, flow: str | None = None) -> dict[str, Any]:
    """The errors inbox: documents in `error`, grouped by cause."""
    require_role(key, *OPERATOR_ROLES)
    if siren:
        require_scope(key, siren)
    docs = await replays.in_error(request.app.state.store, key, ErrorFilter(siren=siren, flow=flow))
    return {"groups": [
        {"flow": g.flow, "stage": g.stage, "cause": g.cause, "count": len(g.documents),
         "documents": [{"id": d.id, "siren": d.siren, "reason": d.reason, "updated_at": d.updated_at.isoformat()}
                       for d in g.documents]}
        for g in replays.group_by_cause(docs)
    ]}


@router.post("/documents/{document_id}/replay", status_code=202)
async def replay_one(document_id: str, request: Request, key: Key) -> dict[str, Any]:
    require_role(key, *OPERATOR_ROLES)
    try:
        doc = await replays.replay_one(request.app.state.store, key, document_id)
    except ReplayRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return {"replayed": [doc.id], "dry_run": False}


@router.post("/replay")
async def replay_many(body: ReplayFilter, request: Request, key: Key) -> dict[str, Any]:
    """Replay every document in error matching the filter; `dry_run` only lists them."""
    require_role(key, *OPERATOR_ROLES)
    if body.siren:
        require_scope(key, body.siren)
    where = ErrorFilter(siren=body.siren, flow=body.flow, stage=body.stage, reason_contains=body.reason_contains,
                        limit=body.limit)
    docs = await replays.replay_many(request.app.state.store, key, where, dry_run=body.dry_run)
    return {"dry_run": body.dry_run, "count": len(docs),
            "replayed" if not body.dry_run else "would_replay": [
                {"id": d.id, "siren": d.siren, "flow": d.flow, "stage": d.stage, "reason": d.reason} for d in docs
            ]}
