"""Live counters: per collectivité × flow × day, how many documents reached each state, plus the
flow's own volumes (PES bordereaux, mandats, titres, PJ; ACTES per nature), counted by the worker
in faust tables from the `dematbus.moves` topic (bus.moves).

- A document counts once per state, on the day (Europe/Paris) it *first* entered it, like the
  reports from the journal (bus.reports): a redelivered move, a redrive or a replay that re-enters
  a state do not count again. The `dematbus-counted` table remembers which (document, state) was
  counted; both tables are changelogged in Kafka, so a restarted worker resumes where it stopped.
  The day is part of the key rather than a faust windowed table: the keys are then what the API
  serves (siren, flow, day, metric), and a year of days stays queryable instead of expiring.
- How the API reads them: the worker writes a snapshot of the keys that changed to the store
  (table `live_counters`) every `counters_flush` seconds. The API processes (there may be several,
  on other hosts than the workers) already share the store and nothing else; a worker has no web
  server, and with several workers each one holds only its partitions' keys, so asking the
  workers would mean finding and merging them. The snapshot lags the tables by at most one flush.
  Each key only ever comes from one SIREN, hence one partition and one worker: the upsert keeps the
  largest value, so a worker that just lost the partition cannot write an older value back.
- Prometheus: `dematbus_live_documents{flow,metric}`, summed over collectivités and days: no
  label per SIREN. The worker's /metrics has the sums of its own partitions; the API's /metrics
  the sums of the snapshot (every worker), refreshed at each scrape.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import Gauge
from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from bus.reports import DEFAULT_TZ
from bus.store.db import Store
from bus.store.models import LiveCounter, utcnow

log = logging.getLogger(__name__)

LIVE = Gauge("dematbus_live_documents",
             "Live counters summed over collectivités and days (states reached, flow volumes)", ["flow", "metric"])
ZONE = ZoneInfo(DEFAULT_TZ)
SEP = "|"


@dataclass(frozen=True)
class CounterKey:
    siren: str
    flow: str
    day: date
    metric: str

    def encode(self) -> str:
        return SEP.join((self.siren, self.flow, self.day.isoformat(), self.metric))

    @classmethod
    def decode(cls, text: str) -> CounterKey:
        siren, flow, day, metric = text.split(SEP, 3)
        return cls(siren, flow, date.fromisoformat(day), metric)


def local_day(at_utc: datetime) -> date:
    """The journal's naive UTC instant as a day in French local time, as the reports count months."""
    return at_utc.replace(tzinfo=UTC).astimezone(ZONE).date()


def increments(move: dict[str, Any]) -> dict[str, int]:
    """What one (first) move adds: its state, plus the flow volumes when it is the deposit. An
    event that is no state change (`type`, bus.moves.announce_event) adds its volumes only."""
    day = local_day(datetime.fromisoformat(move["at"]))
    out = {} if move.get("type") else {CounterKey(move["siren"], move["flow"], day, move["state"]).encode(): 1}
    for metric, n in (move.get("volumes") or {}).items():
        out[CounterKey(move["siren"], move["flow"], day, metric).encode()] = int(n)
    return out


def counted_key(move: dict[str, Any]) -> str:
    return move["event_id"] if move.get("type") else f"{move['document_id']}{SEP}{move['state']}"


async def save_snapshot(store: Store, values: dict[str, int]) -> None:
    """Upsert counter values, keeping the largest (see the module docstring)."""
    if not values:
        return
    now = utcnow()
    rows = []
    for text, value in values.items():
        k = CounterKey.decode(text)
        rows.append({"siren": k.siren, "flow": k.flow, "day": k.day, "metric": k.metric, "value": int(value),
                     "updated_at": now})
    async with store.transaction() as session:
        dialect = session.bind.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        for start in range(0, len(rows), 500):
            stmt = insert(LiveCounter).values(rows[start:start + 500])
            bigger = stmt.excluded.value > LiveCounter.value
            stmt = stmt.on_conflict_do_update(
                index_elements=["siren", "flow", "day", "metric"],
                set_={"value": case((bigger, stmt.excluded.value), else_=LiveCounter.value),
                      "updated_at": stmt.excluded.updated_at},
            )
            await session.execute(stmt)


