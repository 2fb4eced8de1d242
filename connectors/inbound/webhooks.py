"""Webhooks of a collectivité (`/api/v1/webhooks`), operator or admin role, within the key's scope.

The secret is returned once, at creation (generated when none is given); deliveries are listed
per webhook with their status, attempts and last error. See bus.webhooks for the protocol.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from bus import webhooks
from bus.scope import in_scope, scope_sirens
from bus.store.models import Webhook, WebhookDelivery
from connectors.inbound.auth import ApiError, Key, require_role, require_scope
from connectors.inbound.operations import OPERATOR_ROLES

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    siren: str = Field(pattern=r"^[0-9]{9}$")
    url: str = Field(max_length=2000)
    secret: str | None = None


def view(hook: Webhook) -> dict[str, Any]:
    return {"id": hook.id, "siren": hook.siren, "url": hook.url, "active": hook.active,
            "created_by": hook.created_by, "created_at": hook.created_at.isoformat()}


@router.post("", status_code=201)
async def add(body: WebhookIn, request: Request, key: Key) -> dict[str, Any]:
    require_role(key, *OPERATOR_ROLES)
    require_scope(key, body.siren)
    try:
        async with request.app.state.store.transaction() as session:
            hook, secret = await webhooks.register(session, body.siren, body.url, body.secret, key.name or key.id)
            answer = {**view(hook), "secret": secret}
    except webhooks.WebhookError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    return answer


@router.get("")
async def list_webhooks(request: Request, key: Key, siren: str | None = None) -> dict[str, Any]:
    require_role(key, *OPERATOR_ROLES)
    if siren:
        require_scope(key, siren)
    sirens = [siren] if siren else scope_sirens(key)
    async with request.app.state.store.sessions() as session:
        hooks = await webhooks.webhooks_of(session, sirens)
    return {"webhooks": [view(h) for h in hooks]}


async def _own(request: Request, key: Any, webhook_id: int) -> Webhook:
    async with request.app.state.store.sessions() as session:
        hook = await session.get(Webhook, webhook_id)
    if hook is None or not in_scope(key, hook.siren):
        raise ApiError(404, "webhook_not_found", f"Webhook introuvable / no webhook {webhook_id}")
    return hook


@router.delete("/{webhook_id}", status_code=204)
async def remove(webhook_id: int, request: Request, key: Key) -> None:
    require_role(key, *OPERATOR_ROLES)
    await _own(request, key, webhook_id)
    async with request.app.state.store.transaction() as session:
        hook = await session.get(Webhook, webhook_id)
        if hook is not None:
            hook.active = False


@router.get("/{webhook_id}/deliveries")
async def deliveries(webhook_id: int, request: Request, key: Key, limit: int = 100) -> dict[str, Any]:
    require_role(key, *OPERATOR_ROLES)
    await _own(request, key, webhook_id)
    async with request.app.state.store.sessions() as session:
        rows = (await session.execute(
            select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id.desc()).limit(max(1, min(limit, 1000)))
        )).scalars().all()
    return {"deliveries": [{"event_id": d.event_id, "status": d.status, "attempts": d.attempts,
                            "last_error": d.last_error, "state": d.payload.get("state"),
                            "document_id": d.payload.get("document_id"),
                            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None}
                           for d in rows]}
