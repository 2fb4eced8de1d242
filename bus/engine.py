"""The flow engine: reads an event, checks the transition is legal for the document's flow,
updates the document (optimistic version check) and emits the next stage's command.

Events come from `dematbus.events` (deposits, replays, redrives) through `handle`, or, for a
stage's outcome, from the runner that finished the stage, through `apply_in` in the very
transaction that records the outcome in the effects ledger (bus.stages.runner).

Every decision is made in one database transaction with its journal entries and outbox rows, so
a redelivered event finds the document already moved and does nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from bus import metrics, moves
from bus.collectivite_config import connectors_of
from bus.flows.definition import CANCELLED, FlowDefinition, StageDefinition, load_flow
from bus.store import journal
from bus.store.db import Store
from bus.store.models import Collectivite, DeadLetter, Document, Effect, utcnow
from bus.store.outbox import emit_command
from schemas.events import Command, Event

log = logging.getLogger(__name__)
ATTEMPTS = 5  # decisions tried again on fresh data after a concurrent move (StaleDataError)


class Engine:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def handle(self, event: Event) -> bool:
        """Apply one event; returns whether the document moved."""
        for attempt in range(ATTEMPTS):
            try:
                async with self.store.transaction() as session:
                    return await self.apply_in(session, event)
            except StaleDataError:
                # Another process moved the document meanwhile: decide again on fresh data.
                log.info("document %s changed concurrently (try %d)", event.document_id, attempt + 1)
        return False

    async def apply_in(self, session: AsyncSession, event: Event) -> bool:
        """Apply one event within the caller's transaction (a runner finishing a stage applies its
        outcome in the transaction that records it). The version check raises StaleDataError when
        another process moved the document meanwhile: the caller rolls back and tries again."""
        doc = await session.get(Document, event.document_id)
        if doc is None:
            log.warning("event for unknown document %s", event.document_id)
            return False
        return await self._apply(session, load_flow(doc.flow), doc, event)

    async def _apply(self, session: AsyncSession, flow: FlowDefinition, doc: Document, event: Event) -> bool:
        if event.type == "replay":
            return await self._replay(session, flow, doc, event)
        if event.type == "annulation.acknowledged":
            return await self._cancel(session, flow, doc, event)
        if flow.is_terminal(doc.state):
            return False
        if event.type == "deposited":
            if doc.state != "deposited" or doc.stage is not None:
                return False
            return await self._enter_next(session, flow, doc, after=None)
        if event.type == "redrive":
            return await self._redrive(session, flow, doc)

        # Outcome of a stage: only for the stage and generation the document is in now.
        if event.stage != doc.stage or event.generation != doc.generation:
            return False
        stage = flow.stage(doc.stage)
        if doc.state not in {stage.running, stage.submitted}:
            return False
        if event.type == "stage.submitted":
            if stage.submitted is None or doc.state == stage.submitted:
                return False
            await self._move(session, doc, stage.submitted, "stage.submitted", {"stage": stage.name, **event.fields})
            return True
        if event.type == "stage.done":
            doc.replies = {**doc.replies, **event.fields}
            await self._move(session, doc, stage.done, "stage.done", {"stage": stage.name, **event.fields})
            return await self._enter_next(session, flow, doc, after=stage.name) or True
        if event.type == "stage.rejected":
            doc.replies = {**doc.replies, **event.fields}
            await self._move(session, doc, stage.rejected, "stage.rejected",
                             {"stage": stage.name, "reason": event.reason, **event.fields}, reason=event.reason)
            return True
        if event.type == "stage.failed":
            session.add(DeadLetter(document_id=doc.id, stage=stage.name, generation=doc.generation,
                                   reason=event.reason or "unknown", payload=event.model_dump(mode="json")))
            await self._move(session, doc, "error", "stage.failed",
                             {"stage": stage.name, "reason": event.reason}, reason=event.reason)
            return True
        return False

    async def _enter_next(self, session: AsyncSession, flow: FlowDefinition, doc: Document,
                          after: str | None) -> bool:
        options: dict[str, Any] = {}
        if flow.reads_options:
            coll = await session.get(Collectivite, doc.siren)
            options = connectors_of(coll).flow_options(flow.name)
        stage = flow.next_stage(doc.meta, after, options)
        if stage is None:
            return False
        doc.stage = stage.name
        await self._move(session, doc, stage.running, "stage.started", {"stage": stage.name})
        self._command(session, flow, doc, stage)
        return True

    async def _redrive(self, session: AsyncSession, flow: FlowDefinition, doc: Document) -> bool:
        if doc.stage is None:
            return await self._enter_next(session, flow, doc, after=None)
        stage = flow.stage(doc.stage)
        if doc.state in {stage.running, stage.submitted}:
            effect = (await session.execute(select(Effect).where(
                Effect.document_id == doc.id, Effect.stage == stage.name, Effect.generation == doc.generation,
            ))).scalar_one_or_none()
            if effect is not None and effect.outcome is not None:
                # The effect finished but its outcome event never reached the engine: apply it now.
                log.info("document %s: applying the recorded outcome of %s", doc.id, stage.name)
                return await self._apply(session, flow, doc, Event.model_validate(effect.outcome))
            doc.updated_at = utcnow()  # the reconciler waits a full timeout before the next redrive
            await session.flush()
            await journal.append(session, doc.id, "redrive", doc.state, {"stage": stage.name})
            self._command(session, flow, doc, stage)
            return True
        if doc.state == stage.done:
            return await self._enter_next(session, flow, doc, after=stage.name)
        return False

    async def _replay(self, session: AsyncSession, flow: FlowDefinition, doc: Document, event: Event) -> bool:
        """Restart a failed document at the stage that failed, as a new generation. The runner looks
        earlier generations' effects up before acting, so nothing done is done again."""
        if doc.state != "error" or doc.stage is None or event.generation != doc.generation:
            return False
        stage = flow.stage(doc.stage)
        doc.generation += 1
        doc.reason = None
        await self._move(session, doc, stage.running, "replay",
                         {"stage": stage.name, "generation": doc.generation, **event.fields})
        self._command(session, flow, doc, stage)
        return True

    async def _cancel(self, session: AsyncSession, flow: FlowDefinition, doc: Document, event: Event) -> bool:
        """An acknowledged annulation: from any state after the cancellable stage, terminal ones
        included (an archived acte can be cancelled), to `cancelled`."""
        if doc.state not in flow.annulable_states():
            return False
        doc.replies = {**doc.replies, **event.fields}
        await self._move(session, doc, CANCELLED, "annulation.acknowledged", event.fields)
        return True

    def _command(self, session: AsyncSession, flow: FlowDefinition, doc: Document, stage: StageDefinition) -> None:
        emit_command(session, Command(document_id=doc.id, siren=doc.siren, flow=flow.name, stage=stage.name,
                                      kind=stage.kind, generation=doc.generation))

    async def _move(self, session: AsyncSession, doc: Document, state: str, event: str,
                    detail: dict[str, Any], reason: str | None = None) -> None:
        doc.state = state
        if reason:
            doc.reason = reason
        await session.flush()  # version check happens here
        entry = await journal.append(session, doc.id, event, state,
                                     {k: v for k, v in detail.items() if v is not None})
        await moves.announce(session, doc, entry)
        await metrics.record_move(session, doc, state, event)
