"""Publication of actes (R2131-1 CGCT): what the public registry shows, withdrawing an acte from
it, and turning a collectivité's publication on or off.

An acte is published when its flow's `publication` stage is done: the document then has a file
of role `published_document` (the stamped PDF, connectors/publication) and the replies
`date_publication`, `publication_url`, `executoire_le`. Nothing else of the bus is read here: the
registry (connectors/inbound/publication) serves only what `registry` returns.

A withdrawal (`withdraw`, operator action) never deletes: the document gains
`publication_withdrawn_on` and `publication_withdrawal_reason`, journaled with who asked, and the
registry shows the acte as withdrawn with that date and reason.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from bus import moves
from bus.collectivite_config import connectors_of, store_connectors
from bus.flows.definition import flow_names, load_flow
from bus.scope import in_scope
from bus.store import journal
from bus.store.db import Store
from bus.store.models import Collectivite, Document, File
from connectors.publication.connector import PUBLISHED_ROLE
from schemas.actes.classification import Classification
from schemas.actes.metadata import today_paris
from schemas.actes.naming import ID_ACTE_RE
from schemas.actes.publication import OPTION, PublicationSettings, publication_settings
from schemas.errors import SchemaError

STAGE_KIND = "publication"
MAX_REASON = 500
WITHDRAWN_ON, WITHDRAWAL_REASON, WITHDRAWN_BY = (
    "publication_withdrawn_on", "publication_withdrawal_reason", "publication_withdrawn_by")


class PublicationRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class PublishedFile:
    name: str
    sha256: str
    size: int
    media_type: str


@dataclass(frozen=True)
class Withdrawal:
    on: date
    reason: str


@dataclass(frozen=True)
class PublishedActe:
    document_id: str
    id_acte: str
    numero: str
    objet: str
    nature: int
    classification: str
    date_decision: date
    date_publication: date
    date_ar: date | None
    executoire_le: date | None
    auteur: str
    qualite: str
    votes: tuple[int | None, int | None, int | None, int | None, int | None]  # effectif, réel, pour, contre, abstention
    pdf: PublishedFile
    annexes: tuple[PublishedFile, ...]
    withdrawal: Withdrawal | None
    cancelled: bool  # its transmission was later cancelled (annulation 6-1 acknowledged by the préfecture)


@dataclass(frozen=True)
class Registry:
    siren: str
    name: str
    departement: str
    settings: PublicationSettings | None  # None: publication turned off since (earlier actes stay)
    matieres: dict[str, str]  # classification code -> label, for the SCDL matière
    actes: list[PublishedActe]  # newest publication first


@cache
def publishing_flows() -> tuple[str, ...]:
    return tuple(n for n in flow_names() if any(s.kind == STAGE_KIND for s in load_flow(n).stages))


def _settings_of(coll: Collectivite) -> PublicationSettings | None:
    try:
        return publication_settings(connectors_of(coll).flow_options("actes") or None)
    except SchemaError:
        return None


async def registry(store: Store, siren: str, id_acte: str | None = None) -> Registry | None:
    """The collectivité's published actes (only the one with this IDActe when given); None when
    it neither publishes nor ever published (the registry then does not exist, like an unknown
    SIREN), or when no published acte has this IDActe."""
    where: list[Any] = [Document.siren == siren]
    if id_acte is not None:
        match = ID_ACTE_RE.match(id_acte)
        if match is None or match["siren"] != siren:
            return None
        where.append(Document.business_key == match["numero"])  # the numéro is unique per collectivité
    async with store.sessions() as session:
        coll = await session.get(Collectivite, siren)
        if coll is None:
            return None
        actes = [a for a in await _published(session, *where) if id_acte is None or a.id_acte == id_acte]
        settings = _settings_of(coll)
        if not actes and (settings is None or id_acte is not None):
            return None
        labels = Classification.parse(coll.classification_xml, check_xsd=False).labels if coll.classification_xml else {}
    actes.sort(key=lambda a: (a.date_publication, a.numero), reverse=True)
    return Registry(siren=siren, name=coll.name, departement=coll.departement, settings=settings,
                    matieres=labels, actes=actes)


async def _published(session: AsyncSession, *where: Any) -> list[PublishedActe]:
    rows = (await session.execute(
        select(Document, File).join(File, File.document_id == Document.id)
        .where(Document.flow.in_(publishing_flows()), File.role == PUBLISHED_ROLE, *where)
        .order_by(File.id)
    )).tuples().all()
    latest = {doc.id: (doc, pdf) for doc, pdf in rows}  # a replay may have stamped twice: the last one counts
    published = {i: v for i, v in latest.items() if v[0].replies.get("date_publication")}
    annexes: dict[str, list[PublishedFile]] = {}
    if published:  # the same documents, joined again: no list of ids that grows with the registry
        for f in (await session.execute(
            select(File).join(Document, File.document_id == Document.id)
            .where(Document.flow.in_(publishing_flows()), File.role == "annexe", *where).order_by(File.id)
        )).scalars():
            if f.document_id in published:
                annexes.setdefault(f.document_id, []).append(_file(f))
    return [_acte(doc, pdf, annexes.get(doc.id, [])) for doc, pdf in published.values()]


def _file(f: File) -> PublishedFile:
    return PublishedFile(name=f.name, sha256=f.sha256, size=f.size, media_type=f.media_type)


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _acte(doc: Document, pdf: File, annexes: Sequence[PublishedFile]) -> PublishedActe:
    meta, replies = doc.meta or {}, doc.replies or {}
    withdrawn_on = _day(replies.get(WITHDRAWN_ON))
    return PublishedActe(
        document_id=doc.id, id_acte=str(replies.get("id_acte") or ""), numero=str(meta.get("numero_interne") or ""),
        objet=str(meta.get("objet") or ""), nature=int(meta.get("nature") or 0),
        classification=str(meta.get("classification") or ""),
        date_decision=_day(meta.get("date_decision")) or date.min,
        date_publication=_day(replies.get("date_publication")) or date.min,
        date_ar=_day(replies.get("date_reception")), executoire_le=_day(replies.get("executoire_le")),
        auteur=f"{meta.get('auteur_prenom') or ''} {meta.get('auteur_nom') or ''}".strip(),
        qualite=str(meta.get("auteur_qualite") or ""),
        votes=tuple(meta.get(k) for k in ("vote_effectif", "vote_reel", "vote_pour", "vote_contre",  # type: ignore[arg-type]
                                          "vote_abstention")),
        pdf=_file(pdf), annexes=tuple(annexes),
        withdrawal=Withdrawal(withdrawn_on, str(replies.get(WITHDRAWAL_REASON) or "")) if withdrawn_on else None,
        cancelled=doc.state == "cancelled",
    )


# -- withdrawal ----------------------------------------------------------------------------------


async def withdraw(store: Store, document_id: str, actor: str, reason: str, *,
                   scope: Collection[str] | None = None) -> date:
    """Withdraw a published acte from the registry, journaled (`publication.withdrawn`) with
    `actor` and the reason, and announced like a move (webhooks). Returns the withdrawal date.

    `scope`: the SIRENs the caller may act on (None or containing "*": any). Raises
    PublicationRefused: 422 invalid_reason, 404 document_not_found, 409 not_published,
    already_withdrawn."""
    reason = " ".join(reason.split())
    if not 1 <= len(reason) <= MAX_REASON:
        raise PublicationRefused(422, "invalid_reason", f"Le motif du retrait est obligatoire (1 à {MAX_REASON} "
                                                        "caractères) / a withdrawal needs a reason")
    for _ in range(5):
        try:
            async with store.transaction() as session:
                doc = await session.get(Document, document_id)
                if doc is None or (scope is not None and not in_scope(scope, doc.siren)):
                    raise PublicationRefused(404, "document_not_found", f"Document introuvable / no document {document_id}")
                replies = doc.replies or {}
                if not replies.get("date_publication"):
                    raise PublicationRefused(409, "not_published", "Cet acte n'est pas publié / this acte is not published")
                if replies.get(WITHDRAWN_ON):
                    raise PublicationRefused(409, "already_withdrawn", "Cet acte a déjà été retiré de la publication "
                                                                       f"le {replies[WITHDRAWN_ON]} / already withdrawn")
                today = today_paris()
                doc.replies = {**replies, WITHDRAWN_ON: today.isoformat(), WITHDRAWAL_REASON: reason, WITHDRAWN_BY: actor}
                await session.flush()  # version check: the engine may be moving the document
                entry = await journal.append(session, doc.id, "publication.withdrawn", doc.state,
                                             {"by": actor, "reason": reason})
                await moves.announce(session, doc, entry)
                return today
        except StaleDataError:
            continue
    raise PublicationRefused(409, "busy", "Document modifié en même temps, réessayez / document busy, retry")


# -- settings ------------------------------------------------------------------------------------


async def configure(session: AsyncSession, siren: str, settings: PublicationSettings | None) -> Collectivite:
    """Turn a collectivité's publication on (with its default natures and SIRET) or off. Turning
    it off stops new publications; the actes already published stay on the registry."""
    coll = await session.get(Collectivite, siren)
    if coll is None:
        raise PublicationRefused(404, "unknown_collectivite", f"Collectivité inconnue / unknown collectivité {siren}")
    config = connectors_of(coll)
    actes = config.flow_options("actes")
    if settings is None:
        actes.pop(OPTION, None)
    else:
        actes[OPTION] = settings.model_dump(exclude_none=True)
        if not config.has(STAGE_KIND):
            config = config.with_slot(STAGE_KIND, {"kind": "registre", "url": "public://"})
    store_connectors(coll, config.with_flow_options("actes", actes))
    await session.flush()
    return coll
