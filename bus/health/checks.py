"""The readiness checks, each a coroutine that returns a `Check` (never raises)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from bus.store.db import Store
from bus.store.models import OutboxEvent, utcnow

GROUP_ID = "dematbus"  # the faust app id (bus.worker), hence the consumer group of the workers
CHECK_TIMEOUT = 3.0
MIN_FREE_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def report(checks: Sequence[Check]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of a readiness answer: 200 when every check passed, else 503 with
    the failing ones first."""
    ok = all(c.ok for c in checks)
    failing = [c for c in checks if not c.ok]
    return (200 if ok else 503), {
        "status": "ready" if ok else "not ready",
        "failing": [f"{c.name}: {c.detail}" for c in failing],
        "checks": {c.name: asdict(c) for c in checks},
    }


async def guarded(name: str, check: Callable[[], Awaitable[Check]], timeout: float = CHECK_TIMEOUT) -> Check:
    try:
        return await asyncio.wait_for(check(), timeout)
    except asyncio.TimeoutError:
        return Check(name, False, f"no answer within {timeout:.0f} s")
    except Exception as exc:  # a check reports, it does not fail the probe
        return Check(name, False, f"{type(exc).__name__}: {exc}"[:300])


async def store_check(store: Store) -> Check:
    async def run() -> Check:
        async with store.sessions() as session:
            await session.execute(text("SELECT 1"))
        return Check("store", True, "answers")

    return await guarded("store", run)


async def outbox_check(store: Store, max_lag: float) -> Check:
    """The relay publishes the outbox: its oldest pending row is younger than `max_lag` seconds."""
    async def run() -> Check:
        async with store.sessions() as session:
            oldest, pending = (await session.execute(
                select(func.min(OutboxEvent.created_at), func.count()).where(OutboxEvent.published_at.is_(None))
            )).one()
        lag = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        detail = f"{pending} pending, oldest {lag:.0f} s"
        if lag > max_lag:
            return Check("outbox", False, f"{detail} (more than {max_lag:.0f} s: the relay cannot publish)")
        return Check("outbox", True, detail)

    return await guarded("outbox", run)


def blobs_check(blob_dir: Path) -> Check:
    """The blob store accepts a write (and has room for more)."""
    try:
        blob_dir.mkdir(parents=True, exist_ok=True)
        probe = blob_dir / f".readyz-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"ok")
        probe.unlink()
        free = shutil.disk_usage(blob_dir).free
    except OSError as exc:
        return Check("blobs", False, f"{blob_dir} not writable: {exc}")
    if free < MIN_FREE_BYTES:
        return Check("blobs", False, f"{blob_dir}: only {free // (1024 * 1024)} MiB free")
    return Check("blobs", True, f"{blob_dir} writable, {free // (1024 * 1024)} MiB free")


class BrokerProbe:
    """Asks the broker for the consumer group (one admin connection per probe, answers cached
    for `ttl` seconds so a busy load balancer does not hammer the broker)."""

    def __init__(self, bootstrap: str | None, ttl: float = 2.0) -> None:
        self.bootstrap = bootstrap
        self.ttl = ttl
        self._cached: tuple[float, list[Check]] | None = None

    async def checks(self) -> list[Check]:
        if self._cached and time.monotonic() - self._cached[0] < self.ttl:
            return self._cached[1]
        result = await self._probe()
        self._cached = (time.monotonic(), result)
        return result

    async def _probe(self) -> list[Check]:
        if not self.bootstrap:
            return [Check("broker", False, "KAFKA_BOOTSTRAP_SERVERS is not set"),
                    Check("consumer_group", False, "no broker to ask")]
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=int(CHECK_TIMEOUT * 1000))
        try:
            await asyncio.wait_for(admin.start(), CHECK_TIMEOUT)
            described = await asyncio.wait_for(admin.describe_consumer_groups([GROUP_ID]), CHECK_TIMEOUT)
        except Exception as exc:
            reason = "no answer" if isinstance(exc, asyncio.TimeoutError) else f"{type(exc).__name__}: {exc}"
            return [Check("broker", False, f"{self.bootstrap}: {reason}"[:300]),
                    Check("consumer_group", False, "no broker to ask")]
        finally:
            await admin.close()
        return [Check("broker", True, f"{self.bootstrap} answers"), group_check(described)]


def group_check(described: Sequence[Any]) -> Check:
    """From a DescribeGroups answer: the workers' group is stable and has members."""
    groups = [g for response in described for g in response.groups]
    if not groups:
        return Check("consumer_group", False, f"group {GROUP_ID} unknown to the broker")
    error_code, _, state, _, _, members = groups[0][:6]
    if error_code:
        return Check("consumer_group", False, f"group {GROUP_ID}: error {error_code}")
    if not members:
        return Check("consumer_group", False, f"no worker in group {GROUP_ID} (state {state})")
    if state != "Stable":
        return Check("consumer_group", False, f"group {GROUP_ID} is rebalancing ({state}, {len(members)} members)")
    return Check("consumer_group", True, f"{len(members)} worker(s), stable")
