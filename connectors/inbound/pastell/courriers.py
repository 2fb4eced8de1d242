"""The préfecture's letters (bus/courriers) through the Pastell API, as Pastell 2's actes-generique
shows them (pastell: module/actes-generique/definition.yml, action/TedetisVerifReponsePref.class.php,
connecteur/s2low/S2low.class.php::sendReponseType), on the prefixes the flux declares (`courriers`
in flux/actes-generique.yaml: courrier_simple, demande_piece_complementaire, lettre_observation,
defere_tribunal_administratif):

- data: `has_<x>` "1", `<x>_id` (the TdT transaction), `<x>_date`; files `<x>` (the archive) and
  `<x>_unzip` (its files); once replied: `has_reponse_<x>`, `<x>_response_transaction_id`,
  `nature_reponse_<x>` (3 refus, 4 réponse), files `reponse_<x>` (and
  `reponse_pj_demande_piece_complementaire`); `<x>_has_acquittement` when the 3-5 / 4-5 came;
- `last_action` `attente-reponse-prefecture` ("Attente d'une réponse") from the moment a letter
  waits for its answer, unless something happened to the acte since;
- `verif-reponse-tdt`: the collectivité's TdT is asked at the worker's next round (dematbus collects
  on its own; clients that push the poll keep working);
- `send-reponse-prefecture`: the reply the client put in those fields (PATCH / modif-document,
  allowed on the reply fields while a letter waits), for each waiting letter that has its
  `reponse_<x>`, through bus/courriers/replies.py like the REST API's.
Pastell keeps one letter per type and acte ("plusieurs messages de même type … non traité par
Pastell"): the latest of each type is shown.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from bus.courriers import ledger, rules
from bus.courriers.messages import Listed, of_documents
from bus.courriers.replies import (
    ANNEXE_ROLE,
    DOCUMENT_ROLE,
    ReplyRefused,
    ReplyRequest,
    request_reply,
)
from bus.deposits import Upload
from bus.store.models import ApiKey
from bus.store.models import File as FileRow
from connectors.inbound.pastell.errors import PastellError, not_permitted

if TYPE_CHECKING:
    from connectors.inbound.pastell.documents import Documents, Loaded

WAITING, SEND, VERIFY = "attente-reponse-prefecture", "send-reponse-prefecture", "verif-reponse-tdt"
ACTIONS = {
    VERIFY: {"name-action": "Vérifier s'il y a des réponses de la préfecture", "name": "Message de la préfecture récupéré",
             "rule": {"has-action": ["acquiter-tdt"]}},
    WAITING: {"name": "Réponse à la préfecture attendue", "rule": {"role_id_e": "no-role"}},
    SEND: {"name-action": "Envoyer la réponse à la préfecture", "name": "Envoi de la réponse à la préfecture",
           "rule": {"has-action": [WAITING], "no-action": [SEND]}},
}
PIECES_PJ = "reponse_pj_demande_piece_complementaire"


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


async def letters(session: AsyncSession, flux: Any, document_id: str) -> dict[str, Listed]:
    """prefix -> the latest letter of that type about the acte."""
    return (await letters_of(session, {document_id: flux})).get(document_id, {})


async def letters_of(session: AsyncSession, flux_of: dict[str, Any]) -> dict[str, dict[str, Listed]]:
    """The same for many actes (document id -> its flux), in one query per 500."""
    wanted = [doc_id for doc_id, flux in flux_of.items() if flux.courriers]
    found = await of_documents(session, wanted) if wanted else {}
    return {doc_id: {flux_of[doc_id].courriers[i.message.code]: i for i in items
                     if i.message.code in flux_of[doc_id].courriers} for doc_id, items in found.items()}


def waiting(loaded: Loaded) -> list[tuple[str, Listed]]:
    """Letters that wait for their answer, in Pastell's order (2, 3, 4)."""
    return [(prefix, item) for prefix, item in loaded.letters.items()
            if item.message.state == rules.RECEIVED and rules.takes_reply(item.message.code)
            and not (item.reply and item.reply.status in (*rules.OPEN, "done"))]


def _reply_fields(prefix: str) -> set[str]:
    return {f"reponse_{prefix}", f"nature_reponse_{prefix}"} | ({PIECES_PJ} if prefix == "demande_piece_complementaire"
                                                                 else set())


def editable(loaded: Loaded, fields: Collection[str]) -> bool:
    """A deposited acte takes the reply fields of its waiting letters (Pastell's editable-content
    in attente-reponse-prefecture), nothing else."""
    allowed = set().union(*(_reply_fields(prefix) for prefix, _ in waiting(loaded))) if waiting(loaded) else set()
    return bool(fields) and set(fields) <= allowed


