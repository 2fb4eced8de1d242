"""Webhooks: every state change of a collectivité's documents is POSTed to the URLs it registered.

Driven by the `dematbus.moves` topic (bus.moves), never by the flow itself: the worker's webhook
agent turns each move into one `webhook_deliveries` row per active webhook of the SIREN (unique
per webhook and event id, so a redelivered move adds nothing), and a timer POSTs the due rows. A
slow or dead receiver therefore delays only its own notifications, never a document.

The request: JSON body (see `payload`), headers `X-Dematbus-Event-Id` (stable across retries: the
receiver deduplicates with it), `X-Dematbus-Signature: sha256=<hex HMAC-SHA256 of the raw body
with the webhook's secret>`. Any 2xx is a success; anything else (or no answer) is retried with
exponential backoff up to `webhook_max_attempts`, then the delivery is `failed` (visible in the
deliveries list). The secret is kept as is in the store: it is needed to sign.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import httpx
from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bus.retry import RetryPolicy
from bus.store.db import Store
from bus.store.models import Collectivite, Webhook, WebhookDelivery, utcnow

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Dematbus-Signature"
EVENT_HEADER = "X-Dematbus-Event-Id"


class WebhookError(ValueError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(move: dict[str, Any]) -> dict[str, Any]:
    """A state change, or an event of its own `type` with its data (bus.moves.announce_event)."""
    extra = {k: move[k] for k in ("prefecture_message",) if k in move}
    return {"event_id": move["event_id"], "type": move.get("type", "document.state_changed"),
            **{k: move[k] for k in ("document_id", "siren", "flow", "state", "event", "seq", "at")}, **extra}


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


# -- registration --------------------------------------------------------------------------------


def check_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or len(url) > 2000:
        raise WebhookError(422, "invalid_webhook_url", "URL de webhook invalide (http(s)://…) / invalid webhook URL")
    return url


async def register(session: AsyncSession, siren: str, url: str, secret: str | None, by: str) -> tuple[Webhook, str]:
    """Returns the webhook and its secret (generated when none is given)."""
    check_url(url)
    if secret is not None and not 16 <= len(secret) <= 200:
        raise WebhookError(422, "invalid_webhook_secret", "Le secret doit faire 16 à 200 caractères / "
                                                          "the secret must be 16 to 200 characters")
    if await session.get(Collectivite, siren) is None:
        raise WebhookError(404, "collectivite_not_found", f"Collectivité inconnue / unknown collectivité {siren}")
    secret = secret or secrets.token_urlsafe(32)
    hook = Webhook(siren=siren, url=url, secret=secret, active=True, created_by=by)
    session.add(hook)
    await session.flush()
    return hook, secret


async def webhooks_of(session: AsyncSession, sirens: list[str] | None) -> list[Webhook]:
    query = select(Webhook).where(Webhook.active.is_(True)).order_by(Webhook.id)
    if sirens is not None:
        query = query.where(Webhook.siren.in_(sirens or [""]))
    return list((await session.execute(query)).scalars())


# -- worker side ---------------------------------------------------------------------------------


async def enqueue(store: Store, *moves: dict[str, Any]) -> int:
    """One delivery row per active webhook of each move's SIREN; returns how many were added.
    A batch of moves costs one query and one transaction (rows of a redelivered move are skipped)."""
    async with store.sessions() as session:
        hooks: dict[str, list[int]] = {}
        for hook in await webhooks_of(session, sorted({m["siren"] for m in moves})):
            hooks.setdefault(hook.siren, []).append(hook.id)
    rows = [(hook_id, move) for move in moves for hook_id in hooks.get(move["siren"], [])]
    if not rows:
        return 0
    try:
        async with store.transaction() as session:
            for hook_id, move in rows:
                session.add(WebhookDelivery(webhook_id=hook_id, event_id=move["event_id"], payload=payload(move)))
        return len(rows)
    except IntegrityError:
        pass  # some move was redelivered: queue the batch row by row
    added = 0
    for hook_id, move in rows:
        try:
            async with store.transaction() as session:
                session.add(WebhookDelivery(webhook_id=hook_id, event_id=move["event_id"], payload=payload(move)))
            added += 1
        except IntegrityError:
            pass  # already queued
    return added


@dataclass(frozen=True)
class DeliverySettings:
    backoff: float = 1.0
    backoff_max: float = 600.0
    max_attempts: int = 15
    timeout: float = 10.0

    @property
    def retry(self) -> RetryPolicy:
        """The backoff of failed deliveries (bus.retry)."""
        return RetryPolicy(initial_interval=self.backoff, maximum_interval=self.backoff_max,
                           maximum_attempts=self.max_attempts)


@functools.cache
def _due_deliveries(batch: int) -> Select[tuple[WebhookDelivery, Webhook]]:
    """Built once per batch size: the timer asks every second, mostly for nothing."""
    return (select(WebhookDelivery, Webhook).join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.status == "pending",
                   WebhookDelivery.next_at <= bindparam("now", type_=WebhookDelivery.next_at.type))
            .order_by(WebhookDelivery.next_at, WebhookDelivery.id).limit(batch))


class Dispatcher:
    """POSTs due deliveries. Each row is claimed with a conditional UPDATE (lease), so several
    workers never send the same row at the same time."""

    def __init__(self, store: Store, settings: DeliverySettings, client: httpx.AsyncClient | None = None) -> None:
        self.store = store
        self.settings = settings
        self.client = client or httpx.AsyncClient(timeout=settings.timeout, follow_redirects=False)

    async def run_due(self, batch: int = 50) -> int:
        now = utcnow()
        async with self.store.sessions() as session:
            rows = (await session.execute(_due_deliveries(batch), {"now": now})).tuples().all()
        claimed = [(d, h) for d, h in rows if await self._claim(d, now)]
        await asyncio.gather(*(self._deliver(d, h) for d, h in claimed))
        return len(claimed)

    async def _claim(self, delivery: WebhookDelivery, now: datetime) -> bool:
        lease = now + timedelta(seconds=self.settings.timeout * 2 + 5)
        async with self.store.transaction() as session:
            result = await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery.id, WebhookDelivery.status == "pending",
                       WebhookDelivery.next_at == delivery.next_at)
                .values(next_at=lease, attempts=WebhookDelivery.attempts + 1)
            )
        return result.rowcount == 1

    async def _deliver(self, delivery: WebhookDelivery, hook: Webhook) -> None:
        body = encode(delivery.payload)
        headers = {"Content-Type": "application/json", EVENT_HEADER: delivery.event_id,
                   SIGNATURE_HEADER: sign(hook.secret, body), "User-Agent": "dematbus-webhooks"}
        error: str | None = None
        try:
            response = await self.client.post(hook.url, content=body, headers=headers)
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        attempts = delivery.attempts + 1
        values: dict[str, Any]
        if error is None:
            values = {"status": "delivered", "delivered_at": utcnow(), "last_error": None}
        elif self.settings.retry.exhausted(attempts):
            values = {"status": "failed", "last_error": error}
            log.warning("webhook %s: %s failed for good: %s", hook.id, delivery.event_id, error)
        else:
            delay = self.settings.retry.delay(attempts)
            values = {"last_error": error, "next_at": utcnow() + timedelta(seconds=delay)}
        async with self.store.transaction() as session:
            await session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery.id).values(**values))

    async def aclose(self) -> None:
        await self.client.aclose()


def install(app: Any, store: Store, topic: Any, settings: DeliverySettings) -> Dispatcher:
    """The faust agent (moves → delivery rows) and the delivery timer."""
    dispatcher = Dispatcher(store, settings)

    @app.agent(topic, name="dematbus.webhooks")
    async def queue(stream: Any) -> None:
        async for moves in stream.take(200, within=0.2):
            try:
                await enqueue(store, *moves)
            except Exception:
                log.exception("webhooks: could not queue %d move(s)", len(moves))

    @app.timer(0.5)
    async def deliver() -> None:
        try:
            while await dispatcher.run_due():
                pass
        except Exception:
            log.exception("webhooks: delivery round failed")

    return dispatcher
