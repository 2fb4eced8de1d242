"""The outbox relay publishes every row, once per row even when several workers relay at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bus.relay import prune_published, relay_once
from bus.store.models import OutboxEvent, utcnow


async def _fill(store, rows: int) -> None:  # type: ignore[no-untyped-def]
    async with store.transaction() as session:
        for i in range(rows):
            session.add(OutboxEvent(topic="dematbus.events", key="214400152", payload={"n": i}))


def _recorder(published: list[int]) -> Any:
    async def publish(topic: str, key: str, payload: dict[str, Any]) -> Any:
        await asyncio.sleep(0)  # let the other relay run in between
        published.append(payload["n"])
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    return publish


async def test_every_row_is_published_and_marked(store) -> None:  # type: ignore[no-untyped-def]
    await _fill(store, 120)
    published: list[int] = []
    while await relay_once(store, _recorder(published), batch=50):
        pass
    assert sorted(published) == list(range(120))
    async with store.sessions() as session:
        pending = (await session.execute(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None)))).scalar_one()
    assert pending == 0


async def test_two_relays_on_postgresql_publish_each_row_once(store, database) -> None:  # type: ignore[no-untyped-def]
    if database is None:
        pytest.skip("row locks (SKIP LOCKED) are the PostgreSQL path; SQLite runs one relay per host")
    await _fill(store, 400)
    published: list[int] = []

    async def relay_until_empty() -> None:
        while await relay_once(store, _recorder(published), batch=25):
            pass

    await asyncio.gather(relay_until_empty(), relay_until_empty())
    counts = Counter(published)
    assert sorted(counts) == list(range(400))
    assert max(counts.values()) == 1, [n for n, c in counts.items() if c > 1][:10]


async def test_published_rows_are_pruned_after_the_retention_unpublished_ones_never(store) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    async with store.transaction() as session:
        session.add(OutboxEvent(topic="dematbus.events", key="k", payload={"n": "old"},
                                published_at=now - timedelta(hours=2)))
        session.add(OutboxEvent(topic="dematbus.events", key="k", payload={"n": "recent"},
                                published_at=now - timedelta(minutes=5)))
        session.add(OutboxEvent(topic="dematbus.events", key="k", payload={"n": "pending"}))
    assert await prune_published(store, retention=3600) == 1
    async with store.sessions() as session:
        left = sorted(row.payload["n"] for row in (await session.execute(select(OutboxEvent))).scalars())
    assert left == ["pending", "recent"]
