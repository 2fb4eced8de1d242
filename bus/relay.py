"""Outbox relay: publishes pending outbox rows to Kafka, in id order, then marks them published.

Publishing happens before marking, so a crash in between publishes a row twice: consumers are
idempotent (the engine's state checks, the runners' effects ledger), never the other way round.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, delete, select, update

from bus.store.db import Store
from bus.store.models import OutboxEvent, utcnow

log = logging.getLogger(__name__)

Publish = Callable[[str, str, dict[str, Any]], Awaitable[Awaitable[Any]]]


async def relay_once(store: Store, publish: Publish, batch: int = 500) -> int:
    if store.url.startswith("sqlite"):
        return await _relay_unlocked(store, publish, batch)
    return await _relay_locked(store, publish, batch)


async def _publish(rows: list[OutboxEvent], publish: Publish) -> None:
    acks = [await publish(row.topic, row.key, row.payload) for row in rows]
    await asyncio.gather(*acks)


@functools.cache
def _pending(batch: int) -> Select[tuple[OutboxEvent]]:
    """Built once per batch size: building a statement costs more CPU than running it on an idle outbox."""
    return select(OutboxEvent).where(OutboxEvent.published_at.is_(None)).order_by(OutboxEvent.id).limit(batch)


async def _relay_locked(store: Store, publish: Publish, batch: int) -> int:
    """Several workers (PostgreSQL): each relay locks the rows it publishes and skips the rows
    another relay holds, so a row is published by one relay, not by every worker."""
    async with store.transaction() as session:
        rows = list((await session.execute(_pending(batch).with_for_update(skip_locked=True))).scalars())
        if rows:
            await _publish(rows, publish)
            await session.execute(
                update(OutboxEvent).where(OutboxEvent.id.in_([r.id for r in rows])).values(published_at=utcnow())
            )
    return len(rows)


async def _relay_unlocked(store: Store, publish: Publish, batch: int) -> int:
    """SQLite (one host): read outside the write lock, so publishing never holds other writers."""
    async with store.sessions() as session:
        rows = list((await session.execute(_pending(batch))).scalars())
    if not rows:
        return 0
    await _publish(rows, publish)
    async with store.transaction() as session:
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.id.in_([r.id for r in rows])).values(published_at=utcnow())
        )
    return len(rows)


async def prune_published(store: Store, retention: float) -> int:
    """Forget rows published more than `retention` seconds ago: Kafka and the journal hold the
    history, and an outbox that keeps every event ever sent grows with the years."""
    async with store.transaction() as session:
        result = await session.execute(
            delete(OutboxEvent).where(OutboxEvent.published_at < utcnow() - timedelta(seconds=retention))
        )
    return int(result.rowcount or 0)


async def relay_forever(store: Store, publish: Publish, idle_sleep: float = 0.02, idle_max: float = 0.25) -> None:
    """Publish as long as there are rows. Idle, wait for this process's next commit of outbox rows
    (`Store.wait_outbox`), or for a look that backs off from `idle_sleep` to `idle_max`: rows of
    other processes (the API's deposits) wait at most that long, and an idle relay does not query
    fifty times a second."""
    wait = idle_sleep
    while True:
        try:
            sent = await relay_once(store, publish)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("outbox relay failed; retrying")
            sent = 0
            await asyncio.sleep(1.0)
        if sent:
            wait = idle_sleep
            continue
        await store.wait_outbox(wait)
        wait = min(wait * 2, idle_max)
