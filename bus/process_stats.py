"""What a process of the bus did, counted for the benchmark: SQL statements run, HTTP requests
served.

Off unless `DEMATBUS_STATS_DIR` is set (the bench sets it on its private stack): production counts
nothing and writes nothing. When set, the process writes its counters to
`$DEMATBUS_STATS_DIR/<process>-<pid>.json` every half second and at exit; the bench reads them at
the start and at the end of its measured run and divides the difference by the documents
(bus/bench/usage.py).
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

ENV = "DEMATBUS_STATS_DIR"
WRITE_EVERY = 0.5  # seconds

_counts: Counter[str] = Counter()
_lock = threading.Lock()
_file: Path | None = None


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def count(name: str, n: int = 1) -> None:
    with _lock:
        _counts[name] += n


def start(process: str) -> None:
    """Write this process's counters from now on (a background thread, and once more at exit)."""
    global _file
    directory = os.environ.get(ENV)
    if not directory or _file is not None:
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    _file = Path(directory) / f"{process}-{os.getpid()}.json"
    _write()
    atexit.register(_write)
    threading.Thread(target=_write_forever, name="process-stats", daemon=True).start()


def _write_forever() -> None:
    while True:
        time.sleep(WRITE_EVERY)
        try:
            _write()
        except OSError:  # the directory went away with its run: nobody reads any more
            return


def _write() -> None:
    if _file is None:
        return
    with _lock:
        counts = dict(_counts)
    tmp = _file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "at": time.time(), "counts": counts}))
    tmp.replace(_file)  # readers never see half a file


def count_statements(engine: AsyncEngine) -> None:
    """Count every statement the engine sends to the database (`sql_statements`)."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _counted(*_args: Any) -> None:
        count("sql_statements")


ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


def count_requests(app: ASGIApp) -> ASGIApp:
    """The ASGI app, counting the HTTP requests it serves (`http_requests`)."""

    async def counted(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            count("http_requests")
        await app(scope, receive, send)

    return counted


def read(directory: Path) -> dict[int, dict[str, Any]]:
    """pid → what its last file says ({"at": …, "counts": {…}})."""
    found: dict[int, dict[str, Any]] = {}
    for path in directory.glob("*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found[int(data["pid"])] = data
    return found
