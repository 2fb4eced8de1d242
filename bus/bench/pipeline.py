"""The measured run: a private embedded stack, a mixed workload deposited concurrently, every
document followed to its terminal state, then figures read back from the journal."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from rich.progress import Progress
from sqlalchemy import and_, func, or_, select

from bus import process_stats
from bus.bench.usage import Meter
from bus.bench.workload import BenchDocument, bench_sirens, workload
from bus.collectivites import add_collectivite, simulator_connectors
from bus.demo import register_at_simulators
from bus.flows.definition import load_flow, terminal_by_flow
from bus.stack import Stack
from bus.store.apikeys import create_key
from bus.store.db import Store
from bus.store.models import Document, JournalEntry, utcnow
from connectors.signature.certificates import make_test_certificate

FAST = {"DEMATBUS_POLL_INTERVAL": "0.05", "DEMATBUS_SIM_DELAY": "0", "DEMATBUS_RETRY_BACKOFF": "0.2",
        "DEMATBUS_SIM_PERSIST": "0"}  # a throw-away stack: simulator state in memory only


@dataclass
class BenchOptions:
    docs: int = 200
    mix: dict[str, float] = field(default_factory=lambda: {"actes": 0.5, "helios": 0.3, "rh": 0.2})
    workers: int = 1
    concurrency: int = 16  # deposits in flight at once
    collectivites: int = 8
    database_url: str | None = None  # default: SQLite in the run's directory
    timeout: float = 3600


@dataclass
class PipelineFigures:
    docs: int
    seconds: float
    docs_per_s: float
    per_flow_docs_per_s: dict[str, float]
    deposits_per_s: float
    latency_ms: dict[str, float]
    stage_latency_ms: dict[str, dict[str, float]]
    states: dict[str, int]
    peak_rss_mb: dict[str, float]
    per_doc: dict[str, Any]  # CPU, SQL statements, Kafka messages, HTTP requests (bus.bench.usage)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 1)

    return {"p50": round(statistics.median(ordered), 1), "p95": at(0.95), "p99": at(0.99)}


async def _setup(stack: Stack, sirens: list[str]) -> str:
    store = Store(stack.settings.db_url)
    await store.migrate()
    async with store.transaction() as session:
        for i, siren in enumerate(sirens):
            cert_dir = stack.data_dir / "certs" / siren
            cert, key = make_test_certificate(f"Maire {i}", f"Commune de mesure {i}", cert_dir)
            cert.rename(cert_dir / "cert.pem")
            key.rename(cert_dir / "key.pem")
            await add_collectivite(session, siren=siren, name=f"Commune de mesure {i}", departement="044",
                                   arrondissement="1", nature_code="31",
                                   connectors=simulator_connectors(siren, "pades", cert_dir))
        key = await create_key(session, sirens, ["depositor", "rh"], name="bench")
    await store.close()
    return key


async def _deposit_all(api_url: str, key: str, docs: list[BenchDocument], concurrency: int,
                       progress: Progress) -> tuple[list[str], float]:
    task = progress.add_task(f"deposit {len(docs)} documents ({concurrency} at a time)", total=len(docs))
    ids: list[str] = [""] * len(docs)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(docs)):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=api_url, timeout=120, limits=limits,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        async def depositor() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                resp = await client.post("/api/v1/documents", data=docs[i].form, files=docs[i].files)
                if resp.status_code != 201:
                    raise RuntimeError(f"deposit refused ({resp.status_code}): {resp.text[:300]}")
                ids[i] = resp.json()["id"]
                progress.advance(task)

        start = time.perf_counter()
        await asyncio.gather(*(depositor() for _ in range(concurrency)))
        return ids, time.perf_counter() - start


def _terminal() -> Any:
    """Documents resting in a terminal state of their own flow."""
    return or_(*(and_(Document.flow == flow, Document.state.in_(states))
                 for flow, states in terminal_by_flow().items()))


async def _wait_terminal(store: Store, since: datetime, total: int, timeout: float, progress: Progress) -> None:
    task = progress.add_task("pipeline: documents in a terminal state", total=total)
    deadline = time.monotonic() + timeout
    while True:
        async with store.sessions() as session:
            done = (await session.execute(
                select(func.count()).select_from(Document)
                .where(_terminal(), Document.created_at >= since)
            )).scalar_one()
        progress.update(task, completed=done)
        if done >= total:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{total - done} documents still running after {timeout:.0f} s")
        await asyncio.sleep(0.25)


async def _figures_from_journal(store: Store, since: datetime) -> tuple[dict[str, Any], dict[str, int]]:
    """Per document of this run: deposit time, terminal time, when each stage started and ended."""
    async with store.sessions() as session:
        docs = {d.id: d for d in (await session.execute(select(Document).where(Document.created_at >= since))).scalars()}
        rows = (await session.execute(
            select(JournalEntry.document_id, JournalEntry.at, JournalEntry.state)
            .join(Document, Document.id == JournalEntry.document_id)
            .where(Document.created_at >= since).order_by(JournalEntry.id)
        )).all()
    timeline: dict[str, list[tuple[Any, str]]] = defaultdict(list)
    for document_id, at, state in rows:
        timeline[document_id].append((at, state))
    end_to_end: list[float] = []
    per_flow: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    stages: dict[str, list[float]] = defaultdict(list)
    for doc_id, entries in timeline.items():
        doc = docs[doc_id]
        first, last = entries[0][0], entries[-1][0]
        end_to_end.append((last - first).total_seconds() * 1000)
        per_flow[doc.flow].append((first, last))
        for stage in load_flow(doc.flow).stages:
            started = next((at for at, state in entries if state == stage.running), None)
            ended = next((at for at, state in entries if state == stage.done and started and at >= started), None)
            if started and ended:
                stages[f"{doc.flow}.{stage.name}"].append((ended - started).total_seconds() * 1000)
    return ({"end_to_end": end_to_end, "per_flow": per_flow, "stages": stages},
            dict(Counter(d.state for d in docs.values())))


def _peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def run_pipeline(options: BenchOptions, stack: Stack, progress: Progress) -> PipelineFigures:
    sirens = bench_sirens(options.collectivites)
    key = asyncio.run(_setup(stack, sirens))
    stats = stack.data_dir / "stats"
    stack.env[process_stats.ENV] = str(stats)  # the processes count what they do (bus.process_stats)
    stack.start_simulators()
    stack.start_api()
    for k in range(options.workers):
        stack.start_worker(f"worker-{k + 1}")
    stack.wait_healthy()
    stack.wait_workers(options.workers)
    register_at_simulators(stack.simulators_url, [(s, f"Commune de mesure {i}", "044", "1", "31")
                                                  for i, s in enumerate(sirens)])
    gen = progress.add_task(f"generate {options.docs} documents", total=None)
    docs = workload(options.docs, options.mix, sirens)
    progress.remove_task(gen)

    pids = {name: proc.pid for name, proc in stack.procs.items()}
    if stack.broker and stack.broker.proc:
        pids["broker"] = stack.broker.proc.pid

    async def measured() -> tuple[float, float, dict[str, Any], dict[str, int], dict[str, Any]]:
        store = Store(stack.settings.db_url)
        try:
            meter = Meter(pids, stats, stack.bootstrap, stack.settings.db_url)
            await meter.start()
            since = utcnow()  # documents of earlier runs sharing the database are left out
            start = time.perf_counter()
            _, deposit_seconds = await _deposit_all(stack.api_url, key, docs, options.concurrency, progress)
            await _wait_terminal(store, since, len(docs), options.timeout, progress)
            seconds = time.perf_counter() - start
            usage = await meter.stop()
            journal, states = await _figures_from_journal(store, since)
            return seconds, deposit_seconds, journal, states, usage.per_doc(len(docs))
        finally:
            await store.close()

    seconds, deposit_seconds, journal, states, per_doc = asyncio.run(measured())
    rss = {name: _peak_rss_mb(pid) for name, pid in pids.items()}
    per_flow = {}
    for flow, spans in journal["per_flow"].items():
        window = (max(e for _, e in spans) - min(s for s, _ in spans)).total_seconds()
        per_flow[flow] = round(len(spans) / window, 2) if window > 0 else 0.0
    return PipelineFigures(
        docs=len(docs), seconds=round(seconds, 2), docs_per_s=round(len(docs) / seconds, 2),
        per_flow_docs_per_s=per_flow, deposits_per_s=round(len(docs) / deposit_seconds, 1),
        latency_ms=percentiles(journal["end_to_end"]),
        stage_latency_ms={name: percentiles(values) for name, values in sorted(journal["stages"].items())},
        states=states, peak_rss_mb=rss, per_doc=per_doc,
    )


def new_stack(options: BenchOptions, data_dir: Path) -> Stack:
    env = dict(FAST)
    if options.database_url:
        env["DEMATBUS_DATABASE_URL"] = options.database_url
    return Stack(data_dir, env=env)


def temporary_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="dematbus-bench-")
