"""Sending the recorded replies to the préfecture, exactly once, and following them to the
préfecture's 3-5 / 4-5 (a 2-2 gets none: it ends once transmitted).

Through the effects ledger like any transmission: the intent is recorded before the call
(bus/courriers/replies.py); when an earlier attempt may have reached the TdT (a crash, a timeout),
S²low, which refuses no second reply to a letter, is asked what it holds first: the acte's
related transactions (`actes_transac_get_document.php`, docs/protocols.md §2.2 and §2.6) list a
letter that got a reply as that reply, so a reply there that the bus does not know is ours and is
not sent again. The lease / retry / reschedule mechanics are bus/courriers/ledger.py's.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bus.blobs import BlobStore
from bus.collectivite_config import connectors_of
from bus.courriers import ledger, messages, rules
from bus.courriers.replies import ANNEXE_ROLE, AR_ROLE, DOCUMENT_ROLE
from bus.flows.definition import load_flow
from bus.stages.runner import RunnerSettings
from bus.store.db import Store
from bus.store.models import (
    Collectivite,
    Document,
    File,
    PrefectureMessage,
    PrefectureReply,
    utcnow,
)
from connectors.base import ConnectorError, InputFile, PermanentConnectorError
from connectors.registry import ConnectorRegistry
from connectors.tdt.s2low_prefecture import PrefectureMessageRef

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Context:
    message: PrefectureMessage
    doc: Document
    connector_key: str
    connectors: dict[str, Any]
    encrypted: bool


class ReplyRunner:
    """Sends the requested replies and follows them to the préfecture's acknowledgement."""

    def __init__(self, store: Store, blobs: BlobStore, registry: ConnectorRegistry, settings: RunnerSettings) -> None:
        self.store, self.blobs, self.registry, self.settings = store, blobs, registry, settings

    async def process_due(self, limit: int = 20) -> int:
        ids = await ledger.due_replies(self.store, limit)
        for reply_id in ids:
            try:
                await self._one(reply_id)
            except Exception:
                log.exception("préfecture reply %s failed", reply_id)
        return len(ids)

    async def _one(self, reply_id: int) -> None:
        claimed = await ledger.claim_reply(self.store, reply_id, self.settings.lease)
        if claimed is None:
            return
        async with self.store.sessions() as session:
            message = await session.get(PrefectureMessage, claimed.message_id)
            assert message is not None
            doc = await session.get(Document, message.document_id)
            assert doc is not None
            coll = await session.get(Collectivite, doc.siren)
        flow = load_flow(doc.flow)
        ctx = _Context(message, doc, flow.stage(flow.courriers_stage or "").connector_key,
                       connectors_of(coll).slots, flow.encrypted)
        try:
            connector: Any = self.registry.get(ctx.connector_key, ctx.connectors)
        except PermanentConnectorError as exc:  # no TdT configured any more
            await self._failed(claimed, ctx, str(exc))
            return
        if claimed.status in ledger.SENDING:
            await self._send(connector, claimed, ctx)
        else:
            await self._follow(connector, claimed, ctx)

    def _ref(self, ctx: _Context) -> PrefectureMessageRef:
        replies = ctx.doc.replies or {}
        return PrefectureMessageRef(transaction_id=ctx.message.remote_id, code=ctx.message.code,
                                    acte_transaction_id=str(replies.get("tdt_transaction_id") or "") or None,
                                    numero=ctx.doc.business_key or "", id_acte=str(replies.get("id_acte") or ""),
                                    status=0)

    async def _send(self, connector: Any, claimed: ledger.Claimed, ctx: _Context) -> None:
        ref = self._ref(ctx)
        try:
            remote_id = await self._sent_before(connector, claimed, ctx, ref) if claimed.attempts else None
            recovered = remote_id is not None
            if remote_id is None:
                inputs = await self._inputs(claimed, ctx)
                remote_id = await connector.send_prefecture_reply(
                    ref, rules.SENDING[claimed.kind], inputs[0], inputs[1:],
                    [f["typologie"] for f in claimed.files if f["role"] in (DOCUMENT_ROLE, ANNEXE_ROLE)])
        except PermanentConnectorError as exc:
            await self._failed(claimed, ctx, str(exc))
            return
        except ConnectorError as exc:
            attempts = claimed.attempts + 1
            retry = self.settings.retry
            if retry.exhausted(attempts):
                await self._failed(claimed, ctx, f"{exc} (after {attempts} attempts)")
                return
            async with self.store.transaction() as session:
                await ledger.set_reply(session, claimed.id, status="retry", last_error=str(exc),
                                       next_at=utcnow() + timedelta(seconds=retry.delay(attempts)))
            return

        async def answered(session: AsyncSession) -> None:
            await ledger.set_reply(session, claimed.id, status="submitted", remote_id=remote_id, sent_at=utcnow(),
                                   last_error=None, next_at=utcnow() + timedelta(seconds=self.settings.poll_interval))
            message, acte = await self._fresh(session, ctx)
            message.state, message.updated_at = rules.ANSWERED, utcnow()
            await messages.record_event(session, acte, message, "prefecture_message.answered",
                                        {"code": claimed.code, "reply_transaction_id": remote_id,
                                         **({"recovered": True} if recovered else {})})

        # Should this fail, the reply stays an intent whose call was made: the next attempt finds it.
        await messages.retrying(self.store, answered)

    async def _sent_before(self, connector: Any, claimed: ledger.Claimed, ctx: _Context,
                           ref: PrefectureMessageRef) -> str | None:
        """The reply an earlier attempt made, if S²low has it: the acte's related transactions list a
        message that got a reply as that reply (getCourrierInfo, §2.2)."""
        if not ref.acte_transaction_id:
            return None
        related = await connector.prefecture_transactions(ref.acte_transaction_id)
        if ctx.message.remote_id in {r.transaction_id for r in related}:
            return None  # listed as itself: no reply to it at S²low
        async with self.store.sessions() as session:
            ours = (await session.execute(select(PrefectureMessage.id, PrefectureMessage.remote_id)
                                          .where(PrefectureMessage.document_id == ctx.doc.id))).tuples().all()
            replied = (await session.execute(select(PrefectureReply.remote_id).where(
                PrefectureReply.message_id.in_([i for i, _ in ours]), PrefectureReply.remote_id.is_not(None)))).scalars()
            known = {remote for _, remote in ours} | set(replied)
        found = [r.transaction_id for r in related
                 if r.type == ctx.message.code[0] and r.transaction_id not in known and r.transaction_id.isdigit()]
        if found:
            log.info("reply to %s found at the TdT (%s): not sending it again", ctx.message.remote_id, found[-1])
        return max(found, key=int) if found else None

    async def _inputs(self, claimed: ledger.Claimed, ctx: _Context) -> list[InputFile]:
        wanted = [f for f in claimed.files if f["role"] in (DOCUMENT_ROLE, ANNEXE_ROLE)]
        async with self.store.sessions() as session:
            rows = {f.name: f for f in (await session.execute(select(File).where(
                File.document_id == ctx.doc.id, File.name.in_([w["name"] for w in wanted])))).scalars()}
        data = await asyncio.to_thread(lambda: [self.blobs.get(rows[w["name"]].sha256) for w in wanted])
        return [InputFile(name=w["name"], role=w["role"], data=d, media_type=rows[w["name"]].media_type)
                for w, d in zip(wanted, data, strict=True)]

    async def _follow(self, connector: Any, claimed: ledger.Claimed, ctx: _Context) -> None:
        try:
            status = await connector.prefecture_reply(claimed.remote_id or "")
        except PermanentConnectorError as exc:
            await self._failed(claimed, ctx, str(exc))
            return
        except ConnectorError as exc:
            await ledger.later(self.store, claimed.id, self.settings.polls.error_interval, str(exc))
            return
        if status.status == -1:
            await self._failed(claimed, ctx, status.error or "Erreur")
        elif status.acknowledged or (claimed.code not in rules.ACKNOWLEDGED and status.status >= rules.TRANSMITTED):
            await self._closed(claimed, ctx, status)
        else:
            waited = (utcnow() - (claimed.sent_at or utcnow())).total_seconds()
            await ledger.later(self.store, claimed.id, self.settings.polls.delay(waited))

    async def _closed(self, claimed: ledger.Claimed, ctx: _Context, status: Any) -> None:
        ar = [status.ar] if status.ar is not None else []
        seal_for = ctx.doc.siren if ctx.encrypted else None
        refs = await asyncio.to_thread(lambda: [self.blobs.put(f.data, seal_for=seal_for) for f in ar])

        async def closed(session: AsyncSession) -> None:
            names = await messages.add_files(session, ctx.doc.id, [(f.name, AR_ROLE, f.media_type) for f in ar], refs)
            await ledger.set_reply(session, claimed.id, status="done", next_at=None, acknowledged_at=utcnow(),
                                   files=claimed.files + [{"name": n, "role": AR_ROLE} for n in names])
            message, acte = await self._fresh(session, ctx)
            message.state, message.updated_at = rules.CLOSED, utcnow()
            detail: dict[str, Any] = {"reply_transaction_id": claimed.remote_id, "code": claimed.code}
            if status.date_reception:
                detail["date_reception"] = status.date_reception.isoformat()
            if names:
                detail["ar"] = names[0]
            await messages.record_event(session, acte, message, "prefecture_message.closed", detail)

        await messages.retrying(self.store, closed)

    async def _failed(self, claimed: ledger.Claimed, ctx: _Context, reason: str) -> None:
        log.error("reply %s to préfecture message %s failed: %s", claimed.id, ctx.message.remote_id, reason)

        async def failed(session: AsyncSession) -> None:
            await ledger.set_reply(session, claimed.id, status="failed", next_at=None, last_error=reason)
            message, acte = await self._fresh(session, ctx)
            if message.state == rules.ANSWERED:
                message.state, message.updated_at = rules.RECEIVED, utcnow()
            await messages.record_event(session, acte, message, "prefecture_reply.failed",
                                        {"code": claimed.code, "reason": reason})

        await messages.retrying(self.store, failed)

    @staticmethod
    async def _fresh(session: Any, ctx: _Context) -> tuple[PrefectureMessage, Document]:
        message = await session.get(PrefectureMessage, ctx.message.id, populate_existing=True)
        acte = await session.get(Document, ctx.doc.id, populate_existing=True)
        assert message is not None and acte is not None
        return message, acte
