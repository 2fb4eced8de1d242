"""Reconciler: the store is the system of record. Any non-terminal document that has not moved
for longer than its stage timeout is pushed again (a `redrive` event through the outbox), whatever
was lost on the way (a killed process, a broker that restarted with empty memory storage).

Effects already submitted are left to the poller, and effects waiting for a retry to the retry
timer: both are driven from the ledger, not from Kafka.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update

from bus.flows.definition import flow_names, load_flow
from bus.store.db import Store
from bus.store.models import Document, Effect, utcnow
from bus.store.outbox import emit_event
from schemas.events import Event

log = logging.getLogger(__name__)


def open_documents() -> ColumnElement[bool]:
    """Documents not in a terminal state of their flow: the work in progress, whose size does not
    grow with the years of history the store keeps."""
    return or_(*(and_(Document.flow == name, Document.state.not_in(load_flow(name).terminal))
                 for name in flow_names()))


async def reconcile(store: Store, stage_timeout: float) -> int:
    cutoff = utcnow() - timedelta(seconds=stage_timeout)
    redriven_ids: list[str] = []
    async with store.transaction() as session:
        stale = (await session.execute(
            select(Document).where(Document.updated_at < cutoff, open_documents())
        )).scalars().all()
        for doc in stale:
            if doc.stage is not None:
                effect = (await session.execute(
                    select(Effect).where(Effect.document_id == doc.id, Effect.stage == doc.stage,
                                         Effect.generation == doc.generation)
                )).scalar_one_or_none()
                if effect is not None and effect.status in {"submitted", "retry"}:
                    continue
            emit_event(session, Event(type="redrive", document_id=doc.id, siren=doc.siren))
            redriven_ids.append(doc.id)
        # One redrive per document per timeout: while the engine works through a backlog (a batch
        # of hundreds of payslips on one partition), stale documents are not re-driven again and
        # again. A Core UPDATE leaves the version alone, so the engine's own writes do not clash.
        if redriven_ids:
            await session.execute(update(Document).where(Document.id.in_(redriven_ids)).values(updated_at=utcnow()))
        redriven = len(redriven_ids)
    if redriven:
        log.info("reconciler re-drove %d document(s)", redriven)
    return redriven
