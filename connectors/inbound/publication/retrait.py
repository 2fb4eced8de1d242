"""`DELETE /api/v1/documents/{id}/publication`: withdraw a published acte from the registry
(operator role of the acte's collectivité; journaled `publication.withdrawn` with the key's name
and the reason). Body `{"reason": "…"}` (or `?reason=`). The acte stays listed as withdrawn, with
the date and the reason, which are public; its PDF then answers 410 Gone with that notice."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from bus.publication import PublicationRefused, withdraw
from connectors.inbound.auth import ApiError, Key, require_role
from connectors.inbound.operations import OPERATOR_ROLES

router = APIRouter(prefix="/api/v1", tags=["operations"])


class WithdrawalRequest(BaseModel):
    reason: str = ""


@router.delete("/documents/{document_id}/publication")
async def withdraw_publication(document_id: str, request: Request, key: Key, body: WithdrawalRequest | None = None,
                               reason: str | None = None) -> dict[str, Any]:
    require_role(key, *OPERATOR_ROLES)
    try:
        on = await withdraw(request.app.state.store, document_id, key.name or key.id,
                            (body.reason if body and body.reason else reason) or "", scope=key.sirens)
    except PublicationRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    return {"id": document_id, "publication": "withdrawn", "withdrawn_on": on.isoformat()}
