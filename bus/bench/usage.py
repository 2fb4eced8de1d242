"""What the stack spent over the measured run: CPU of every process, SQL statements, Kafka
messages, HTTP requests to the simulators.

- CPU: utime + stime (and cutime + cstime, their waited children) from `/proc/<pid>/stat` of each
  process of the stack and of its live descendants, at the start and at the end of the run. With
  PostgreSQL on this machine, the whole server the same way: its postmaster (found as the parent
  of a backend `postgres: … <database> …`) and every descendant. Per database would be an
  undercount: backends come and go with the pool's connections (several per document), and one
  that lives a few milliseconds shows 0 ticks of its own, while the postmaster's cutime adds
  exited backends exactly. The whole server includes other databases' work: the figure's note
  names the databases it also served at the start or the end of the run.
- SQL statements and HTTP requests: the counters each process writes to `DEMATBUS_STATS_DIR`
  (bus/process_stats.py), read at the start and once all have written after the end.
- Kafka messages: the sum of the end offsets of every partition of every topic on the broker,
  faust's changelogs included.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.engine import make_url

from bus import process_stats

TICK = os.sysconf("SC_CLK_TCK")


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
    client = words[2] if len(words) >= 3 else ""
    return words[1] if client.endswith(")") or client == "[local]" else None


def postgres_processes(database: str) -> tuple[int | None, set[str]]:
    """The postmaster whose backends serve `database` (None when the server runs on another
    machine), and the other databases its backends serve right now."""
    backends: list[tuple[str, int]] = []  # (database, parent)
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        cmdline = _cmdline(pid)
        database_of = _backend_database(cmdline) if cmdline.startswith("postgres:") else None
        fields = _stat(pid) if database_of else None
        if database_of and fields:
            backends.append((database_of, int(fields[1])))
    postmaster = next((ppid for db, ppid in backends if db == database), None)
    return postmaster, {db for db, ppid in backends if ppid == postmaster and db != database}


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
    postgres_note: str | None  # what "postgres" in cpu_ms_by_process covers (None: SQLite)
    sql_statements: int
    kafka_messages: int
    http_requests: int

    def per_doc(self, docs: int) -> dict[str, object]:
        by_process = {name: round(ms / docs, 2) for name, ms in self.cpu_ms_by_process.items()}
        return {
            "cpu_ms_per_doc": round(sum(self.cpu_ms_by_process.values()) / docs, 2),
            "cpu_ms_per_doc_by_process": by_process,
            **({"cpu_postgres": self.postgres_note} if self.postgres_note else {}),
            "sql_statements_per_doc": round(self.sql_statements / docs, 2),
            "kafka_messages_per_doc": round(self.kafka_messages / docs, 2),
            "http_requests_per_doc": round(self.http_requests / docs, 2),
        }


class Meter:
    """`start()` just before the first deposit, `stop()` once every document is terminal."""

    def __init__(self, pids: dict[str, int], stats_dir: Path, bootstrap: str, db_url: str) -> None:
        self.pids, self.stats_dir, self.bootstrap = dict(pids), stats_dir, bootstrap
        self.database = postgres_database(db_url)
        self.other_databases: set[str] = set()
        if self.database:
            postmaster, self.other_databases = postgres_processes(self.database)
            if postmaster is not None:
                self.pids["postgres"] = postmaster

    async def start(self) -> None:
        self.kafka = await kafka_messages(self.bootstrap)
        self.counts = process_stats.read(self.stats_dir)
        self.cpu = {name: cpu_ticks(pid) for name, pid in self.pids.items()}

    async def stop(self) -> Usage:
        cpu = {name: (cpu_ticks(pid) - self.cpu[name]) * 1000 / TICK for name, pid in self.pids.items()}
        note = None
        if self.database and "postgres" not in self.pids:
            note = "not counted: the server runs on another machine"
        elif self.database:
            self.other_databases |= postgres_processes(self.database)[1]
            note = "the whole server" + (f", which also served {', '.join(sorted(self.other_databases))}"
                                         if self.other_databases else "")
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

        return Usage(cpu_ms_by_process=cpu, postgres_note=note, sql_statements=delta("sql_statements"), kafka_messages=kafka,
                     http_requests=delta("http_requests"))
