"""What the stack spent over the measured run: CPU of every process, SQL statements, Kafka
messages, HTTP requests to the simulators.

- CPU: utime + stime (and cutime + cstime, their waited children) from `/proc/<pid>/stat` of each
  process of the stack and of its live descendants, at the start and at the end of the run. With
  PostgreSQL on this machine, the backends serving the bench's database (`postgres: … <db> …`)
  too: they come and go with the pool's connections, so a thread samples them every 50 ms and a
  backend counts up to its last sample.
- SQL statements and HTTP requests: the counters each process writes to `DEMATBUS_STATS_DIR`
  (bus/process_stats.py), read at the start and once all have written after the end.
- Kafka messages: the sum of the end offsets of every partition of every topic on the broker,
  faust's changelogs included.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.engine import make_url

from bus import process_stats

TICK = os.sysconf("SC_CLK_TCK")
SAMPLE_EVERY = 0.05  # seconds, PostgreSQL backends


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 onwards)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def _ticks(fields: list[str]) -> int:
    return sum(int(v) for v in fields[11:15])  # utime stime cutime cstime (fields 14-17)


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            kids += [int(k) for k in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    except OSError:
        pass
    return kids


def cpu_ticks(pid: int) -> int:
    """CPU clock ticks of a process and of all its live descendants (their waited children too)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        fields = _stat(current)
        if fields is not None:
            total += _ticks(fields)
            todo += _children(current)
    return total


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _backend_database(cmdline: str) -> str | None:
    """`postgres: [cluster: ]user database host(port) activity` → database; None for the server's
    own processes (checkpointer, walwriter…)."""
    words = cmdline.removeprefix("postgres:").split()
    if words and words[0].endswith(":"):  # cluster_name
        words = words[1:]
    return words[1] if len(words) >= 3 else None


class PostgresBackends:
    """CPU of the backends serving one database, sampled by a thread while the run lasts."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.servers = self._servers()
        self.first: dict[int, int] = {}  # pid → ticks when first seen
        self.last: dict[int, int] = {}
        self.others: set[int] = set()  # postgres processes of other databases, or the server's own
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="postgres-cpu", daemon=True)

    def _servers(self) -> set[int]:
        """The postmasters whose backends serve the database: none when the server runs elsewhere."""
        servers = set()
        for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
            cmdline, fields = _cmdline(pid), _stat(pid)
            if cmdline.startswith("postgres:") and _backend_database(cmdline) == self.database and fields:
                servers.add(int(fields[1]))  # ppid
        return servers

    def start(self) -> None:
        self.sample(first=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self.sample()

    def sample(self, first: bool = False) -> None:
        for server in self.servers:
            for pid in _children(server):
                if pid in self.others:
                    continue
                if pid not in self.last:
                    cmdline = _cmdline(pid)
                    if not cmdline.startswith("postgres:"):
                        continue  # forked, not yet a backend: its title comes with its database
                    if _backend_database(cmdline) != self.database:
                        self.others.add(pid)
                        continue
                fields = _stat(pid)
                if fields is None:
                    continue
                if pid not in self.first:
                    self.first[pid] = _ticks(fields) if first else 0  # a backend born in the run
                self.last[pid] = _ticks(fields)

    def stop(self) -> int:
        """Ticks spent over the run."""
        self._stop.set()
        self._thread.join()
        self.sample()
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def postgres_database(db_url: str) -> str | None:
    url = make_url(db_url)
    return url.database if url.get_backend_name() == "postgresql" else None


async def kafka_messages(bootstrap: str) -> int:
    """Every message the broker holds, summed over all partitions of all topics."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        topics = await consumer.topics()
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        return sum((await consumer.end_offsets(partitions)).values()) if partitions else 0
    finally:
        await consumer.stop()


@dataclass
class Usage:
    cpu_ms_by_process: dict[str, float]
    sql_statements: int
    kafka_messages: int
    http_requests: int

    def per_doc(self, docs: int) -> dict[str, object]:
        by_process = {name: round(ms / docs, 2) for name, ms in self.cpu_ms_by_process.items()}
        return {
            "cpu_ms_per_doc": round(sum(self.cpu_ms_by_process.values()) / docs, 2),
            "cpu_ms_per_doc_by_process": by_process,
            "sql_statements_per_doc": round(self.sql_statements / docs, 2),
            "kafka_messages_per_doc": round(self.kafka_messages / docs, 2),
            "http_requests_per_doc": round(self.http_requests / docs, 2),
        }


class Meter:
    """`start()` just before the first deposit, `stop()` once every document is terminal."""

    def __init__(self, pids: dict[str, int], stats_dir: Path, bootstrap: str, db_url: str) -> None:
        self.pids, self.stats_dir, self.bootstrap = pids, stats_dir, bootstrap
        database = postgres_database(db_url)
        self.postgres = PostgresBackends(database) if database else None
        if self.postgres and not self.postgres.servers:
            self.postgres = None  # a server on another machine: its CPU is not seen from here

    async def start(self) -> None:
        self.kafka = await kafka_messages(self.bootstrap)
        self.counts = process_stats.read(self.stats_dir)
        self.cpu = {name: cpu_ticks(pid) for name, pid in self.pids.items()}
        if self.postgres:
            self.postgres.start()

    async def stop(self) -> Usage:
        cpu = {name: (cpu_ticks(pid) - self.cpu[name]) * 1000 / TICK for name, pid in self.pids.items()}
        if self.postgres:
            cpu["postgres"] = self.postgres.stop() * 1000 / TICK
        kafka = await kafka_messages(self.bootstrap) - self.kafka
        ended, deadline = time.time(), time.monotonic() + 5
        live = set(self.pids.values())
        counts = process_stats.read(self.stats_dir)
        while time.monotonic() < deadline and any(c["at"] < ended for pid, c in counts.items() if pid in live):
            await asyncio.sleep(0.1)  # each process writes its counters every half second
            counts = process_stats.read(self.stats_dir)

        def delta(name: str) -> int:
            return sum(c["counts"].get(name, 0) - self.counts.get(pid, {}).get("counts", {}).get(name, 0)
                       for pid, c in counts.items())

        return Usage(cpu_ms_by_process=cpu, sql_statements=delta("sql_statements"), kafka_messages=kafka,
                     http_requests=delta("http_requests"))
