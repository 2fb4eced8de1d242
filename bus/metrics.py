"""Prometheus metrics of the worker and the API.

No label carries a SIREN or a document id: labels are the flow (from bus/flows/*.yaml), the stage,
the state and the deposit outcome, so the number of series stays small whatever the number of
collectivités. Per-collectivité volumes are the journal's job (bus.reports). Label values coming
from the outside (a flow name in a refused deposit) are folded into "unknown".

Each process has its own counters: the API exposes its own at `/metrics` (metrics_endpoint or
metrics_app), the worker on its health server's port (bus.health.worker_server).
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    make_asgi_app,
)

log = logging.getLogger(__name__)

# From seconds (signature, transmission) to days (waiting for the préfecture's AR or the SAE).
STAGE_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 3 * 24 * 3600, float("inf"))

DOCUMENTS = Counter("dematbus_documents", "State changes of documents (one per journaled move)",
                    ["flow", "state"])
STAGE_DURATION = Histogram("dematbus_stage_duration_seconds",
                           "Time from a stage's start (or replay) to its end (done, rejected, failed)",
                           ["flow", "stage"], buckets=STAGE_BUCKETS)
DEPOSITS = Counter("dematbus_deposits", "Deposits by outcome (accepted or refused)", ["flow", "outcome"])
OUTBOX_PENDING = Gauge("dematbus_outbox_pending", "Outbox rows not yet published to the broker")
ASSIGNED_PARTITIONS = Gauge("dematbus_worker_assigned_partitions", "Kafka partitions this worker holds (all topics)")

_known_flows: frozenset[str] | None = None


def _flow(flow: str | None) -> str:
    global _known_flows
    if _known_flows is None:
        try:
            from bus.flows.definition import flow_names

            _known_flows = frozenset(flow_names())
        except Exception:  # pragma: no cover - flows unreadable: never break a deposit for a metric
            _known_flows = frozenset()
    return flow if flow in _known_flows else "unknown"


@cache
def _known_states() -> frozenset[str]:
    """The states the flow files declare: anything else is counted as "other"."""
    try:
        from bus.flows.definition import all_states

        return frozenset(all_states())
    except Exception:  # pragma: no cover - flows unreadable: never break a deposit for a metric
        return frozenset()


def _label(value: str | None, allowed: frozenset[str] | None = None) -> str:
    if not value:
        return "none"
    if allowed is not None and value not in allowed:
        return "other"
    return value[:40]


def observe_transition(flow: str, stage: str | None, state: str, seconds_in_stage: float | None = None) -> None:
    """A document moved to `state` (call once per journaled state change, after the move).

    `seconds_in_stage`: when the move ends `stage`, how long the stage took (None: not measured)."""
    f = _flow(flow)
    DOCUMENTS.labels(flow=f, state=_label(state, _known_states())).inc()
    if seconds_in_stage is not None and seconds_in_stage >= 0:
        STAGE_DURATION.labels(flow=f, stage=_label(stage)).observe(seconds_in_stage)


STAGE_END_EVENTS = frozenset({"stage.done", "stage.rejected", "stage.failed"})
STAGE_START_EVENTS = ("stage.started", "replay")


async def record_move(session: Any, doc: Any, state: str, event: str) -> None:
    """Engine hook, right after a move is journaled (bus.engine.Engine._move).

    Counts the state change; when the move ends a stage (done, rejected, failed), observes the
    stage's duration: from the journal entry that (re)started it to now. One indexed query per
    stage end; a metrics failure never fails the move."""
    seconds: float | None = None
    try:
        if event in STAGE_END_EVENTS and doc.stage:
            from sqlalchemy import func, select

            from bus.store.models import JournalEntry, utcnow

            started = (await session.execute(
                select(func.max(JournalEntry.at)).where(JournalEntry.document_id == doc.id,
                                                        JournalEntry.event.in_(STAGE_START_EVENTS))
            )).scalar()
            if started is not None:
                seconds = (utcnow() - started).total_seconds()
        observe_transition(doc.flow, doc.stage, state, seconds)
    except Exception:  # pragma: no cover - never let a metric break the engine
        log.exception("metrics: could not record the move of %s", getattr(doc, "id", "?"))


def observe_deposit(flow: str, ok: bool) -> None:
    """A deposit was accepted (a new document stored) or refused. An accepted deposit is also the
    document's first state change (`deposited`, journaled by the depositor, not the engine)."""
    f = _flow(flow)
    DEPOSITS.labels(flow=f, outcome="accepted" if ok else "refused").inc()
    if ok:
        DOCUMENTS.labels(flow=f, state="deposited").inc()


def set_outbox_pending(count: int) -> None:
    OUTBOX_PENDING.set(count)


async def refresh_outbox_pending(store: Any) -> int:
    """Count unpublished outbox rows and set the gauge (call from a worker timer)."""
    from sqlalchemy import func, select

    from bus.store.models import OutboxEvent

    async with store.sessions() as session:
        count = (await session.execute(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        )).scalar_one()
    OUTBOX_PENDING.set(count)
    return int(count)


def metrics_app(registry: CollectorRegistry = REGISTRY) -> Any:
    """ASGI app serving the Prometheus text format; mount it at /metrics."""
    return make_asgi_app(registry=registry)


async def metrics_endpoint(_request: Any) -> Any:
    """Starlette/FastAPI endpoint: `app.add_route("/metrics", metrics_endpoint, include_in_schema=False)`
    answers on /metrics itself (a mount answers /metrics with a 307 to /metrics/)."""
    from starlette.responses import Response

    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
