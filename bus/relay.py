"""Outbox relay: publishes pending outbox rows to Kafka, in id order, then marks them published.

Publishing happens before marking, so a crash in between publishes a row twice: consumers are
idempotent (the engine's state checks, the runners' effects ledger), never the other way round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select, update

from bus.store.db import Store
from bus.store.models import OutboxEvent, utcnow

log = logging.getLogger(__name__)

Publish = Callable[[str, str, dict[str, Any]], Awaitable[Awaitable[Any]]]


async def relay_once(store: Store, publish: Publish, batch: int = 500) -> int:
    async with store.sessions() as session:
        rows = (await session.execute(
            select(OutboxEvent).where(OutboxEvent.published_at.is_(None)).order_by(OutboxEvent.id).limit(batch)
        )).scalars().all()
    if not rows:
        return 0
    acks = [await publish(row.topic, row.key, row.payload) for row in rows]
    await asyncio.gather(*acks)
    async with store.transaction() as session:
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.id.in_([r.id for r in rows])).values(published_at=utcnow())
        )
    return len(rows)


async def relay_forever(store: Store, publish: Publish, idle_sleep: float = 0.05) -> None:
    while True:
        try:
            sent = await relay_once(store, publish)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("outbox relay failed; retrying")
            sent = 0
            await asyncio.sleep(1.0)
        if not sent:
            await asyncio.sleep(idle_sleep)
