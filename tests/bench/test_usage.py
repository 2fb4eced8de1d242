"""The bench's meters: what a process counts into DEMATBUS_STATS_DIR, what /proc says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from bus import process_stats
from bus.bench.usage import TICK, _backend_database, cpu_ticks


def test_a_postgres_backend_names_its_database_and_the_servers_own_processes_none() -> None:
    assert _backend_database("postgres: 15/main: bench dematbus_b 127.0.0.1(43210) idle") == "dematbus_b"
    assert _backend_database("postgres: bench dematbus_b [local] SELECT") == "dematbus_b"
    for own in ("postgres: 15/main: checkpointer", "postgres: 15/main: logical replication launcher",
                "postgres: autovacuum worker dematbus_b"):
        assert _backend_database(own) is None


def test_cpu_ticks_include_the_live_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                              "while time.process_time() - t < 0.3: pass\nprint('spun', flush=True)\ntime.sleep(30)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "spun\n"
        assert cpu_ticks(child.pid) >= 0.29 * TICK
        assert cpu_ticks(os.getpid()) >= cpu_ticks(child.pid) + (os.times().user + os.times().system) * TICK - 2
    finally:
        child.kill()
        child.wait()


@pytest.mark.asyncio
async def test_requests_served_are_counted_and_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process_stats, "_counts", process_stats.Counter())
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"ok": "yes"}

    transport = httpx.ASGITransport(app=process_stats.count_requests(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        for _ in range(3):
            assert (await client.get("/ping")).status_code == 200
    monkeypatch.setattr(process_stats, "_file", tmp_path / "simulators-1.json")
    process_stats._write()
    assert process_stats.read(tmp_path)[os.getpid()]["counts"] == {"http_requests": 3}
