"""The composition root: what each process of the bus runs, built from the settings.

`dematbus api|worker|simulators|watch` (bus/cli/stack.py) and the processes `bus/stack.py` spawns
come here; it is the one place of `bus/` that puts the faces (the API, the console, the watched
folders) and the simulators together with the engine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from bus.config import Settings

# The HTTP servers' event loop and parser: uvloop and httptools cost 0.12-0.29 ms of CPU per
# request where asyncio and h11 cost 0.43 ms (measured for the engine-cost issue, docs/scaling.md).
FAST_SERVER = {"loop": "uvloop", "http": "httptools"}


def run_api(settings: Settings, port: int | None = None) -> None:
    """The HTTP API, with the console, the Pastell API and the public registry."""
    import uvicorn

    from bus import process_stats
    from connectors.inbound.api import create_app

    process_stats.start("api")
    uvicorn.run(create_app(settings), host=settings.host, port=port or settings.api_port, log_level="warning",
                **FAST_SERVER)


def run_simulators(settings: Settings, port: int | None = None) -> None:
    """The simulators (S²low + préfecture, As@lae, i-Parapheur, digital safe) under one port."""
    import uvicorn

    from bus import process_stats
    from connectors.simulators.hub import create_hub

    hub = create_hub(settings.data_dir / "simulators", delay=float(os.environ.get("DEMATBUS_SIM_DELAY", "1.0")),
                     persist=os.environ.get("DEMATBUS_SIM_PERSIST", "1") != "0")
    process_stats.start("simulators")  # the bench counts the requests served: no endpoint of theirs
    app = process_stats.count_requests(hub) if process_stats.enabled() else hub
    uvicorn.run(app, host=settings.host, port=port or settings.simulators_port, log_level="warning", **FAST_SERVER)


def run_watcher(settings: Settings, interval: float | None = None) -> None:
    """The watched folders: deposit what is dropped in `<data-dir>/inbox/<SIREN>/<flow>/`."""
    from bus.blobs import BlobStore
    from bus.deposits import Depositor
    from bus.store.db import Store
    from connectors.inbound.watcher import FolderWatcher, watch_forever

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = Store(settings.db_url)
    watcher = FolderWatcher(settings.inbox_dir, Depositor(store, BlobStore(settings.blob_dir, settings.keys_dir), settings))
    try:
        asyncio.run(watch_forever(watcher, interval or settings.watch_interval))
    except KeyboardInterrupt:
        pass


def run_stream_processor(settings: Settings, loglevel: str = "warning") -> None:
    """The worker: engine, stage runners, relay, poller, reconciler (bus/worker.py)."""
    from bus import process_stats
    from bus.worker import run_worker

    process_stats.start("worker")
    sys.argv = [sys.argv[0]]  # faust's Worker reads argv
    run_worker(settings, settings.kafka_bootstrap_servers or "", loglevel)
