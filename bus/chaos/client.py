"""The chaos campaign's business software: deposits every document, and when the API is down
(killed, restarting) retries with the same Idempotency-Key, as a real client would, so a deposit
whose answer was lost is not stored twice."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from bus.bench.workload import BenchDocument
from bus.retry import RetryPolicy

RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
RETRIES = RetryPolicy(initial_interval=0.4, maximum_interval=5.0)  # then jittered, as a client would


@dataclass
class Deposits:
    acknowledged: dict[int, str] = field(default_factory=dict)  # workload index → document id
    acknowledged_at: list[float] = field(default_factory=list)  # time.monotonic() of each 201 / 200
    replayed: int = 0  # answers 200: an earlier attempt with the same key had been stored
    retries: int = 0  # attempts beyond the first (API down, 5xx, timeouts)
    refused: dict[int, str] = field(default_factory=dict)  # index → "status code: message"


async def deposit_all(api_url: str, key: str, docs: list[BenchDocument], run: str, concurrency: int,
                      rate: float | None = None, on_ack: Callable[[], None] = lambda: None,
                      timeout: float = 60.0) -> Deposits:
    """Deposit every document, `concurrency` at a time, starting at most `rate` a second (a
    steady business flow, so the kills land while deposits go on; None: as fast as possible)."""
    result = Deposits()
    start = time.monotonic()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(docs)):
        queue.put_nowait(i)
    rng = random.Random(f"{run}-client")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=api_url, timeout=timeout, limits=limits,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        async def one(i: int) -> None:
            headers = {"Idempotency-Key": f"chaos-{run}-{i}"}
            attempt = 0
            while True:
                attempt += 1
                try:
                    resp = await client.post("/api/v1/documents", data=docs[i].form, files=docs[i].files,
                                             headers=headers)
                except httpx.HTTPError:
                    resp = None  # refused connection, reset, timeout: the API is down or dying
                if resp is not None and resp.status_code in (200, 201):
                    result.acknowledged[i] = resp.json()["id"]
                    result.acknowledged_at.append(time.monotonic())
                    result.replayed += resp.status_code == 200
                    on_ack()
                    return
                if resp is not None and resp.status_code not in RETRY_STATUSES:
                    result.refused[i] = f"{resp.status_code}: {resp.text[:200]}"
                    return
                result.retries += 1
                await asyncio.sleep(RETRIES.delay(attempt) * rng.uniform(0.5, 1.0))

        async def depositor() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                if rate:
                    await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
                await one(i)

        await asyncio.gather(*(depositor() for _ in range(concurrency)))
    return result
