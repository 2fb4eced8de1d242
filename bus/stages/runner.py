"""Stage runners: perform a stage's external effect exactly once, through the effects ledger.

`run_command` handles a command from `dematbus.cmd.<kind>`: it records the intent, calls the
connector's `submit` (or, if an earlier attempt may have reached the remote side, `lookup` first),
and records the remote id. `poll_due` asks the remote side about submitted effects. Claims on a
ledger row (`next_at` lease with a compare-and-set) keep two workers from acting on the same
effect at the same time.

A stage's outcome (submitted, done, rejected, failed) is recorded in the ledger and applied by the
engine in ONE transaction (bus.engine.Engine.apply_in): the journal entry, the move's
announcement and the next stage's command commit with the outcome, with no event through Kafka
in between. A document moved concurrently (StaleDataError) makes the whole transaction start
again; the ledger update is idempotent. `effects.outcome` stays recorded: the reconciler's
redrive applies it if a move was ever lost.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from bus.blobs import BlobStore
from bus.collectivite_config import connectors_of
from bus.engine import ATTEMPTS, Engine
from bus.flows.definition import StageDefinition, load_flow
from bus.retry import PollSchedule, RetryPolicy
from bus.store.db import Store
from bus.store.models import Collectivite, Document, Effect, File, utcnow
from bus.store.outbox import emit_event
from connectors.base import (
    Collectivite as JobCollectivite,
)
from connectors.base import (
    ConnectorError,
    InputFile,
    OutputFile,
    PermanentConnectorError,
    RemoteRefusal,
    StageJob,
    StageResult,
)
from connectors.registry import ConnectorRegistry
from schemas.events import Command, Event

log = logging.getLogger(__name__)


@dataclass
class RunnerSettings:
    max_attempts: int = 5
    retry_backoff: float = 1.0
    retry_backoff_max: float = 60.0
    poll_interval: float = 1.0  # the first polls of a fresh submission
    poll_interval_max: float = 7200.0  # the slowest polls, for effects that wait for days
    lease: float = 60.0  # how long a claimed effect is ours before another worker may take it

    @property
    def retry(self) -> RetryPolicy:
        """The backoff of failed calls (bus.retry)."""
        return RetryPolicy.from_settings(self)

    @property
    def polls(self) -> PollSchedule:
        """The pace of the polls of pending effects (bus.retry)."""
        return PollSchedule.from_settings(self)


def reference(document_id: str, stage: str, generation: int) -> str:
    return f"dmb-{document_id}-{stage}-g{generation}"


class StageRunner:
    def __init__(self, store: Store, blobs: BlobStore, registry: ConnectorRegistry, settings: RunnerSettings,
                 engine: Engine | None = None) -> None:
        self.store = store
        self.blobs = blobs
        self.registry = registry
        self.settings = settings
        self.engine = engine or Engine(store)

    # -- commands -------------------------------------------------------------------------

    async def run_command(self, command: Command) -> None:
        claimed = await self._claim_for_submit(command)
        if claimed is None:
            return
        effect_id, attempts, recorded, lookups, record = claimed
        job, connector_cfg = await self._job(record, command.stage, command.generation)
        try:
            connector = self.registry.get(load_flow(command.flow).stage(command.stage).connector_key, connector_cfg)
            job = replace(job, intent=await self._intent(effect_id, connector, job, recorded))
            remote_id = None
            for ref, facts in lookups:
                remote_id = await connector.lookup(replace(job, reference=ref, intent=facts or job.intent))
                if remote_id is not None:
                    break
            produced: list[OutputFile] = []
            if remote_id is None:
                remote_id, produced = await connector.submit(job)
            else:
                log.info("effect %s already made remotely (%s): not sending again", job.reference, remote_id)
        except RemoteRefusal as exc:
            await self._refused(effect_id, command, exc)
            return
        except PermanentConnectorError as exc:
            await self._fail(effect_id, command, str(exc))
            return
        except ConnectorError as exc:
            await self._retry_or_fail(effect_id, command, attempts, str(exc))
            return
        await self._submitted(effect_id, command, remote_id, produced)

    async def _intent(self, effect_id: int, connector: object, job: StageJob,
                      recorded: dict[str, Any] | None) -> dict[str, Any]:
        """The facts the connector records with the intent (connectors.base.IntentRecorder), written
        before its first call; an earlier attempt's facts are kept: they describe what may have
        been sent."""
        facts_of = getattr(connector, "intent_facts", None)
        if facts_of is None:
            return {}
        if recorded:
            return dict(recorded)
        facts = await facts_of(job)
        async with self.store.transaction() as session:
            await session.execute(update(Effect).where(Effect.id == effect_id).values(intent=facts))
        return dict(facts)

    async def _claim_for_submit(
        self, command: Command,
    ) -> tuple[int, int, dict[str, Any] | None, list[tuple[str, dict[str, Any] | None]], _Record] | None:
        """Record the intent before the call. Returns (effect id, attempts, the facts recorded with
        its intent so far, effects to look up at the remote side first, as (reference, recorded
        facts): ours if an earlier attempt may have got through, and those of earlier generations
        whose outcome is unknown; the document as the job needs it, read in the same session)."""
        now = utcnow()
        async with self.store.transaction() as session:
            doc = await session.get(Document, command.document_id)
            if doc is None or doc.stage != command.stage or doc.generation != command.generation:
                return None
            stage = load_flow(doc.flow).stage(command.stage)
            if doc.state not in {stage.running, stage.submitted}:
                return None
            effect = await _effect(session, command.document_id, command.stage, command.generation)
            if effect is None:
                effect = Effect(document_id=doc.id, stage=command.stage, generation=command.generation,
                                reference=reference(doc.id, command.stage, command.generation), status="intent",
                                attempts=1, next_at=now + timedelta(seconds=self.settings.lease))
                session.add(effect)
                try:
                    await session.flush()
                except IntegrityError:
                    return None  # another worker created it a moment ago and owns it
                return (effect.id, 1, None, await _uncertain_references(session, doc.id, command.stage,
                                                                        command.generation),
                        await _read_record(session, doc))
            if effect.status not in {"intent", "retry"}:
                return None  # submitted / finished: the poller or the engine takes it from here
            if effect.next_at and effect.next_at > now:
                return None  # leased by a runner that may still be working, or a retry not due yet
            claimed = await session.execute(
                update(Effect)
                .where(Effect.id == effect.id, Effect.attempts == effect.attempts)
                .values(status="intent", attempts=effect.attempts + 1,
                        next_at=now + timedelta(seconds=self.settings.lease), updated_at=now)
            )
            if claimed.rowcount != 1:
                return None
            earlier = await _uncertain_references(session, doc.id, command.stage, command.generation)
            return (effect.id, effect.attempts + 1, effect.intent, [(effect.reference, effect.intent), *earlier],
                    await _read_record(session, doc))

    async def _refused(self, effect_id: int, command: Command, refusal: RemoteRefusal) -> None:
        event = Event(type="stage.rejected", document_id=command.document_id, siren=command.siren,
                      stage=command.stage, generation=command.generation, fields=refusal.fields, reason=refusal.reason)
        await self._finish(effect_id, "rejected", event, last_error=refusal.reason)

    def _put_all(self, flow: str, siren: str, files: list[OutputFile]) -> list:  # type: ignore[type-arg]
        seal_for = siren if load_flow(flow).encrypted else None
        return [self.blobs.put(f.data, seal_for=seal_for) for f in files]

    async def _submitted(self, effect_id: int, command: Command, remote_id: str, produced: list[OutputFile]) -> None:
        refs = await asyncio.to_thread(self._put_all, command.flow, command.siren, produced)

        async def record(session: AsyncSession) -> None:
            now = utcnow()
            await session.execute(update(Effect).where(Effect.id == effect_id).values(
                status="submitted", remote_id=remote_id, next_at=now, updated_at=now))
            await _add_files(session, command.document_id, produced, refs)

        # A stage with no waiting state of its own has nothing to move: the engine would do nothing.
        move = Event(type="stage.submitted", document_id=command.document_id, siren=command.siren,
                     stage=command.stage, generation=command.generation,
                     fields={"remote_id": remote_id}) if _reports_submission(command) else None
        await self._record_and_move(record, move)

    async def _retry_or_fail(self, effect_id: int, command: Command, attempts: int, error: str) -> None:
        retry = self.settings.retry
        if retry.exhausted(attempts):
            await self._fail(effect_id, command, f"{error} (after {attempts} attempts)")
            return
        delay = retry.delay(attempts)
        log.warning("stage %s of %s failed (attempt %d), retry in %.1fs: %s",
                    command.stage, command.document_id, attempts, delay, error)
        async with self.store.transaction() as session:
            await session.execute(
                update(Effect).where(Effect.id == effect_id).values(
                    status="retry", last_error=error, next_at=utcnow() + timedelta(seconds=delay), updated_at=utcnow()
                )
            )

    async def _fail(self, effect_id: int, command: Command, error: str) -> None:
        log.error("stage %s of %s failed: %s", command.stage, command.document_id, error)
        event = Event(type="stage.failed", document_id=command.document_id, siren=command.siren,
                      stage=command.stage, generation=command.generation, reason=error)
        await self._finish(effect_id, "failed", event, last_error=error)

    # -- retries and polling (driven by a timer, from the ledger: they survive any crash) -----

    async def due_retries(self) -> list[Command]:
        """Commands whose retry is due; `run_command` re-claims them, so running one twice is harmless."""
        async with self.store.sessions() as session:
            rows = await session.execute(_DUE_RETRIES, {"now": utcnow()})
            return [
                Command(document_id=d.id, siren=d.siren, flow=d.flow, stage=e.stage,
                        kind=load_flow(d.flow).stage(e.stage).kind, generation=e.generation)
                for e, d in rows.all()
            ]

    async def poll_due(self, limit: int = 50) -> int:
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(_due_polls(limit), {"now": utcnow()})).scalars().all()
        results = await asyncio.gather(*(self._poll_one(effect_id) for effect_id in rows), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.exception("poll failed", exc_info=result)
        return len(rows)

    async def poll_now(self, document_id: str) -> int:
        """Ask now about the document's submitted effects that wait for their next poll. One a
        poller holds (its lease is longer than a poll interval) is left to that poller."""
        now = utcnow()
        waiting = (Effect.document_id == document_id, Effect.status == "submitted",
                   Effect.next_at <= now + timedelta(seconds=self.settings.poll_interval))
        async with self.store.transaction() as session:
            ids = list((await session.execute(select(Effect.id).where(*waiting))).scalars())
            if ids:
                await session.execute(update(Effect).where(Effect.id.in_(ids), *waiting).values(next_at=now))
        for effect_id in ids:
            await self._poll_one(effect_id)
        return len(ids)

    async def _poll_one(self, effect_id: int) -> None:
        now = utcnow()
        async with self.store.transaction() as session:
            effect = await session.get(Effect, effect_id)
            if effect is None or effect.status != "submitted" or (effect.next_at and effect.next_at > now):
                return
            claimed = await session.execute(
                update(Effect).where(Effect.id == effect_id, Effect.next_at == effect.next_at)
                .values(next_at=now + timedelta(seconds=self.settings.lease))
            )
            if claimed.rowcount != 1:
                return
            document_id, stage_name, generation, remote_id, submitted_at = (
                effect.document_id, effect.stage, effect.generation, effect.remote_id, effect.created_at)
            doc = await session.get(Document, document_id)
            assert doc is not None
            connector_key = load_flow(doc.flow).stage(stage_name).connector_key
            siren, flow = doc.siren, doc.flow
            record = await _read_record(session, doc, with_files=False)
            try:
                connector = self.registry.get(connector_key, connectors_of(record.collectivite).slots)
            except ConnectorError:
                connector = None
            if getattr(connector, "poll_reads_files", False):
                record = await _read_record(session, doc)
        job, connector_cfg = await self._job(record, stage_name, generation)
        try:
            connector = self.registry.get(connector_key, connector_cfg)
            result: StageResult = await connector.poll(job, remote_id or "")
        except ConnectorError as exc:
            log.warning("poll of %s failed: %s", job.reference, exc)
            await self._poll_later(effect_id, self.settings.polls.error_interval, str(exc))
            return
        if result.status == "pending":
            waited = (utcnow() - submitted_at).total_seconds()
            await self._poll_later(effect_id, self.settings.polls.delay(waited), None)
            return
        refs = await asyncio.to_thread(self._put_all, flow, siren, result.files)
        event = Event(type="stage.done" if result.status == "done" else "stage.rejected",
                      document_id=document_id, siren=siren, stage=stage_name, generation=generation,
                      fields=result.fields, reason=result.reason)
        await self._finish(effect_id, "done" if result.status == "done" else "rejected", event,
                           files=(result.files, refs))
        # Remote clean-up (a signed i-Parapheur folder deleted) only once the outcome is recorded: a
        # crash in between leaves a folder behind, never a document whose result is gone remotely.
        after_outcome = getattr(connector, "after_outcome", None)
        if after_outcome is not None:
            try:
                await after_outcome(job, remote_id or "", result)
            except ConnectorError as exc:
                log.warning("clean-up after %s failed (left behind): %s", job.reference, exc)

    async def _finish(self, effect_id: int, status: str, event: Event, last_error: str | None = None,
                      files: tuple[list[OutputFile], list] | None = None) -> None:  # type: ignore[type-arg]
        """Close an effect with its outcome (and the files it brought back), and apply the outcome."""
        values = {"status": status, "next_at": None, "updated_at": utcnow(), "outcome": event.model_dump(mode="json")}
        if last_error is not None:
            values["last_error"] = last_error

        async def record(session: AsyncSession) -> None:
            await session.execute(update(Effect).where(Effect.id == effect_id).values(**values))
            if files is not None:
                await _add_files(session, event.document_id, *files)

        await self._record_and_move(record, event)

    async def _record_and_move(self, record: Callable[[AsyncSession], Awaitable[None]], move: Event | None) -> None:
        """`record` (the ledger's update, idempotent) and the engine's move for `move`, in one
        transaction; all of it again on a concurrent move of the document. Should the document
        keep moving under us, the outcome is recorded and handed to the engine agent as an event."""
        for attempt in range(ATTEMPTS):
            try:
                async with self.store.transaction() as session:
                    await record(session)
                    if move is not None:
                        await self.engine.apply_in(session, move)
                return
            except StaleDataError:
                log.info("document %s changed concurrently (try %d)", move.document_id if move else "?", attempt + 1)
        assert move is not None  # without a move there is no version to clash with
        async with self.store.transaction() as session:
            await record(session)
            emit_event(session, move)

    async def _poll_later(self, effect_id: int, delay: float, error: str | None) -> None:
        async with self.store.transaction() as session:
            await session.execute(
                update(Effect).where(Effect.id == effect_id).values(
                    next_at=utcnow() + timedelta(seconds=delay), last_error=error, updated_at=utcnow()
                )
            )

    # -- jobs -------------------------------------------------------------------------------

    async def _job(self, record: _Record, stage_name: str, generation: int) -> tuple[StageJob, dict]:
        doc, coll = record.document, record.collectivite
        stage = load_flow(doc.flow).stage(stage_name)
        chosen = _select_inputs(stage, record.files)
        data = await asyncio.to_thread(lambda: [self.blobs.get(f.sha256) for f in chosen]) if chosen else []
        job = StageJob(
            document_id=doc.id,
            reference=reference(doc.id, stage_name, generation),
            flow=doc.flow,
            stage=stage_name,
            collectivite=JobCollectivite.from_record(coll),
            metadata=dict(doc.meta),
            files=[InputFile(name=f.name, role=f.role, data=d, media_type=f.media_type) for f, d in zip(chosen, data)],
            options=connectors_of(coll).slot(stage.connector_key),
        )
        return job, connectors_of(coll).slots


# The timers' queries, built once: building a statement costs more CPU than running it when
# nothing is due, and the timers ask several times a second.
_NOW = bindparam("now", type_=Effect.next_at.type)
_DUE_RETRIES = (select(Effect, Document).join(Document, Document.id == Effect.document_id)
                .where(Effect.status.in_(["retry", "intent"]), Effect.next_at <= _NOW))


@functools.cache
def _due_polls(limit: int) -> Select[tuple[int]]:
    return (select(Effect.id).where(Effect.status == "submitted", Effect.next_at <= _NOW)
            .order_by(Effect.next_at).limit(limit))


@dataclass
class _Record:
    """What a job is built from, read in the session that claims the effect."""

    document: Document
    collectivite: Collectivite
    files: list[File]


async def _read_record(session: AsyncSession, doc: Document, with_files: bool = True) -> _Record:
    coll = await session.get(Collectivite, doc.siren)
    assert coll is not None
    files = list((await session.execute(
        select(File).where(File.document_id == doc.id).order_by(File.id)
    )).scalars()) if with_files else []
    return _Record(doc, coll, files)


def _reports_submission(command: Command) -> bool:
    """Whether the engine moves the document when the remote side accepts the submission."""
    stage = load_flow(command.flow).stage(command.stage)
    return stage.submitted is not None and stage.submitted != stage.running


def _select_inputs(stage: StageDefinition, files: list[File]) -> list[File]:
    chosen: list[File] = []
    for alternatives in stage.input_roles():
        if alternatives == ["*"]:
            return files
        for role in alternatives:
            matching = [f for f in files if f.role == role]
            if matching:
                chosen.extend(matching)
                break
    return chosen


async def _uncertain_references(session: AsyncSession, document_id: str, stage: str,
                                generation: int) -> list[tuple[str, dict[str, Any] | None]]:
    """Earlier generations' effects that may have reached the remote side: (reference, intent facts)."""
    rows = await session.execute(
        select(Effect.reference, Effect.intent).where(
            Effect.document_id == document_id, Effect.stage == stage, Effect.generation < generation,
            Effect.status.in_(["intent", "retry", "failed", "submitted"]),
        ).order_by(Effect.generation.desc())
    )
    return [(ref, facts) for ref, facts in rows.all()]


async def _effect(session: AsyncSession, document_id: str, stage: str, generation: int) -> Effect | None:
    return (await session.execute(
        select(Effect).where(Effect.document_id == document_id, Effect.stage == stage, Effect.generation == generation)
    )).scalar_one_or_none()


async def _add_files(session: AsyncSession, document_id: str, produced: list[OutputFile], refs: list) -> None:  # type: ignore[type-arg]
    if not produced:
        return
    existing = set((await session.execute(select(File.name).where(File.document_id == document_id))).scalars())
    for f, ref in zip(produced, refs):
        name = f.name
        n = 1
        while name in existing:  # a replay may bring a file with a name already taken
            n += 1
            stem, dot, ext = f.name.rpartition(".")
            name = f"{stem}.{n}.{ext}" if dot else f"{f.name}.{n}"
        existing.add(name)
        session.add(File(document_id=document_id, role=f.role, name=name, size=ref.size, sha256=ref.sha256,
                         media_type=f.media_type))
