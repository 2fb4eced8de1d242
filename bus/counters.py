"""Live counters: per collectivité × flow × day, how many documents reached each state, plus the
flow's own volumes (PES bordereaux, mandats, titres, PJ; ACTES per nature), counted in the store
(table `live_counters`) by the very transaction that journals the move (bus.moves.announce).

- A document counts once per state, on the day (Europe/Paris) it *first* entered it, like the
  reports from the journal (bus.reports): a replay, or a withdrawal, that re-enters a state does
  not count again. Whether the document was in that state before is read from its journal, and
  only where it can have been (bus.moves): from its second generation on (a replay), for a move
  the engine did not make (annulation, publication), or for a state two stages of its flow share.
  An event that is no state change (a préfecture letter, bus.moves.announce_event) counts its
  volumes: it is journaled once.
- A transaction's increments are summed and written just before it commits, in one upsert
  (`value = value + n`, `insert … on conflict do update` on SQLite and PostgreSQL) with its keys
  in order: two transactions counting the same keys wait for each other, never deadlock. A
  transaction rolled back (a concurrent move, a crash) counts nothing; the one that commits
  counts with its journal entry. The counters are thus never behind the journal nor ahead of it,
  whatever the number of workers, and nothing is replayed from Kafka after a restart.
- The API reads the table (the API processes share the store and nothing else).
- Prometheus: `dematbus_live_documents{flow,metric}`, summed over collectivités and days: no
  label per SIREN. The API and a worker refresh it from the table at each scrape of their
  `/metrics`: every process shows the store's totals, so do not sum them over processes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import Gauge
from sqlalchemy import bindparam, event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bus.reports import DEFAULT_TZ
from bus.store.db import Store
from bus.store.models import LiveCounter, utcnow

log = logging.getLogger(__name__)

LIVE = Gauge("dematbus_live_documents",
             "Live counters summed over collectivités and days (states reached, flow volumes)", ["flow", "metric"])
ZONE = ZoneInfo(DEFAULT_TZ)
SEP = "|"
PENDING = "dematbus.live_counts"  # Session.info key: the increments the transaction will write


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


def count(session: AsyncSession, move: dict[str, Any]) -> None:
    """Count `move` (a bus.moves message) when the caller's transaction commits."""
    pending: defaultdict[str, int] = session.info.setdefault(PENDING, defaultdict(int))
    for key, n in increments(move).items():
        pending[key] += n


@event.listens_for(Session, "before_commit")
def _write_counts(session: Session) -> None:
    pending = session.info.pop(PENDING, None)
    if pending:
        now = utcnow()
        rows = []
        for text in sorted(pending):  # the same order in every transaction: waits, no deadlock
            k = CounterKey.decode(text)
            rows.append({"siren": k.siren, "flow": k.flow, "day": k.day, "metric": k.metric,
                         "value": pending[text], "updated_at": now})
        session.connection().execute(_UPSERT, rows)


@event.listens_for(Session, "after_rollback")
def _drop_counts(session: Session) -> None:
    session.info.pop(PENDING, None)


# `value = value + n`, the same SQL on SQLite (3.24+) and PostgreSQL. Plain text because
# SQLAlchemy does not cache the compiled form of its dialects' `on_conflict_do_update`, and
# compiling it again costs more than running it; the typed parameters keep the columns' formats.
_UPSERT = text(
    "INSERT INTO live_counters (siren, flow, day, metric, value, updated_at)"
    " VALUES (:siren, :flow, :day, :metric, :value, :updated_at)"
    " ON CONFLICT (siren, flow, day, metric)"
    " DO UPDATE SET value = live_counters.value + excluded.value, updated_at = excluded.updated_at"
).bindparams(bindparam("day", type_=LiveCounter.__table__.c.day.type),
             bindparam("updated_at", type_=LiveCounter.__table__.c.updated_at.type))


async def read_counters(store: Store, *, sirens: list[str] | None = None, flow: str | None = None,
                        start: date | None = None, end: date | None = None) -> list[LiveCounter]:
    """Counter rows, `start` and `end` included; `sirens` None = every collectivité."""
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
    """Counter sums per (flow, metric), over every collectivité and day."""
    async with store.sessions() as session:
        rows = await session.execute(select(LiveCounter.flow, LiveCounter.metric, func.sum(LiveCounter.value))
                                     .group_by(LiveCounter.flow, LiveCounter.metric))
        return {(flow, metric): int(n or 0) for flow, metric, n in rows.tuples()}


async def refresh_gauges(store: Store) -> None:
    for (flow, metric), n in (await live_totals(store)).items():
        LIVE.labels(flow=flow, metric=metric).set(n)
