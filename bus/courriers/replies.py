"""Replying to the préfecture: 3-4 pièces complémentaires, 3-3 / 4-3 refus, 2-2 / 4-4 réponse
(docs/protocols.md §1.8, §2.2 `actes_transac_reponse_create.php`), and closing a message without
a reply.

`request_reply` (the REST API, the console, the Pastell API) only checks and records: the files,
checked as a deposit's are (bus/deposits.py), become files of the acte; a `prefecture_replies`
row (status intent) and the acte's journal entry are written in one transaction; nothing is sent
yet. The worker's `ReplyRunner` then sends it, through the effects ledger like any transmission:
the intent is recorded before the call, and when an earlier attempt may have reached the TdT
(a crash, a timeout), S²low, which refuses no second reply to a message, is asked what it holds
first: the acte's related transactions (`actes_transac_get_document.php`, §2.2 and §2.6) list a
message that got a reply as that reply, so a reply there that the bus does not know is ours and
is not sent again. It then follows the reply until the préfecture's 3-5 / 4-5 (a 2-2 gets none:
it ends once transmitted).

The message is `received` until the TdT took the reply, `answered` until its acknowledgement,
then `closed`. A reply the TdT refuses leaves the message `received`, to be answered again.
The lease / retry / reschedule mechanics are bus/courriers/ledger.py's.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bus.blobs import BlobStore
from bus.courriers import ledger, messages, rules
from bus.deposits import Depositor, DepositRefused, Upload
from bus.flows.definition import load_flow
from bus.scope import in_scope
from bus.stages.runner import RunnerSettings, poll_delay
from bus.store.db import Store
from bus.store.models import ApiKey, Collectivite, Document, File, PrefectureMessage, PrefectureReply, utcnow
from connectors.base import ConnectorError, InputFile, PermanentConnectorError
from connectors.registry import ConnectorRegistry
from connectors.tdt.s2low_prefecture import PrefectureMessageRef
from schemas.actes.classification import Classification
from schemas.actes.deposit import ANNEXE_TYPES
from schemas.actes.metadata import TYPOLOGIE_RE
from schemas.actes.naming import NATURES
from schemas.deposit import sniff_media_type

log = logging.getLogger(__name__)

REPLY_ROLES = ("depositor", "operator", "admin")
DOCUMENT_ROLE, ANNEXE_ROLE, AR_ROLE = "prefecture_reply_document", "prefecture_reply_annexe", "prefecture_reply_ar"


class ReplyRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class ReplyRequest:
    kind: str  # pieces, refus, reponse
    document: Upload | None
    annexes: list[Upload] = field(default_factory=list)
    typologies: list[str] = field(default_factory=list)  # the document's, then each annexe's


# -- the request (API, console, Pastell API) -----------------------------------------------------


async def load_document(store: Store, key: ApiKey, document_id: str) -> Document:
    """The acte, for a key in scope; another collectivité's answers alike a missing one (no
    existence leak)."""
    async with store.sessions() as session:
        doc = await session.get(Document, document_id)
    if doc is None or not in_scope(key, doc.siren):
        raise ReplyRefused(404, "document_not_found", f"Document introuvable / no document {document_id}")
    return doc


async def load_message(store: Store, key: ApiKey, document_id: str,
                       message_id: int) -> tuple[Document, PrefectureMessage, PrefectureReply | None]:
    """The acte and its message, for a key in scope."""
    doc = await load_document(store, key, document_id)
    async with store.sessions() as session:
        message = await session.get(PrefectureMessage, message_id)
        if message is None or message.document_id != doc.id:
            raise ReplyRefused(404, "message_not_found",
                               f"Message de la préfecture introuvable / no message {message_id} on this document")
        last = (await messages.latest_replies(session, [message.id])).get(message.id)
    return doc, message, last


def _allowed(key: ApiKey) -> None:
    if not set(REPLY_ROLES) & set(key.roles):
        raise ReplyRefused(403, "forbidden_role", f"Rôle requis / this needs one of the roles: {', '.join(REPLY_ROLES)}")


def _open(message: PrefectureMessage, last: PrefectureReply | None) -> None:
    """Refusals of a message that takes no reply now (409)."""
    if not rules.takes_reply(message.code):
        raise ReplyRefused(409, "no_reply_expected",
                           f"Un {rules.LABELS[message.code].lower()} ({message.code}) n'appelle pas de réponse par le "
                           f"TdT / a {message.code} takes no reply")
    if message.state == rules.CLOSED:
        raise ReplyRefused(409, "message_closed", "Ce message est clos / this message is closed")
    if last is not None and last.status in (*rules.OPEN, "done"):
        raise ReplyRefused(409, "already_answered" if last.status == "done" or message.state == rules.ANSWERED
                           else "reply_pending", "Une réponse est déjà envoyée ou en cours d'envoi / "
                           "a reply is already sent or under way")


def _typologies(doc: Document, coll: Collectivite | None, given: list[str], count: int) -> list[str]:
    if len(given) > count:
        raise ReplyRefused(422, "typologie_count", f"Trop de typologies / {len(given)} typology codes for {count} files")
    for code in given:
        if not TYPOLOGIE_RE.match(code):
            raise ReplyRefused(422, "invalid_typologie", f"Typologie invalide / invalid typology code {code!r}")
    nature = int((doc.meta or {}).get("nature") or 0)
    if given and coll is not None and coll.classification_xml:
        allowed = Classification.parse(coll.classification_xml).typologies_for(nature)
        for code in given:
            if allowed and code not in allowed:
                raise ReplyRefused(422, "unknown_typologie", "La typologie n'est pas autorisée pour cette nature / "
                                                             f"typology {code} is not allowed for nature {nature}")
    default = NATURES[nature].typologie if nature in NATURES else "99_AU"
    return list(given) + [default] * (count - len(given))


async def request_reply(store: Store, depositor: Depositor, key: ApiKey, document_id: str, message_id: int,
                        request: ReplyRequest) -> PrefectureReply:
    """Check and record a reply; the worker sends it. Raises ReplyRefused (403 forbidden_role,
    404 document_not_found / message_not_found, 409 no_reply_expected / reply_kind_not_allowed /
    message_closed / already_answered / reply_pending, 413 / 415 / 422 for the files)."""
    doc, message, last = await load_message(store, key, document_id, message_id)
    _allowed(key)
    _open(message, last)
    if request.kind not in rules.KINDS:
        raise ReplyRefused(422, "invalid_reply_kind", f"Type de réponse inconnu / kind must be one of {', '.join(rules.KINDS)}")
    code = rules.REPLIES[message.code].get(request.kind)
    if code is None:
        raise ReplyRefused(409, "reply_kind_not_allowed",
                           f"Un {message.code} n'admet pas de réponse « {request.kind} » / a {message.code} takes "
                           f"{' or '.join(rules.REPLIES[message.code])}")
    if request.document is None:
        raise ReplyRefused(422, "document_required", "Le courrier de réponse (PDF) est requis / document is required")
    if request.annexes and request.kind != "pieces":
        raise ReplyRefused(422, "annexes_not_allowed",
                           "Seul l'envoi de pièces complémentaires (3-4) porte des annexes / only pieces carry annexes")
    settings = depositor.settings
    if len(request.annexes) > settings.max_annexes:
        raise ReplyRefused(422, "too_many_annexes", f"Trop d'annexes / at most {settings.max_annexes} annexes")
    uploads = [request.document, *request.annexes]
    names = [u.name for u in uploads]
    if len(set(names)) != len(names):
        raise ReplyRefused(422, "duplicate_file_name", "Nom de fichier en double / two files have the same name")
    async with store.sessions() as session:
        coll = await session.get(Collectivite, doc.siren)
    typologies = _typologies(doc, coll, request.typologies, len(uploads))
    flow = load_flow(doc.flow)
    max_bytes = flow.max_file_mb * 1024 * 1024 if flow.max_file_mb else settings.max_file_bytes
    try:
        stored = [await depositor.store_upload(u, max_bytes, doc.siren if flow.encrypted else None) for u in uploads]
    except DepositRefused as exc:
        raise ReplyRefused(exc.status, exc.code, exc.message) from None
    # What the bytes are, never what the client claimed (as schemas/actes/deposit.py checks a deposit).
    if sniff_media_type(stored[0][0].head) != "application/pdf":
        raise ReplyRefused(415, "document_not_pdf", f"La réponse doit être un PDF / {stored[0][0].name!r} is not a PDF")
    for info, _ in stored[1:]:
        if sniff_media_type(info.head) not in ANNEXE_TYPES:
            raise ReplyRefused(415, "annexe_bad_type", f"Type d'annexe non autorisé / {info.name!r} must be PDF, XML, "
                                                       "PNG or JPEG")
    roles = [DOCUMENT_ROLE] + [ANNEXE_ROLE] * len(request.annexes)

    async def record(session: AsyncSession) -> PrefectureReply:
        fresh = await session.get(PrefectureMessage, message.id, populate_existing=True)
        assert fresh is not None
        last = (await messages.latest_replies(session, [fresh.id])).get(fresh.id)
        _open(fresh, last)  # a concurrent request may have won meanwhile
        given = await messages.add_files(session, doc.id, [(i.name, r, i.media_type) for (i, _), r in zip(stored, roles)],
                                         [ref for _, ref in stored])
        reply = PrefectureReply(
            message_id=fresh.id, generation=(last.generation + 1) if last else 1, kind=request.kind, code=code,
            status="intent", requested_by=key.name or key.id, attempts=0, next_at=utcnow(),
            files=[{"name": n, "role": r, "typologie": t} for n, r, t in zip(given, roles, typologies)])
        session.add(reply)
        await session.flush()
        acte = await session.get(Document, doc.id, populate_existing=True)
        assert acte is not None
        await messages.record_event(session, acte, fresh, "prefecture_reply.requested",
                                    {"kind": request.kind, "code": code, "by": reply.requested_by, "files": given})
        return reply

    return await messages.retrying(store, record)


async def close_message(store: Store, key: ApiKey, document_id: str, message_id: int) -> None:
    """Close a received message without replying (a courrier simple that wants no answer, a
    déféré taken note of, a letter the collectivité chooses not to answer); journaled with who."""
    doc, message, last = await load_message(store, key, document_id, message_id)
    _allowed(key)
    if message.state != rules.RECEIVED or (last is not None and last.status in rules.OPEN):
        raise ReplyRefused(409, "message_not_open", "Seul un message reçu, sans réponse en cours, se classe / "
                                                    "only a received message with no reply under way can be closed")

    async def close(session: AsyncSession) -> None:
        fresh = await session.get(PrefectureMessage, message.id, populate_existing=True)
        acte = await session.get(Document, doc.id, populate_existing=True)
        assert fresh is not None and acte is not None
        last = (await messages.latest_replies(session, [fresh.id])).get(fresh.id)
        if fresh.state != rules.RECEIVED or (last is not None and last.status in rules.OPEN):
            raise ReplyRefused(409, "message_not_open", "Ce message n'est plus ouvert / this message is not open any more")
        fresh.state, fresh.closed_by, fresh.updated_at = rules.CLOSED, key.name or key.id, utcnow()
        await messages.record_event(session, acte, fresh, "prefecture_message.closed",
                                    {"by": fresh.closed_by, "without_reply": True})

    await messages.retrying(store, close)


# -- the worker ----------------------------------------------------------------------------------


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
                       dict(coll.connectors or {}) if coll else {}, flow.encrypted)
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
            if attempts >= self.settings.max_attempts:
                await self._failed(claimed, ctx, f"{exc} (after {attempts} attempts)")
                return
            async with self.store.transaction() as session:
                await ledger.set_reply(session, claimed.id, status="retry", last_error=str(exc),
                                       next_at=utcnow() + timedelta(seconds=ledger.retry_delay(self.settings, attempts)))
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
            await ledger.later(self.store, claimed.id, max(self.settings.poll_interval, self.settings.retry_backoff),
                               str(exc))
            return
        if status.status == -1:
            await self._failed(claimed, ctx, status.error or "Erreur")
        elif status.acknowledged or (claimed.code not in rules.ACKNOWLEDGED and status.status >= rules.TRANSMITTED):
            await self._closed(claimed, ctx, status)
        else:
            waited = (utcnow() - (claimed.sent_at or utcnow())).total_seconds()
            await ledger.later(self.store, claimed.id, poll_delay(waited, self.settings))

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
