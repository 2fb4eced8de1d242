"""Cancelling a document the remote side already acknowledged: the ACTES annulation (message 6-1
Annulation, answered by 6-2 ARAnnulation; the acte then goes to `cancelled`).

The flow's YAML names the stage whose effect can be cancelled (`cancellable_stage`); nothing here
knows ACTES. The request (`request_annulation`, called by the API and the web console) only
checks and records: an `annulation` row in the effects ledger (status intent) and a journal entry
with who asked, in one transaction. The worker (`AnnulationRunner`, a timer) then talks to the
connector, like the stage runners do: the intent is recorded before the call, a call whose outcome
is unknown is asked again and the TdT answers "already under way" instead of cancelling twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from bus.blobs import BlobStore
from bus.collectivite_config import connectors_of
from bus.engine import ATTEMPTS, Engine
from bus.flows.definition import CANCELLED, FlowDefinition, load_flow
from bus.scope import in_scope
from bus.stages.runner import RunnerSettings, _add_files
from bus.store import journal
from bus.store.db import Store
from bus.store.models import AnnulationEffect, Collectivite, Document, Effect, utcnow
from connectors.base import Collectivite as JobCollectivite
from connectors.base import ConnectorError, PermanentConnectorError, StageResult
from connectors.registry import ConnectorRegistry
from schemas.events import Event

log = logging.getLogger(__name__)

OPEN = ("intent", "retry", "submitted")


class AnnulationRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def annulable_states(flow: FlowDefinition) -> set[str]:
    """The states from which a document of `flow` can be cancelled (FlowDefinition.annulable_states)."""
    return flow.annulable_states()


async def _acknowledged_effect(session: AsyncSession, doc: Document, stage: str) -> Effect | None:
    return (await session.execute(
        select(Effect).where(Effect.document_id == doc.id, Effect.stage == stage, Effect.status == "done")
        .order_by(Effect.generation.desc()).limit(1)
    )).scalar_one_or_none()


async def request_annulation(store: Store, document_id: str, actor: str, *,
                             scope: Collection[str] | None = None) -> None:
    """Record the request to cancel `document_id`, journaled with `actor` (the operator key's name).

    `scope`: the SIRENs the caller may act on (None or containing "*": any). Raises
    AnnulationRefused: 404 document_not_found, 409 not_cancellable (the flow has no annulation),
    already_cancelled, not_acknowledged, annulation_pending."""
    async with store.transaction() as session:
        doc = await session.get(Document, document_id)
        if doc is None or (scope is not None and not in_scope(scope, doc.siren)):
            raise AnnulationRefused(404, "document_not_found", f"Document introuvable / no document {document_id}")
        flow = load_flow(doc.flow)
        if flow.cancellable_stage is None:
            raise AnnulationRefused(409, "not_cancellable",
                                    f"Le flux {doc.flow} ne connaît pas d'annulation / flow {doc.flow} has no annulation")
        if doc.state == CANCELLED:
            raise AnnulationRefused(409, "already_cancelled", "Document déjà annulé / document already cancelled")
        acknowledged = await _acknowledged_effect(session, doc, flow.cancellable_stage)
        if doc.state not in annulable_states(flow) or acknowledged is None or not acknowledged.remote_id:
            raise AnnulationRefused(409, "not_acknowledged",
                                    "Seul un acte acquitté (ou archivé) s'annule / only an acknowledged or archived "
                                    f"document can be cancelled (this one is {doc.state})")
        last = (await session.execute(
            select(AnnulationEffect).where(AnnulationEffect.document_id == doc.id)
            .order_by(AnnulationEffect.generation.desc()).limit(1)
        )).scalar_one_or_none()
        if last is not None and last.status in OPEN + ("done",):
            raise AnnulationRefused(409, "annulation_pending",
                                    "Une annulation est déjà en cours / an annulation is already under way")
        generation = (last.generation + 1) if last else 1
        session.add(AnnulationEffect(document_id=doc.id, generation=generation, status="intent",
                                     target_id=acknowledged.remote_id, requested_by=actor, next_at=utcnow()))
        await journal.append(session, doc.id, "annulation.requested", doc.state,
                             {"by": actor, "generation": generation, "remote_id": acknowledged.remote_id})


class AnnulationRunner:
    """Worker side: sends the requested annulations and follows them to the acknowledgement."""

    def __init__(self, store: Store, blobs: BlobStore, registry: ConnectorRegistry, settings: RunnerSettings,
                 engine: Engine | None = None) -> None:
        self.store, self.blobs, self.registry, self.settings = store, blobs, registry, settings
        self.engine = engine or Engine(store)  # the one writer of a document's state

    async def process_due(self, limit: int = 20) -> int:
        async with self.store.sessions() as session:
            ids = (await session.execute(
                select(AnnulationEffect.id)
                .where(AnnulationEffect.status.in_(OPEN), AnnulationEffect.next_at <= utcnow())
                .order_by(AnnulationEffect.next_at).limit(limit)
            )).scalars().all()
        for effect_id in ids:
            try:
                await self._one(effect_id)
            except Exception:
                log.exception("annulation %s failed", effect_id)
        return len(ids)

    async def _one(self, effect_id: int) -> None:
        now = utcnow()
        async with self.store.transaction() as session:
            effect = await session.get(AnnulationEffect, effect_id)
            if effect is None or effect.status not in OPEN or (effect.next_at and effect.next_at > now):
                return
            claimed = await session.execute(
                update(AnnulationEffect).where(AnnulationEffect.id == effect_id,
                                               AnnulationEffect.next_at == effect.next_at)
                .values(next_at=now + timedelta(seconds=self.settings.lease), updated_at=now)
            )
            if claimed.rowcount != 1:
                return
            status, attempts, target, cancel_id = effect.status, effect.attempts, effect.target_id, effect.remote_id
            requested_at = effect.created_at
            doc = await session.get(Document, effect.document_id)
            assert doc is not None
            flow = load_flow(doc.flow)
            stage = flow.stage(flow.cancellable_stage or "")
            coll = await session.get(Collectivite, doc.siren)
            connectors_cfg = connectors_of(coll).slots
            collectivite = JobCollectivite.from_record(coll) if coll else None
            document_id = doc.id
            seal_for = doc.siren if flow.encrypted else None  # personal data stays sealed at rest
        try:
            connector: Any = self.registry.get(stage.connector_key, connectors_cfg)
        except PermanentConnectorError as exc:  # no connector configured any more
            await self._finish(effect_id, document_id, "failed", "annulation.failed", {"reason": str(exc)})
            return
        if not hasattr(connector, "cancel"):
            await self._finish(effect_id, document_id, "failed", "annulation.failed",
                               {"reason": "ce connecteur ne sait pas annuler / this connector cannot cancel"})
        elif status in ("intent", "retry"):
            await self._send(connector, effect_id, document_id, target, attempts, collectivite, seal_for)
        else:
            await self._follow(connector, effect_id, document_id, target, cancel_id, requested_at, seal_for)

    async def _send(self, connector: Any, effect_id: int, document_id: str, remote_id: str, attempts: int,
                    collectivite: JobCollectivite | None, seal_for: str | None) -> None:
        try:
            cancel_id, files = await connector.cancel(remote_id, collectivite)
        except PermanentConnectorError as exc:
            await self._finish(effect_id, document_id, "failed", "annulation.failed", {"reason": str(exc)})
            return
        except ConnectorError as exc:
            attempts += 1
            retry = self.settings.retry
            if retry.exhausted(attempts):
                await self._finish(effect_id, document_id, "failed", "annulation.failed",
                                   {"reason": f"{exc} (after {attempts} attempts)"})
                return
            await self._update(effect_id, status="retry", attempts=attempts, last_error=str(exc),
                               next_at=utcnow() + timedelta(seconds=retry.delay(attempts)))
            return
        refs = await asyncio.to_thread(lambda: [self.blobs.put(f.data, seal_for=seal_for) for f in files])
        async with self.store.transaction() as session:
            await session.execute(update(AnnulationEffect).where(AnnulationEffect.id == effect_id).values(
                status="submitted", remote_id=cancel_id, attempts=attempts + 1, last_error=None,
                next_at=utcnow() + timedelta(seconds=self.settings.poll_interval), updated_at=utcnow()))
            await _add_files(session, document_id, files, refs)
            doc = await session.get(Document, document_id)
            assert doc is not None
            await journal.append(session, document_id, "annulation.submitted", doc.state,
                                 {"cancel_transaction_id": cancel_id})

    async def _follow(self, connector: Any, effect_id: int, document_id: str, remote_id: str,
                      cancel_id: str | None, requested_at: datetime, seal_for: str | None) -> None:
        try:
            result: StageResult = await connector.cancellation(remote_id, cancel_id)
        except ConnectorError as exc:
            await self._update(effect_id, last_error=str(exc),
                               next_at=utcnow() + timedelta(seconds=self.settings.polls.error_interval))
            return
        if result.status == "pending":
            waited = (utcnow() - requested_at).total_seconds()
            await self._update(effect_id, next_at=utcnow() + timedelta(seconds=self.settings.polls.delay(waited)))
        elif result.status == "rejected":
            await self._finish(effect_id, document_id, "rejected", "annulation.rejected", {"reason": result.reason})
        else:
            await self._cancelled(effect_id, document_id, result, seal_for)

    async def _cancelled(self, effect_id: int, document_id: str, result: StageResult, seal_for: str | None) -> None:
        """The acknowledgement, its files and the document's move to `cancelled` in one transaction:
        the engine makes the move (Engine.apply_in), as for every outcome."""
        refs = await asyncio.to_thread(lambda: [self.blobs.put(f.data, seal_for=seal_for) for f in result.files])
        fields = {k: v for k, v in result.fields.items() if v is not None}
        for _ in range(ATTEMPTS):
            try:
                async with self.store.transaction() as session:
                    doc = await session.get(Document, document_id)
                    assert doc is not None
                    await session.execute(update(AnnulationEffect).where(AnnulationEffect.id == effect_id).values(
                        status="done", next_at=None, updated_at=utcnow()))
                    await _add_files(session, document_id, result.files, refs)
                    await self.engine.apply_in(session, Event(type="annulation.acknowledged", document_id=doc.id,
                                                              siren=doc.siren, fields=fields))
                return
            except StaleDataError:
                log.info("document %s moved while being cancelled: again", document_id)

    async def _finish(self, effect_id: int, document_id: str, status: str, event: str, detail: dict[str, Any]) -> None:
        async with self.store.transaction() as session:
            await session.execute(update(AnnulationEffect).where(AnnulationEffect.id == effect_id).values(
                status=status, next_at=None, last_error=detail.get("reason"), updated_at=utcnow()))
            doc = await session.get(Document, document_id)
            assert doc is not None
            await journal.append(session, document_id, event, doc.state, detail)

    async def _update(self, effect_id: int, **values: Any) -> None:
        async with self.store.transaction() as session:
            await session.execute(update(AnnulationEffect).where(AnnulationEffect.id == effect_id).values(updated_at=utcnow(), **values))
