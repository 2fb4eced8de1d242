"""Replying to the préfecture: 3-4 pièces complémentaires, 3-3 / 4-3 refus, 2-2 / 4-4 réponse
(docs/protocols.md §1.8, §2.2 `actes_transac_reponse_create.php`), and closing a letter without a
reply: the requests, from the REST API, the console and the Pastell API.

`request_reply` only checks and records: the files, checked as a deposit's are (bus/deposits.py),
become files of the acte; a `prefecture_replies` row (status intent: the effect's intent, recorded
before any call) and the acte's journal entry are written in one transaction. The worker sends it
(bus/courriers/sender.py). A letter is `received` until the TdT took the reply, `answered` until
its acknowledgement, then `closed`; a reply the TdT refuses leaves it `received`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from bus.courriers import messages, rules
from bus.deposits import Depositor, DepositRefused, Upload
from bus.flows.definition import load_flow
from bus.scope import in_scope
from bus.store.db import Store
from bus.store.models import (
    ApiKey,
    Collectivite,
    Document,
    PrefectureMessage,
    PrefectureReply,
    utcnow,
)
from schemas.actes.classification import Classification
from schemas.actes.deposit import ANNEXE_TYPES
from schemas.actes.metadata import TYPOLOGIE_RE
from schemas.actes.naming import NATURES
from schemas.deposit import sniff_media_type
from schemas.errors import SchemaError

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
    except SchemaError as exc:
        raise ReplyRefused(422, exc.code, exc.message) from None
    # What the bytes are, never what the client claimed (as schemas/actes/deposit.py checks a deposit).
    if sniff_media_type(stored[0][0].head) != "application/pdf":
        raise ReplyRefused(415, "document_not_pdf", f"La réponse doit être un PDF / {stored[0][0].name!r} is not a PDF")
    for info, _ in stored[1:]:
        if sniff_media_type(info.head) not in ANNEXE_TYPES:
            raise ReplyRefused(415, "annexe_bad_type", f"Type d'annexe non autorisé / {info.name!r} must be PDF, XML, "
                                                       "PNG or JPEG")
    try:
        for info, ref in stored:
            await asyncio.to_thread(depositor.check_content, info, ref, sealed=flow.encrypted)
    except SchemaError as exc:
        raise ReplyRefused(422, exc.code, exc.message) from None
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