def _files(loaded: Loaded, names: list[str]) -> list[FileRow]:
    by_name = {f.name: f for f in loaded.files}
    return [by_name[n] for n in names if n in by_name]


def result_files(loaded: Loaded, field: str) -> list[FileRow] | None:
    """The files a letter's field shows; None when the field is none of them."""
    for prefix, item in loaded.letters.items():
        m, r = item.message, item.reply
        sent = [f for f in (r.files if r else []) if f["role"] in (DOCUMENT_ROLE, ANNEXE_ROLE)]
        if field == prefix:
            return _files(loaded, m.files[:1])
        if field == f"{prefix}_unzip":
            return _files(loaded, m.files[1:])
        if r is not None and r.remote_id and field == f"reponse_{prefix}":
            return _files(loaded, [f["name"] for f in sent[:1]])
        if r is not None and r.remote_id and prefix == "demande_piece_complementaire" and field == PIECES_PJ:
            return _files(loaded, [f["name"] for f in sent[1:]])
    return None


def data(loaded: Loaded) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for prefix, item in loaded.letters.items():
        m, r = item.message, item.reply
        out[f"has_{prefix}"] = "1"
        out[f"{prefix}_id"] = m.remote_id
        out[f"{prefix}_date"] = stamp(m.received_at)
        for field in (prefix, f"{prefix}_unzip", f"reponse_{prefix}", PIECES_PJ):
            rows = result_files(loaded, field)
            if rows:
                out[field] = [f.name for f in rows]
        if r is not None and r.remote_id and r.status in ("submitted", "done"):
            out[f"has_reponse_{prefix}"] = "1"
            out[f"{prefix}_response_transaction_id"] = r.remote_id
            out[f"nature_reponse_{prefix}"] = "3" if r.kind == "refus" else "4"
            if r.acknowledged_at is not None and r.code in rules.ACKNOWLEDGED:
                out[f"{prefix}_has_acquittement"] = "1"
    return out


def adjust(loaded: Loaded, last: tuple[str, str, datetime, list[str]]) -> tuple[str, str, datetime, list[str]]:
    """The acte's last action and possible actions, with its letters."""
    action, message, at, possible = last
    doc = loaded.doc
    if doc is None or not loaded.flux.courriers:
        return last
    possible = list(possible)
    if (doc.replies or {}).get("id_acte"):
        possible.append(VERIFY)
    pending = waiting(loaded)
    if pending:
        possible.append(SEND)
        since = max(item.message.received_at for _, item in pending)
        if since >= at:
            action, message, at = WAITING, "Attente d'une réponse", since
    else:
        sent = [item.reply.sent_at for item in loaded.letters.values() if item.reply and item.reply.sent_at]
        if sent and max(sent) >= at:
            action, message, at = SEND, "Réponse envoyée à la préfecture", max(sent)
    return action, message, at, possible


async def act(documents: Documents, key: ApiKey, loaded: Loaded, action: str) -> dict[str, Any]:
    assert loaded.doc is not None
    if action == VERIFY:
        async with documents.store.transaction() as session:
            await ledger.poll_now(session, loaded.doc.siren)
        return {"result": True, "message": "Vérification demandée"}
    sent = 0
    for prefix, item in waiting(loaded):
        chosen = loaded.row.files.get(f"reponse_{prefix}") or []
        if not chosen:
            continue
        refus = (loaded.row.fields.get(f"nature_reponse_{prefix}") or "4").strip() == "3"
        kind = "refus" if refus else "pieces" if item.message.code == "3-1" else "reponse"
        extra = loaded.row.files.get(PIECES_PJ, []) if kind == "pieces" else []
        wanted = ReplyRequest(kind=kind, document=_upload(documents, chosen[0], "document"),
                              annexes=[_upload(documents, e, "annexe") for e in extra])
        try:
            await request_reply(documents.store, documents.depositor, key, loaded.doc.id, item.message.id, wanted)
        except ReplyRefused as exc:
            raise PastellError(400, f"Erreur lors de la transmission : {exc.message}") from None
        sent += 1
    if not sent:
        raise not_permitted(action, "aucune réponse (reponse_<type>) à envoyer")
    return {"result": True, "message": "Réponse envoyée à la préfecture"}


def _upload(documents: Documents, entry: dict[str, Any], role: str) -> Upload:
    return Upload(name=entry["name"], role=role, chunks=documents.blobs.iter_chunks(entry["sha256"]),
                  content_type=entry.get("media_type"))
