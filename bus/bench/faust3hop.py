"""Ceiling: a bare faust pipeline of three hops (topic → agent → topic → agent → topic → agent).

It runs in a process of its own, like the real worker, with the same consumer settings, against
the same broker: `python -m bus.bench.faust3hop BOOTSTRAP EVENTS OUT_FILE`. The events are produced
before the clock starts; the file receives the events/s once the last one reaches the third hop.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import faust

from bus.worker import faust_options, short_fetch_wait


def build(bootstrap: str, events: int, out: Path, partitions: int = 4) -> faust.App:
    short_fetch_wait(50)
    run = uuid.uuid4().hex[:8]
    app = faust.App(f"ceiling-{run}", **faust_options(bootstrap, out.parent / f"faust-{run}", partitions))
    hops = [app.topic(f"ceiling-{run}-hop{i}", value_serializer="json") for i in range(3)]
    state: dict[str, Any] = {"seen": 0, "start": None}

    @app.agent(hops[0])
    async def first(stream: Any) -> None:
        async for value in stream:
            if state["start"] is None:
                state["start"] = time.perf_counter()
            await hops[1].send(key=str(value["n"] % 64), value=value)

    @app.agent(hops[1])
    async def second(stream: Any) -> None:
        async for value in stream:
            await hops[2].send(key=str(value["n"] % 64), value=value)

    @app.agent(hops[2])
    async def third(stream: Any) -> None:
        async for _ in stream:
            state["seen"] += 1
            if state["seen"] == events:
                elapsed = time.perf_counter() - state["start"]
                out.write_text(json.dumps({"events": events, "seconds": elapsed, "events_per_s": events / elapsed}))
                os._exit(0)  # the measure is taken: no graceful shutdown needed

    @app.task
    async def produce() -> None:
        await asyncio.sleep(1.0)  # let the group settle before the clock can start
        for n in range(events):
            await hops[0].send(key=str(n % 64), value={"n": n, "payload": "x" * 200})

    return app


def main() -> None:
    bootstrap, events, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    app = build(bootstrap, events, out)
    sys.argv = [sys.argv[0], "worker", "--loglevel", "error"]
    faust.Worker(app, loglevel="ERROR", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
