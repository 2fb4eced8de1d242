"""`verif-*` → a `poll` event → the runner asks the remote side now, never twice at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bus.blobs import BlobStore
from bus.stages.runner import RunnerSettings, StageRunner
from bus.store.models import Document, Effect, utcnow
from connectors.base import StageResult
from tests.conftest import SIREN_A


class CountingConnector:
    def __init__(self) -> None:
        self.polls = 0

    async def poll(self, job: Any, remote_id: str) -> StageResult:
        self.polls += 1
        return StageResult("pending")


class Registry:
    def __init__(self, connector: CountingConnector) -> None:
        self.connector = connector

    def get(self, key: str, cfg: dict[str, Any]) -> CountingConnector:
        return self.connector


async def test_poll_now_skips_the_wait_but_not_a_poller_lease(settings, store, keys) -> None:  # type: ignore[no-untyped-def]
    connector = CountingConnector()
    runner = StageRunner(store, BlobStore(settings.blob_dir), Registry(connector),  # type: ignore[arg-type]
                         RunnerSettings(poll_interval=30, lease=120))
    async with store.transaction() as session:
        session.add(Document(id="doc1", flow="actes", siren=SIREN_A, state="transmitted", stage="tdt", meta={}))
        await session.flush()
        session.add(Effect(document_id="doc1", stage="tdt", generation=1, reference="ref-1", status="submitted",
                           remote_id="42", next_at=utcnow() + timedelta(seconds=25)))
    assert await runner.poll_due() == 0  # not due for 25 s
    assert await runner.poll_now("doc1") == 1 and connector.polls == 1
    async with store.transaction() as session:
        effect = await session.get(Effect, 1)
        assert effect.next_at > utcnow() + timedelta(seconds=20)  # "pending": next poll in poll_interval
        effect.next_at = utcnow() + timedelta(seconds=100)  # as if a poller held it (lease)
    assert await runner.poll_now("doc1") == 0 and connector.polls == 1
