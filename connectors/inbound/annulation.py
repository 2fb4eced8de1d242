"""`POST /api/v1/documents/{id}/annulation`: cancel an acte the préfecture already acknowledged
(operator role; journaled with the key's name). 202: the annulation is recorded and will be sent;
the document reaches `cancelled` when the ARAnnulation arrives. 409 when the document is not
acknowledged/archived or an annulation is already under way."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from bus.annulation import AnnulationRefused, request_annulation
from connectors.inbound.auth import ApiError, Key, require_role
from connectors.inbound.operations import OPERATOR_ROLES

router = APIRouter(prefix="/api/v1", tags=["operations"])


@router.post("/documents/{document_id}/annulation", status_code=202)
async def annulation(document_id: str, request: Request, key: Key) -> dict[str, Any]:
    require_role(key, *OPERATOR_ROLES)
    try:
        await request_annulation(request.app.state.store, document_id, key.name or key.id, scope=key.sirens)
    except AnnulationRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    return {"id": document_id, "annulation": "requested"}
