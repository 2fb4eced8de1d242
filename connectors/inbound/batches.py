"""Batch deposits (a month's payslips) and their progress: `GET /api/v1/batches/{id}`.

The deposit itself goes through `POST /api/v1/documents` (the route hands batch flows to
:func:`deposit_batch`); files of flows with a `read_role` are readable only by keys holding it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from bus.batches import BatchDepositor
from bus.deposits import DepositRefused, Upload
from bus.flows.definition import load_flow
from bus.scope import in_scope
from bus.store.models import ApiKey, Batch, BatchDocument, Document
from connectors.inbound.auth import ApiError, Key
from schemas.rh.metadata import redact

router = APIRouter(prefix="/api/v1", tags=["batches"])


def may_read_personal_data(key: ApiKey, doc: Document) -> bool:
    role = load_flow(doc.flow).read_role
    return role is None or role in key.roles


def require_read_role(key: ApiKey, doc: Document) -> None:
    role = load_flow(doc.flow).read_role
    if not may_read_personal_data(key, doc):
        raise ApiError(403, f"{role}_role_required",
                       f"Le rôle {role} est requis pour lire ces fichiers / the {role} role is needed to read these files")


def shown_metadata(key: ApiKey, doc: Document) -> dict[str, Any]:
    return doc.meta if may_read_personal_data(key, doc) else redact(doc.meta)


async def deposit_batch(depositor: BatchDepositor, key: ApiKey, *, flow: str, siren: str, metadata: dict[str, Any],
                        manifest: Upload | None, payslips: list[Upload], idempotency_key: str | None) -> JSONResponse:
    try:
        result = await depositor.deposit(flow=flow, siren=siren, metadata=metadata, manifest=manifest,
                                         payslips=payslips, actor=key.id, idempotency_key=idempotency_key)
    except DepositRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    body = {"batch_id": result.batch_id, "flow": flow, "siren": siren, "size": len(result.documents),
            "documents": [{"matricule": m, "id": d} for m, d in result.documents]}
    return JSONResponse(body, status_code=201 if result.created else 200)


@router.get("/batches/{batch_id}")
async def get_batch(batch_id: str, key: Key, request: Request) -> dict[str, Any]:
    """Progress of a batch: documents per state, and the ones an operator must look at."""
    async with request.app.state.store.sessions() as session:
        batch = await session.get(Batch, batch_id)
        if batch is None or not in_scope(key, batch.siren):
            raise ApiError(404, "batch_not_found", f"Lot introuvable / no batch {batch_id}")
        members = select(BatchDocument.document_id).where(BatchDocument.batch_id == batch_id)
        counts = dict((await session.execute(
            select(Document.state, func.count()).where(Document.id.in_(members)).group_by(Document.state)
        )).all())
        flagged = (await session.execute(
            select(BatchDocument.matricule, Document.id, Document.state, Document.reason)
            .join(Document, Document.id == BatchDocument.document_id)
            .where(BatchDocument.batch_id == batch_id, Document.state.in_(["undeliverable", "error", "rejected"]))
            .order_by(BatchDocument.matricule)
        )).all()
    terminal = set(load_flow(batch.flow).terminal)
    return {
        "id": batch.id, "flow": batch.flow, "siren": batch.siren, "periode": batch.periode, "size": batch.size,
        "created_at": batch.created_at.isoformat(),
        "states": counts,
        "finished": sum(n for state, n in counts.items() if state in terminal),
        "to_check": [{"matricule": m, "document_id": d, "state": s, "reason": r} for m, d, s, r in flagged],
    }
