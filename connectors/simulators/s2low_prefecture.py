"""The préfecture's messages about an acknowledged acte and the collectivité's replies, added to the
S²low simulator by :func:`connectors.simulators.s2low.create_app` (docs/protocols.md §1.8-§1.11, §2.2).

How S²low records them (s2low:class/actes/ActesAnalyseFichierRecuController.php)
------------------------------------------------------------------------------
A message is a transaction related to the acte (``related_transaction_id``), of type 2 (2-1
courrier simple), 3 (3-1 demande de pièces complémentaires), 4 (4-1 lettre d'observations) or 5
(5-1 déféré au tribunal administratif), with the acte's numéro and IDActe (``unique_id``). 2-1 and
5-1 land at **21** Document reçu (pas d'AR); 3-1 and 4-1 at **7** Document reçu, then, once the TdT
has sent the 3-2 / 4-2 AR itself (after ``transmit_delay``), **8** Acquittement envoyé. Its archive
is the ministry's tar.gz: an ``EnveloppeMISILLCL`` (``EACT--SPREF<DEP><ARR>-<SIREN>-<YYYYMMDD>-<n>.xml``),
the message (``<IDActe>-3-1_<n>.xml``) and its PDF(s), every XML XSD-valid.

A reply (``actes_transac_reponse_create.php``) is a new transaction of the message's type with
``type_reponse`` 3 (refus) or 4 (envoi), related to the message: 1 → 2 → 3 like an acte, then the
préfecture's 3-5 ``ARPieceComplementaire`` (after 3-3 / 3-4) or 4-5
``ARReponseRejetLettreObservations`` (after 4-3 / 4-4) puts it at **4**; a 2-2
``ReponseCourrierSimple`` gets no AR and stays at 3. S²low does not refuse a second reply to the
same message.

S²low scripts
-------------
* ``GET  /modules/actes/api/list_document_prefecture.php`` → JSON ``[{id, type, related_transaction_id,
  number, unique_id, last_status_id}]``: the authority's unread messages (types "2"-"5", not replies),
  by id (``type`` is a string, the ids and status numbers)
* ``GET  /modules/actes/actes_transac_get_document.php?id=<id>`` (or ``unique_id=<IDActe>``): for an
  acte, one line ``<type>-<status>-<id>`` per transaction related to it, a message that got replies
  being printed as its replies (``ActesTransaction::getCourrierInfo``); for a message (or a reply),
  a redirect to ``actes_download_file.php?env=<id>``, its archive
* ``GET  /modules/actes/api/document_prefecture_mark_as_read.php?transaction_id=<id>`` → ``{"result": "ok"}``
* ``POST /modules/actes/actes_transac_reponse_create.php?api=1`` (multipart ``id``, ``type_envoie`` 3|4,
  ``type_acte``, file ``acte_pdf_file``; for a 3-4 also ``acte_attachments[]`` with ``type_pj[]``) →
  ``OK : id généré : <id>`` (UTF-8, as the script echoes it); ``KO : <message>``, or
  ``KO\\n…typologie absente`` without ``type_acte``

Admin
-----
* ``POST /_admin/prefecture-messages`` ``{"transaction": <acte id>, "type": "2-1"|"3-1"|"4-1"|"5-1",
  "text": optional}`` → 201 ``{"id": <message transaction id>, "type", "status"}``; the acte must be
  acknowledged (4 or 5): 404 / 409 otherwise, 422 for another type. ``text`` is the
  DescriptionPieces (3-1), Motif (4-1) or NatureIllegalite (5-1).
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from schemas.actes import messages, naming

if TYPE_CHECKING:
    from connectors.simulators.s2low import AuthorityIn, S2lowSimulator, Transaction

# message code -> (transaction type, root element, status on arrival, default text)
MESSAGE_KINDS: dict[str, tuple[int, str, int, str]] = {
    "2-1": (2, "CourrierSimple", 21, ""),
    "3-1": (3, "DemandePieceComplementaire", 7, "Merci de transmettre le plan de financement visé par le comptable."),
    "4-1": (4, "LettreObservations", 7, "La délibération ne vise pas l'avis préalable de la commission compétente."),
    "5-1": (5, "DefereTA", 21, "Incompétence de l'auteur de l'acte"),
}
# (message type, type_envoie) -> (reply code, root element)
REPLY_KINDS: dict[tuple[int, int], tuple[str, str]] = {
    (2, 4): ("2-2", "ReponseCourrierSimple"),
    (3, 3): ("3-3", "RefusPieceComplementaire"),
    (3, 4): ("3-4", "PieceComplementaire"),
    (4, 3): ("4-3", "RejetLettreObservations"),
    (4, 4): ("4-4", "ReponseLettreObservations"),
}
TYPOLOGY_RE = re.compile(r"^[A-Z0-9_]{5}$")


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transaction: int
    type: str = Field(pattern=r"^[2345]-1$")
    text: str | None = Field(None, max_length=2000)


class ReplyRefused(Exception):
    """A KO answer to actes_transac_reponse_create.php; ``plain`` marks the ``KO\\n…`` form."""

    def __init__(self, message: str, plain: bool = False) -> None:
        super().__init__(message)
        self.plain = plain


def _emetteur(auth: dict[str, Any]) -> dict[str, Any]:
    arrondissement = str(auth.get("arrondissement") or "0")
    return {"departement": auth["departement"], "arrondissement": arrondissement,
            "emetteur": "IDSousPref" if arrondissement != "0" else "IDPref"}


def send_message(sim: S2lowSimulator, acte: Transaction, code: str, text: str | None = None) -> Transaction:
    """The préfecture sends message ``code`` about ``acte``: build its archive, store the related
    transaction as S²low records it."""
    from connectors.simulators.s2low import StoredFile, Transaction, minimal_pdf
    from schemas.actes.archive import pack_tar_gz

    tx_type, root, status, default_text = MESSAGE_KINDS[code]
    auth = sim.state.authorities[acte.siren]
    now = sim.clock.now()
    day = now.date()
    serial = sim._ministry_serial()
    message_name = naming.response_file_name(code, serial, id_acte=acte.id_acte)
    stem = message_name.removesuffix(".xml")
    body = text or default_text
    pdf = minimal_pdf([f"Préfecture - {messages.PREFECTURE_MESSAGE_LABELS[code]}", f"Acte {acte.id_acte}",
                       f"Objet : {acte.objet}", *([body] if body else []), f"Le {day:%d/%m/%Y}"])
    documents = [(f"{stem}-1.pdf", pdf)]
    if code == "5-1":
        message_xml = messages.build_defere_ta(id_acte=acte.id_acte, date_depot=day, nature_illegalite=body,
                                               pieces=[n for n, _ in documents])
    else:
        message_xml = messages.build_courrier_pref(root, id_acte=acte.id_acte, date_courrier=day,
                                                   document=documents[0][0], text=body or None)
    place = _emetteur(auth)
    enveloppe_name = naming.response_enveloppe_name(sim.settings.quadrigramme, place["departement"],
                                                    place["arrondissement"], acte.siren, day, serial)
    enveloppe_xml = messages.build_enveloppe_misillcl(
        departement=place["departement"], arrondissement=place["arrondissement"], siren=acte.siren,
        files=[message_name], emetteur=place["emetteur"])
    archive = pack_tar_gz([(enveloppe_name, enveloppe_xml), (message_name, message_xml), *documents])
    tx_id = sim.state.next_transaction_id
    sim.state.next_transaction_id += 1
    tx = Transaction(
        id=tx_id, type=tx_type, siren=acte.siren, numero=acte.numero, nature=acte.nature,
        date_decision=acte.date_decision, objet=acte.objet, classification=acte.classification,
        classification_date=acte.classification_date, typologies=[], created_at=now.timestamp(), status=status,
        outcome="message", id_acte=acte.id_acte, archive_name=enveloppe_name.removesuffix(".xml") + ".tar.gz",
        archive_data=archive, enveloppe_name=enveloppe_name, enveloppe_xml=enveloppe_xml, acte_xml=message_xml,
        files=[StoredFile(sim._file_id(), message_name, message_name, "application/xml", message_xml)]
        + [StoredFile(sim._file_id(), n, n, "application/pdf", d) for n, d in documents],
        related_transaction_id=acte.id, message_type=code,
    )
    sim._set_status(tx, status, tx.created_at, "Document reçu" if status == 7 else "Document reçu (pas d'AR)")
    sim.state.transactions[tx_id] = tx
    sim.count(f"prefecture_message_{code}")
    sim.save()
    return tx


def create_reply(sim: S2lowSimulator, siren: str, authority: AuthorityIn, form: dict[str, Any]) -> Transaction:
    """``actes_transac_reponse_create.php``: the checks, the CL → MI archive, the reply transaction."""
    from connectors.simulators.s2low import StoredFile, Transaction, sniff_mimetype
    from schemas.actes.archive import Emetteur, build_message_archive

    message = sim.get(siren, str(form.get("id") or ""))
    if message is None or message.type not in (2, 3, 4, 5) or message.type_reponse is not None:
        raise ReplyRefused("La transaction n'existe pas")
    type_acte = str(form.get("type_acte") or "").strip()
    if not type_acte:
        raise ReplyRefused("Erreur lors de la réception du fichier : typologie absente", plain=True)
    try:
        type_envoie = int(str(form.get("type_envoie") or ""))
    except ValueError:
        type_envoie = 0
    kind = REPLY_KINDS.get((message.type, type_envoie))
    if kind is None:  # our wording: the real script builds whatever it is asked to
        raise ReplyRefused("Ce type de réponse n'est pas possible pour ce document de la préfecture")
    code, root = kind
    acte_file = form.get("acte_pdf_file")
    if acte_file is None or not acte_file.data:
        raise ReplyRefused("Envoi de fichier illégal.")
    attachments = form.get("acte_attachments", [])
    type_pj = [t.strip() for t in form.get("type_pj", [])]
    if attachments and code != "3-4":
        raise ReplyRefused("Erreur de validation d'un fichier de pièce jointe :\nseule une réponse 3-4 porte des pièces")
    for index, attachment in enumerate(attachments):
        if index >= len(type_pj) or not type_pj[index]:
            raise ReplyRefused(f"Erreur lors de la réception du fichier annexe {attachment.filename} : typologie absente",
                               plain=True)
    for typology in [type_acte, *type_pj[: len(attachments)]]:
        if not TYPOLOGY_RE.match(typology):
            raise ReplyRefused(f"La typologie {typology} n'est pas correcte")
    posted = [acte_file, *attachments]
    for item in posted:
        if sniff_mimetype(item.data) not in ("application/pdf", "application/xml", "image/png", "image/jpeg"):
            raise ReplyRefused(f"Erreur de validation du fichier de l'acte :\nLe type du fichier {item.filename} "
                               "n'est pas autorisé")
    if sniff_mimetype(acte_file.data) != "application/pdf":
        raise ReplyRefused("Erreur de validation du fichier de l'acte :\nLe fichier doit être au format PDF")

    now = sim.clock.now()
    day = now.date()
    courrier = messages.parse_actes_message(message.acte_xml or b"").fields
    date_courrier = courrier.get("date_courrier_pref") or courrier.get("date_depot") or day
    decision = date.fromisoformat(message.date_decision)
    common = dict(departement=authority.departement, siren=siren, date_decision=decision, numero=message.numero,
                  nature=message.nature, type_code=code)
    typologies = [type_acte, *type_pj[: len(attachments)]]
    names = [naming.business_file_name(**common, index=i + 1, ext="pdf" if sniff_mimetype(item.data) ==
                                       "application/pdf" else _ext(item.filename), typologie=typologies[i])
             for i, item in enumerate(posted)]
    message_name = naming.business_file_name(**common, index=0, ext="xml")
    reply_xml = messages.build_reponse_courrier(root, id_acte=message.id_acte, date_courrier=date_courrier,
                                                documents=names)
    day_key = f"{siren}:{day:%Y%m%d}"
    serial = sim.state.serials.get(day_key, 0) + 1
    return_emails = [sim.settings.tdt_email] + ([authority.email] if authority.email else [])
    built = build_message_archive(
        emetteur=Emetteur(siren, authority.departement, authority.arrondissement, authority.nature),
        message_name=message_name, message_xml=reply_xml, files=[(n, f.data) for n, f in zip(names, posted)],
        trigramme=sim.settings.trigramme, quadrigramme=sim.settings.quadrigramme, serial=serial, day=day,
        return_emails=return_emails,
    )
    sim.state.serials[day_key] = serial
    tx_id = sim.state.next_transaction_id
    sim.state.next_transaction_id += 1
    tx = Transaction(
        id=tx_id, type=message.type, siren=siren, numero=message.numero, nature=message.nature,
        date_decision=message.date_decision, objet=message.objet, classification=message.classification,
        classification_date=message.classification_date, typologies=typologies, created_at=now.timestamp(),
        status=1, outcome="ack", id_acte=message.id_acte, archive_name=built.name, archive_data=built.data,
        enveloppe_name=built.enveloppe_name, enveloppe_xml=built.enveloppe_xml, acte_xml=reply_xml,
        files=[StoredFile(sim._file_id(), message_name, message_name, "application/xml", reply_xml)]
        + [StoredFile(sim._file_id(), n, f.filename or n, sniff_mimetype(f.data) or "", f.data, t)
           for n, f, t in zip(names, posted, typologies)],
        related_transaction_id=message.id, type_reponse=type_envoie, message_type=code,
    )
    sim._set_status(tx, 1, tx.created_at, "Posté")
    sim.state.transactions[tx_id] = tx
    sim.count(f"reply_{code}")
    sim.save()
    return tx


def _ext(filename: str) -> str:
    ext = filename.rpartition(".")[2].lower()
    return ext if ext in ("pdf", "xml", "png", "jpg", "jpeg") else "pdf"


def install_prefecture(app: FastAPI, sim: S2lowSimulator) -> None:
    from connectors.simulators.s2low import _read_form, ko_text, unauthorized

    @app.get("/modules/actes/api/list_document_prefecture.php")
    async def list_document_prefecture(request: Request) -> Response:
        sim.count("list_document_prefecture")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        rows = []
        for tx in sorted(sim.state.transactions.values(), key=lambda t: t.id):
            if tx.siren == who[0] and tx.type in (2, 3, 4, 5) and tx.type_reponse is None and not tx.read:
                sim.refresh(tx)
                rows.append({"id": tx.id, "type": str(tx.type), "related_transaction_id": tx.related_transaction_id,
                             "number": tx.numero, "unique_id": tx.id_acte, "last_status_id": tx.status})
        return JSONResponse(rows)

    @app.get("/modules/actes/api/document_prefecture_mark_as_read.php")
    async def mark_as_read(request: Request) -> Response:
        sim.count("document_prefecture_mark_as_read")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        tx = sim.get(who[0], request.query_params.get("transaction_id") or "")
        if tx is not None and not tx.read:  # an UPDATE … WHERE id AND authority_id: ok either way
            tx.read = True
            sim.save()
        return JSONResponse({"result": "ok"})

    @app.get("/modules/actes/actes_transac_get_document.php")
    async def get_document(request: Request, id: str = "", unique_id: str = "") -> Response:
        sim.count("get_document")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        tx = sim.get(who[0], None, unique_id) if unique_id else sim.get(who[0], id) if id else None
        if tx is None:
            return Response("KO\nNuméro de transaction invalide.".encode("iso-8859-1"),
                            media_type="text/plain; charset=ISO-8859-1")
        if tx.type != 1:
            return RedirectResponse(f"actes_download_file.php?env={tx.id}", status_code=302)
        # ActesTransaction::getCourrierInfo: every transaction related to the acte (at1: messages,
        # annulations), LEFT JOIN the transactions related to it (at2: the collectivité's replies,
        # not type 6); a message that has replies is printed as its replies, with at1's type.
        ordered = sorted(sim.state.transactions.values(), key=lambda t: t.id)
        lines = []
        for other in (t for t in ordered if t.related_transaction_id == tx.id):
            replies = [r for r in ordered if r.related_transaction_id == other.id and r.type != 6]
            for shown in replies or [other]:
                sim.refresh(shown)
                lines.append(f"{other.type}-{shown.status}-{shown.id}\n")
        return Response("".join(lines).encode("ascii"), media_type="text/plain; charset=ISO-8859-1")

    @app.post("/modules/actes/actes_transac_reponse_create.php")
    async def reponse_create(request: Request) -> Response:
        sim.count("reponse_create")
        who = sim.authenticate(request)
        if who is None:
            return Response("KO : Échec de l'authentification".encode(), media_type="text/plain")
        try:
            form = await _read_form(request)
        except Exception as exc:  # noqa: BLE001 - malformed multipart, whatever the parser raises
            return Response(f"KO : Requête invalide : {exc}".encode(), media_type="text/plain")
        try:
            tx = create_reply(sim, who[0], who[1], form)
        except ReplyRefused as exc:
            sim.count("reponse_create_ko")
            if exc.plain:
                return ko_text(str(exc))
            return Response(f"KO : {exc}".encode(), media_type="text/plain")
        return Response(f"OK : id généré : {tx.id}\n".encode(), media_type="text/plain")

    @app.post("/_admin/prefecture-messages")
    async def admin_prefecture_message(body: MessageIn) -> Response:
        acte = next((t for t in sim.state.transactions.values() if t.id == body.transaction), None)
        if acte is None or acte.type != 1:
            return JSONResponse({"error": f"no acte transaction {body.transaction}"}, status_code=404)
        sim.refresh(acte)
        if acte.status not in (4, 5):
            return JSONResponse({"error": f"transaction {acte.id} is at status {acte.status}, not acknowledged"},
                                status_code=409)
        tx = send_message(sim, acte, body.type, body.text)
        return JSONResponse({"id": tx.id, "type": body.type, "status": tx.status}, status_code=201)


__all__ = ["MESSAGE_KINDS", "REPLY_KINDS", "create_reply", "install_prefecture", "send_message"]
