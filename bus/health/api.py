"""`/healthz` and `/readyz` of the API (mounted by connectors.inbound.api)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bus.config import Settings
from bus.health.checks import (
    BrokerProbe,
    blobs_check,
    outbox_check,
    report,
    store_check,
)
from bus.store.db import Store


def health_router(settings: Settings, store: Store) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    probe = BrokerProbe(settings.kafka_bootstrap_servers)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        db, outbox, broker = await asyncio.gather(
            store_check(store), outbox_check(store, settings.ready_outbox_lag), probe.checks())
        blobs = await asyncio.to_thread(blobs_check, settings.blob_dir)
        status, body = report([db, blobs, outbox, *broker])
        return JSONResponse(body, status_code=status)

    return router
