"""The worker's part: two timers, installed by bus/worker.py with one line."""

from __future__ import annotations

import logging
from typing import Any

from bus.blobs import BlobStore
from bus.config import Settings
from bus.courriers.collect import Collector
from bus.courriers.sender import ReplyRunner
from bus.stages.runner import RunnerSettings
from bus.store.db import Store
from connectors.registry import ConnectorRegistry

log = logging.getLogger(__name__)


def install(app: Any, store: Store, blobs: BlobStore, registry: ConnectorRegistry, runner_settings: RunnerSettings,
            settings: Settings) -> None:
    collector = Collector(store, blobs, registry, settings.prefecture_poll_interval)
    replies = ReplyRunner(store, blobs, registry, runner_settings)

    # The round only reads which polls are due: it may look often, each collectivité is asked
    # once per interval (and at once after a Pastell `verif-reponse-tdt`).
    @app.timer(max(0.5, min(settings.prefecture_poll_interval, 10.0)))
    async def prefecture_messages() -> None:
        try:
            await collector.run_due()
        except Exception:
            log.exception("préfecture messages: round failed")

    @app.timer(max(runner_settings.poll_interval, 1.0))
    async def prefecture_replies() -> None:
        await replies.process_due()
