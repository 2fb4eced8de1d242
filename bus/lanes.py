"""Parallel lanes for one consumer: items of one key stay in order, different keys overlap.

A faust agent handles one event at a time. The engine's work per event is a few short database
round trips, so one lane spends most of its time waiting; with `n` lanes those waits overlap while
the events of one document (same key) are still handled in the order they arrived.

The agent hands an event to its lane and moves on, so the broker offset may be committed before
the event is handled. A crash then loses at most the events still queued in the lanes; their
documents are redriven from the store by the reconciler (at start with the embedded broker, after
`stage_timeout` otherwise), like any other interrupted work.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Lanes(Generic[T]):
    def __init__(self, count: int, handle: Callable[[T], Awaitable[None]], depth: int = 64) -> None:
        self.handle = handle
        self.queues: list[asyncio.Queue[T]] = [asyncio.Queue(maxsize=depth) for _ in range(max(1, count))]
        self.tasks: list[asyncio.Task[None]] = []

    async def put(self, key: str, item: T) -> None:
        """Queue `item` on the lane of `key`; waits when that lane is full (back-pressure)."""
        if not self.tasks:
            self.tasks = [asyncio.ensure_future(self._drain(q)) for q in self.queues]
        await self.queues[zlib.crc32(key.encode()) % len(self.queues)].put(item)

    async def _drain(self, queue: asyncio.Queue[T]) -> None:
        while True:
            item = await queue.get()
            try:
                await self.handle(item)
            except Exception:
                log.exception("lane handler failed on %s", item)
            finally:
                queue.task_done()

    async def join(self) -> None:
        """Wait until every queued item has been handled."""
        for queue in self.queues:
            await queue.join()
