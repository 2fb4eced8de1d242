"""The worker's HTTP server (`DEMATBUS_WORKER_METRICS_PORT`): `/metrics`, `/healthz`, `/readyz`.

It runs in a thread, so it answers even when the worker's event loop is stuck; the checks
themselves run on that loop (`/healthz` fails when the loop does not answer within
`LOOP_TIMEOUT` seconds, which is exactly when the worker stops consuming).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from bus.broker_epoch import BrokerEpoch
from bus.config import Settings
from bus.health.checks import Check, blobs_check, outbox_check, report, store_check
from bus.store.db import Store

LOOP_TIMEOUT = 5.0
log = logging.getLogger(__name__)
Readiness = Callable[[], Awaitable[list[Check]]]


def worker_readiness(app: Any, store: Store, epoch: BrokerEpoch, settings: Settings) -> Readiness:
    """The checks of one worker: store, broker (its last answer to the epoch watch), blobs,
    outbox lag, and the partitions this worker holds in the consumer group."""
    broker_silence = max(15.0, 3 * settings.broker_epoch_interval + epoch.timeout)

    def broker() -> Check:
        if epoch.last_contact is None:
            return Check("broker", False, f"{epoch.bootstrap} has not answered yet")
        silent = time.monotonic() - epoch.last_contact
        if silent > broker_silence:
            return Check("broker", False, f"{epoch.bootstrap} silent for {silent:.0f} s")
        return Check("broker", True, f"{epoch.bootstrap} answered {silent:.0f} s ago")

    def group() -> Check:
        consumer = app.consumer
        if consumer.crashed:
            return Check("consumer_group", False, f"consumer crashed: {consumer.crash_reason!r}")
        if app.rebalancing:
            return Check("consumer_group", False, "rebalancing")
        held = len(consumer.assignment())
        if not held:
            return Check("consumer_group", False, "this worker holds no partition")
        return Check("consumer_group", True, f"holds {held} partition(s)")

    async def checks() -> list[Check]:
        db, outbox = await asyncio.gather(store_check(store), outbox_check(store, settings.ready_outbox_lag))
        blobs = await asyncio.to_thread(blobs_check, settings.blob_dir)
        return [db, broker(), blobs, outbox, group()]

    return checks


class WorkerHealthServer:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self.loop: asyncio.AbstractEventLoop | None = None
        self.readiness: Readiness | None = None
        self.before_metrics: Callable[[], Awaitable[Any]] | None = None

    def bind(self, loop: asyncio.AbstractEventLoop, readiness: Readiness,
             before_metrics: Callable[[], Awaitable[Any]] | None = None) -> None:
        """Called from the worker's loop once it runs; `before_metrics` refreshes gauges read from
        the store (the live counters) at each scrape."""
        self.loop, self.readiness, self.before_metrics = loop, readiness, before_metrics

    def _on_loop(self, make: Callable[[], Awaitable[Any]], timeout: float) -> Any:
        if self.loop is None:
            raise RuntimeError("the worker is still starting")
        return asyncio.run_coroutine_threadsafe(make(), self.loop).result(timeout)  # type: ignore[arg-type]

    def answer(self, path: str) -> tuple[int, str, bytes]:
        if path == "/metrics":
            if self.before_metrics is not None:
                try:
                    self._on_loop(self.before_metrics, LOOP_TIMEOUT)
                except Exception:  # a stuck loop or store: the other metrics are still served
                    log.warning("could not refresh the gauges read from the store", exc_info=True)
            return 200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY)
        if path == "/healthz":
            try:
                self._on_loop(lambda: asyncio.sleep(0), LOOP_TIMEOUT)
            except Exception as exc:
                return _json(503, {"status": "not alive", "reason": _why(exc, "event loop")})
            return _json(200, {"status": "alive"})
        if path == "/readyz":
            try:
                checks = self._on_loop(lambda: self.readiness(), LOOP_TIMEOUT * 2)  # type: ignore[misc]
            except Exception as exc:
                return _json(503, {"status": "not ready", "failing": [_why(exc, "readiness checks")]})
            return _json(*report(checks))
        return _json(404, {"error": "not found"})

    def start(self) -> ThreadingHTTPServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                status, content_type, body = server.answer(self.path.split("?", 1)[0])
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:  # probes every few seconds: no access log
                pass

        httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, name="dematbus-health", daemon=True).start()
        return httpd


def _json(status: int, body: dict[str, Any]) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(body, ensure_ascii=False).encode()


def _why(exc: BaseException, what: str) -> str:
    if isinstance(exc, TimeoutError):
        return f"{what}: no answer from the event loop within the timeout (blocked)"
    return f"{what}: {exc}"