async def read_counters(store: Store, *, sirens: list[str] | None = None, flow: str | None = None,
                        start: date | None = None, end: date | None = None) -> list[LiveCounter]:
    """Snapshot rows, `start` and `end` included; `sirens` None = every collectivité."""
    query = select(LiveCounter).order_by(LiveCounter.siren, LiveCounter.flow, LiveCounter.day, LiveCounter.metric)
    if sirens is not None:
        query = query.where(LiveCounter.siren.in_(sorted(set(sirens)) or [""]))
    if flow:
        query = query.where(LiveCounter.flow == flow)
    if start:
        query = query.where(LiveCounter.day >= start)
    if end:
        query = query.where(LiveCounter.day <= end)
    async with store.sessions() as session:
        return list((await session.execute(query)).scalars())


async def live_totals(store: Store) -> dict[tuple[str, str], int]:
    """Snapshot sums per (flow, metric), over every collectivité and day."""
    async with store.sessions() as session:
        rows = await session.execute(select(LiveCounter.flow, LiveCounter.metric, func.sum(LiveCounter.value))
                                     .group_by(LiveCounter.flow, LiveCounter.metric))
        return {(flow, metric): int(n or 0) for flow, metric, n in rows.tuples()}


async def refresh_gauges(store: Store) -> None:
    for (flow, metric), n in (await live_totals(store)).items():
        LIVE.labels(flow=flow, metric=metric).set(n)


class LiveCounters:
    """The faust side: two tables, the agent and the snapshot timer (installed by `install`)."""

    def __init__(self, app: Any, store: Store, topic: Any, partitions: int, flush_every: float = 1.0) -> None:
        self.store = store
        self.counts = app.Table("dematbus-counters", default=int, partitions=partitions)
        self.counted = app.Table("dematbus-counted", default=bool, partitions=partitions)
        self.dirty: set[str] = set()
        self.full_pass_done = False
        self.totals: dict[tuple[str, str], int] = defaultdict(int)

        @app.agent(topic, name="dematbus.counters")
        async def count(stream: Any) -> None:
            async for move in stream:
                try:
                    self.apply(move)
                except Exception:
                    log.exception("counters: could not count %s", move)

        @app.timer(flush_every)
        async def flush() -> None:
            await self.flush()

    def apply(self, move: dict[str, Any]) -> bool:
        """Count a move once; returns whether it counted."""
        seen = counted_key(move)
        if self.counted[seen]:
            return False
        for key, n in increments(move).items():
            self.counts[key] += n
            self.dirty.add(key)
            k = CounterKey.decode(key)
            self.totals[(k.flow, k.metric)] += n
            LIVE.labels(flow=k.flow, metric=k.metric).set(self.totals[(k.flow, k.metric)])
        self.counted[seen] = True
        return True

    async def flush(self) -> None:
        if not self.full_pass_done:
            # After a start (tables recovered from their changelog): write everything once and
            # rebuild the Prometheus sums.
            keys = [str(k) for k in self.counts]
            self.totals.clear()
            for key in keys:
                k = CounterKey.decode(key)
                self.totals[(k.flow, k.metric)] += int(self.counts[key])
            for (flow, metric), n in self.totals.items():
                LIVE.labels(flow=flow, metric=metric).set(n)
            self.dirty.update(keys)
            self.full_pass_done = True
        if not self.dirty:
            return
        batch, self.dirty = self.dirty, set()
        try:
            await save_snapshot(self.store, {key: int(self.counts[key]) for key in batch})
        except Exception:
            log.exception("counters: snapshot failed; retrying on the next flush")
            self.dirty |= batch
