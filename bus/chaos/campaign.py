"""One campaign, top to bottom: private stack → deposits under kills and faults → calm → verdict."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import and_, func, or_, select

from bus.bench.pipeline import BenchOptions, new_stack, temporary_dir
from bus.bench.pipeline import (
    _setup as setup_collectivites,  # the bench's collectivités and key
)
from bus.bench.workload import BenchDocument, bench_sirens, workload
from bus.chaos import chart
from bus.chaos.client import Deposits, deposit_all
from bus.chaos.faults import FaultInjector
from bus.chaos.monkey import Monkey
from bus.chaos.options import ChaosOptions
from bus.chaos.verify import verdict
from bus.demo import register_at_simulators
from bus.flows.definition import flow_names, load_flow
from bus.stack import Stack
from bus.store.db import Store
from bus.store.models import Document, utcnow

CONNECTOR_TIMEOUT = 10.0
# On top of the bench's fast stack: retries spread over ~15 s (an episode of faults does not
# exhaust them at once), a connector timeout the simulators' held answers exceed, and a
# reconciler that redrives what a kill left behind within a minute.
CHAOS_ENV = {"DEMATBUS_CONNECTOR_TIMEOUT": str(CONNECTOR_TIMEOUT), "DEMATBUS_RETRY_BACKOFF": "1",
             "DEMATBUS_STAGE_TIMEOUT": "60", "DEMATBUS_RECONCILE_INTERVAL": "10"}
FAULT_TICK = 2.0
CALM_SHARE = 0.95  # without a kill budget, the chaos stops once this share of documents finished


@dataclass
class ChaosResult:
    report: dict[str, Any]
    svg: str

    @property
    def ok(self) -> bool:
        return bool(self.report["verdict"]["ok"])


def run_chaos(options: ChaosOptions, console: Console, data_dir: Path | None = None) -> ChaosResult:
    tmp = temporary_dir() if data_dir is None else None
    stack = new_stack(BenchOptions(database_url=options.database_url), Path(tmp.name) if tmp else data_dir)  # type: ignore[arg-type]
    stack.env.update(CHAOS_ENV)
    if not options.database_url:  # a private store, never the one $DEMATBUS_DATABASE_URL names
        stack.env["DEMATBUS_DATABASE_URL"] = f"sqlite+aiosqlite:///{stack.data_dir / 'dematbus.db'}"
    try:
        with console.status(f"starting a private stack with {options.workers} worker(s)…"):
            stack.start_broker()
            sirens = bench_sirens(options.collectivites)
            key = asyncio.run(setup_collectivites(stack, sirens))
            stack.start_simulators()
            stack.start_api()
            workers = [f"worker-{k + 1}" for k in range(options.workers)]
            for name in workers:
                stack.start_worker(name)
            stack.wait_healthy()
            stack.wait_workers(options.workers, timeout=120)
            register_at_simulators(stack.simulators_url, [(s, f"Commune de mesure {i}", "044", "1", "31")
                                                          for i, s in enumerate(sirens)])
        with console.status(f"generating {options.docs} documents…"):
            docs = workload(options.docs, options.mix, sirens, seed=options.seed)
        return asyncio.run(_campaign(options, stack, key, docs, workers, console))
    finally:
        with console.status("stopping the private stack…"):
            stack.stop()
        if tmp:
            tmp.cleanup()


async def _count_finished(store: Store, since: Any) -> int:
    """Documents of this campaign resting in a terminal state of their own flow."""
    finished = or_(*(and_(Document.flow == name, Document.state.in_(load_flow(name).terminal)) for name in flow_names()))
    async with store.sessions() as session:
        return int((await session.execute(
            select(func.count()).select_from(Document).where(Document.created_at >= since, finished)
        )).scalar_one())


async def _campaign(options: ChaosOptions, stack: Stack, key: str, docs: list[BenchDocument], workers: list[str],
                    console: Console) -> ChaosResult:
    run = uuid.uuid4().hex[:8]
    monkey = Monkey(stack, options.kills, options.kill_every, random.Random(options.seed), workers,
                    max_kills=options.max_kills)
    faults = FaultInjector(stack.simulators_url, options.faults, random.Random(options.seed + 1),
                           hold_seconds=CONNECTOR_TIMEOUT + 2)
    store = Store(stack.settings.db_url)
    since, start = utcnow(), time.monotonic()
    samples: list[tuple[float, int, int]] = []
    restarts: list[tuple[float, str]] = []
    phase = {"chaos": True, "calm_at": None}
    acked = [0]
    consumed: dict[str, dict[str, int]] = {}

    def now() -> float:
        return time.monotonic() - start

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        deposited_bar = progress.add_task("deposited", total=len(docs))
        finished_bar = progress.add_task("finished", total=len(docs))
        chaos_bar = progress.add_task("chaos", total=None)

        def on_ack() -> None:
            acked[0] += 1
            progress.advance(deposited_bar)

        async def supervision() -> None:
            next_fault = FAULT_TICK
            async with httpx.AsyncClient(timeout=10) as sims:
                while True:
                    restarts.extend((round(now(), 2), said) for said in stack.supervise())
                    if phase["chaos"]:
                        monkey.maybe_strike(now())
                        if now() >= next_fault:
                            next_fault = now() + FAULT_TICK
                            try:
                                await faults.tick(sims, now())
                            except httpx.HTTPError:
                                pass  # the simulators are busy: this tick draws nothing
                    kills = ", ".join(f"{k}×{n}" for k, n in monkey.counts().items())
                    progress.update(chaos_bar, description=(
                        f"{'chaos' if phase['chaos'] else 'calm'}: kills {kills or '-'}, faults {len(faults.events)}"))
                    await asyncio.sleep(0.25)

        supervisor = asyncio.create_task(supervision())
        deposits_job = asyncio.create_task(deposit_all(stack.api_url, key, docs, run, options.concurrency,
                                                       options.rate, on_ack))
        deadline: float | None = None
        try:
            while True:
                finished = await _count_finished(store, since)
                samples.append((round(now(), 2), acked[0], finished))
                progress.update(finished_bar, completed=finished)
                flowing = not deposits_job.done() or finished < acked[0]
                if phase["chaos"] and deposits_job.done() and (
                        not flowing or (monkey.exhausted if options.max_kills is not None
                                        else finished >= CALM_SHARE * acked[0])):
                    phase["chaos"], phase["calm_at"] = False, round(now(), 2)
                    deadline = time.monotonic() + options.drain_timeout
                    async with httpx.AsyncClient(timeout=30) as sims:
                        consumed = await faults.calm(sims)
                if not flowing and not phase["chaos"]:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    break
                await asyncio.sleep(1.0)
            deposits: Deposits = await deposits_job
        finally:
            supervisor.cancel()
            deposits_job.cancel()
    seconds = now()
    with console.status("checking the invariants (store, simulators, journal chains)…"):
        outcome = await verdict(store, list(deposits.acknowledged.values()), stack.simulators_url)
    await store.close()
    report = {
        "options": {**asdict(options), "database_url": "sqlite (private)" if not options.database_url else "external"},
        "seconds": round(seconds, 1),
        "chaos_seconds": phase["calm_at"],
        "docs_per_s": round(samples[-1][2] / seconds, 2) if seconds else 0.0,
        "deposits": {"acknowledged": len(deposits.acknowledged), "replayed_by_idempotency_key": deposits.replayed,
                     "retries": deposits.retries, "refused": len(deposits.refused),
                     "refusals": dict(list(deposits.refused.items())[:20])},
        "kills": {**monkey.counts(), "events": [asdict(k) for k in monkey.kills]},
        "restarts": [{"at": t, "what": said} for t, said in restarts],
        "faults": {"consumed": consumed, "episodes": len(faults.events),
                   "events": [asdict(e) for e in faults.events]},
        "verdict": outcome,
        "timeline": samples,
    }
    svg = chart.render(samples, [(k.at, k.kind) for k in monkey.kills], [(e.at, e.target) for e in faults.events],
                       phase["calm_at"], f"dematbus chaos: {len(docs)} documents, "
                                         f"{len(monkey.kills)} kills, {len(faults.events)} fault episodes")
    return ChaosResult(report, svg)
