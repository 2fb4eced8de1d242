"""The préfecture's messages about acknowledged actes, and the collectivité's replies, through S²low
(docs/protocols.md §1.8-§1.11, §2.2). Part of :class:`connectors.tdt.s2low.S2lowConnector`.

* :meth:`PrefectureMessages.prefecture_messages` — one ``api/list_document_prefecture.php`` for
  the collectivité (the login is the collectivité): its unread messages, whatever the number of
  actes waiting.
* :meth:`~PrefectureMessages.prefecture_message` — ``actes_transac_get_document.php?id=`` (S²low
  redirects to ``actes_download_file.php?env=``): the message's tar.gz, opened safely (no path out
  of the archive, no link, size caps: :func:`schemas.actes.archive.read_message_archive`), its
  enveloppe and message XSD-valid, the message's IDActe and type checked against S²low's listing.
* :meth:`~PrefectureMessages.mark_prefecture_message_read` —
  ``api/document_prefecture_mark_as_read.php?transaction_id=``.
* :meth:`~PrefectureMessages.send_prefecture_reply` — ``actes_transac_reponse_create.php`` with
  ``type_envoie`` 3 (refus: 3-3, 4-3) or 4 (envoi: 2-2, 3-4, 4-4), the document as
  ``acte_pdf_file`` and, for a 3-4, the pièces as ``acte_attachments[]`` with ``type_pj[]``.
  S²low refuses no second reply to the same message: the caller records the intent first, and
  after a crash finds the reply with :meth:`~PrefectureMessages.prefecture_transactions` before
  sending again.
* :meth:`~PrefectureMessages.prefecture_reply` — the reply's status; at 4 the préfecture's 3-5 /
  4-5 AR.
* :meth:`~PrefectureMessages.prefecture_transactions` — ``actes_transac_get_document.php?id=<acte>``:
  ``<type>-<status>-<id>`` of every transaction related to the acte.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from connectors.base import (
    ConnectorError,
    InputFile,
    OutputFile,
    PermanentConnectorError,
)
from connectors.http import HttpResponse
from schemas.errors import ArchiveError, SchemaError

LIST = "/modules/actes/api/list_document_prefecture.php"
GET_DOCUMENT = "/modules/actes/actes_transac_get_document.php"
MARK_AS_READ = "/modules/actes/api/document_prefecture_mark_as_read.php"
REPLY = "/modules/actes/actes_transac_reponse_create.php"
STATUS = "/modules/actes/actes_transac_get_status.php"
# S²low's transaction type -> the préfecture's message
MESSAGE_CODES = {"2": "2-1", "3": "3-1", "4": "4-1", "5": "5-1"}
# (message code, refus or envoi) -> the reply S²low builds
REPLY_CODES: dict[tuple[str, str], str] = {
    ("2-1", "envoi"): "2-2", ("3-1", "refus"): "3-3", ("3-1", "envoi"): "3-4",
    ("4-1", "refus"): "4-3", ("4-1", "envoi"): "4-4",
}
ROLE_ARCHIVE = "prefecture_archive"  # the message's tar.gz as S²low serves it
ROLE_MESSAGE = "prefecture_message"  # its business XML (CourrierSimple, DemandePieceComplementaire…)
ROLE_DOCUMENT = "prefecture_document"  # the files it carries (the courrier's PDF, the déféré's pièces)
# Archive refusals that another download cannot fix: a hostile or broken message.
_HOSTILE = {"archive_path_traversal", "archive_forbidden_member", "archive_not_flat", "archive_too_large",
            "archive_too_many_members", "archive_duplicate_member", "archive_invalid_xml", "archive_missing_file"}
_REPLY_ID = re.compile(rb"^OK\s*(?::[^\d\n]*)?\s*(\d+)\s*$")


@dataclass(frozen=True)
class PrefectureMessageRef:
    """One unread message, as ``list_document_prefecture.php`` lists it."""

    transaction_id: str
    code: str  # "3-1"
    acte_transaction_id: str | None  # the acte's transaction (related_transaction_id)
    numero: str
    id_acte: str  # the acte's IDActe (S²low's unique_id)
    status: int  # 7 Document reçu, 8 Acquittement envoyé (3-1, 4-1), 21 Document reçu (pas d'AR)


@dataclass(frozen=True)
class PrefectureMessage:
    """A downloaded and checked message."""

    transaction_id: str
    code: str
    label: str  # "Demande de pièces complémentaires"
    id_acte: str
    sent_on: date | None  # DateCourrierPref, or the déféré's DateDepot
    fields: dict[str, Any]  # the message's fields (description_pieces, motif, nature_illegalite…)
    archive: OutputFile  # role ROLE_ARCHIVE
    files: list[OutputFile] = field(default_factory=list)  # ROLE_MESSAGE first, then ROLE_DOCUMENT


@dataclass(frozen=True)
class ReplyStatus:
    transaction_id: str
    status: int  # 1 → 2 → 3 → 4 (the AR came back), -1
    acknowledged: bool
    ar: OutputFile | None = None  # the 3-5 / 4-5 at status 4
    date_reception: date | None = None
    error: str | None = None  # at -1


@dataclass(frozen=True)
class RelatedTransaction:
    type: str  # "2".."6"
    status: int
    transaction_id: str


class PrefectureMessages:
    """Mixed into the ACTES connector, which provides ``_request`` (S2lowClient)."""

    _request: Callable[..., Awaitable[HttpResponse]]

    async def prefecture_messages(self) -> list[PrefectureMessageRef]:
        response = await self._request("GET", LIST)
        try:
            rows = response.json()
        except ValueError as exc:
            raise ConnectorError(
                f"S²low: unreadable list_document_prefecture.php answer {response.content[:80]!r}") from exc
        if not isinstance(rows, list):
            raise ConnectorError(f"S²low: unexpected list_document_prefecture.php answer {response.content[:80]!r}")
        refs = []
        for row in rows:
            code = MESSAGE_CODES.get(str(row.get("type"))) if isinstance(row, dict) else None
            if code is None or not str(row.get("id", "")).isdigit():
                raise ConnectorError(f"S²low: unexpected préfecture message {row!r}")
            related = row.get("related_transaction_id")
            refs.append(PrefectureMessageRef(
                transaction_id=str(row["id"]), code=code,
                acte_transaction_id=str(related) if related not in (None, "") else None,
                numero=str(row.get("number") or ""), id_acte=str(row.get("unique_id") or ""),
                status=int(row.get("last_status_id") or 0)))
        return refs

    async def prefecture_message(self, ref: PrefectureMessageRef) -> PrefectureMessage:
        from schemas.actes.archive import read_message_archive
        from schemas.actes.messages import PREFECTURE_MESSAGE_LABELS

        response = await self._request("GET", GET_DOCUMENT, params={"id": ref.transaction_id})
        data = response.content
        if data.startswith(b"KO"):
            raise PermanentConnectorError(f"S²low: message {ref.transaction_id}: {data[:200].decode('iso-8859-1')}")
        try:
            parsed = await asyncio.to_thread(read_message_archive, data)
        except ArchiveError as exc:
            error = PermanentConnectorError if exc.code in _HOSTILE else ConnectorError
            raise error(f"S²low: archive of message {ref.transaction_id} refused: {exc.message}") from exc
        if parsed.message_type != ref.code:
            raise PermanentConnectorError(
                f"S²low: message {ref.transaction_id} is listed as {ref.code} but carries {parsed.message_type}")
        if ref.id_acte and parsed.fields.get("id_acte") != ref.id_acte:
            raise PermanentConnectorError(
                f"S²low: message {ref.transaction_id} is about {parsed.fields.get('id_acte')}, not {ref.id_acte}")
        name = response.filename() or f"{ref.code}-{ref.transaction_id}.tar.gz"
        files = [OutputFile(parsed.message_name, ROLE_MESSAGE, parsed.message_xml, "application/xml")]
        files += [OutputFile(n, ROLE_DOCUMENT, parsed.files[n], _media_type(n)) for n in parsed.documents]
        return PrefectureMessage(
            transaction_id=ref.transaction_id, code=ref.code, label=PREFECTURE_MESSAGE_LABELS[ref.code],
            id_acte=str(parsed.fields.get("id_acte") or ref.id_acte),
            sent_on=parsed.fields.get("date_courrier_pref") or parsed.fields.get("date_depot"),
            fields={k: v for k, v in parsed.fields.items() if k not in ("id_acte",)},
            archive=OutputFile(name, ROLE_ARCHIVE, data, "application/gzip"), files=files,
        )

    async def mark_prefecture_message_read(self, transaction_id: str) -> None:
        response = await self._request("GET", MARK_AS_READ, params={"transaction_id": transaction_id})
        try:
            ok = response.json().get("result") == "ok"
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise ConnectorError(f"S²low: mark as read of {transaction_id} answered {response.content[:80]!r}")

    async def send_prefecture_reply(
        self, message: PrefectureMessageRef, kind: Literal["refus", "envoi"], document: InputFile,
        pieces: list[InputFile] | None = None, typologies: list[str] | None = None,
    ) -> str:
        """Reply to ``message``; returns the reply's transaction id. ``typologies`` gives the
        document's then each pièce's (default: the acte's nature default, as Pastell)."""
        from schemas.actes.naming import NATURES_BY_ABBR

        pieces = list(pieces or [])
        reply = REPLY_CODES.get((message.code, kind))
        if reply is None:
            raise PermanentConnectorError(f"a {message.code} takes no reply of kind {kind!r}")
        if pieces and reply != "3-4":
            raise PermanentConnectorError(f"only a 3-4 (pièces complémentaires) carries pièces, not a {reply}")
        nature = NATURES_BY_ABBR.get(message.id_acte.rsplit("-", 1)[-1])
        default = nature.typologie if nature else "99_AU"
        codes = list(typologies or []) + [default] * (1 + len(pieces) - len(typologies or []))
        data: dict[str, Any] = {"api": "1", "id": message.transaction_id,
                                "type_envoie": "3" if kind == "refus" else "4", "type_acte": codes[0]}
        if pieces:
            data["type_pj[]"] = codes[1: 1 + len(pieces)]
        files = [("acte_pdf_file", (document.name, document.data, document.media_type))]
        files += [("acte_attachments[]", (p.name, p.data, p.media_type)) for p in pieces]
        response = await self._request("POST", REPLY, data=data, files=files)
        body = response.content.strip()
        match = _REPLY_ID.match(body) or re.match(rb"^OK\s*\n\s*(\d+)", body)
        if match:
            return match.group(1).decode("ascii")
        if body.startswith(b"KO"):
            raise PermanentConnectorError(f"S²low: reply to {message.transaction_id} refused: {_text(body)}")
        raise ConnectorError(f"S²low: unreadable reply answer {body[:80]!r}")

    async def prefecture_reply(self, reply_id: str) -> ReplyStatus:
        from connectors.tdt.s2low import S2lowAnswer, split_error_payload
        from schemas.actes.messages import parse_actes_message

        answer = S2lowAnswer((await self._request("GET", STATUS, params={"transaction": reply_id})).content)
        if not answer.ok:
            raise PermanentConnectorError(f"S²low: status of reply {reply_id}: {answer.text}")
        line, _, payload = answer.payload.partition(b"\n")
        try:
            status = int(line.strip())
        except ValueError as exc:
            raise ConnectorError(f"S²low: unreadable status {line[:40]!r}") from exc
        payload = payload.strip()
        if status == -1:
            return ReplyStatus(reply_id, status, False, error=split_error_payload(payload)[1] or "Erreur")
        if status != 4:
            return ReplyStatus(reply_id, status, False)
        try:
            ar = parse_actes_message(payload, check_xsd=True)
        except SchemaError as exc:
            raise ConnectorError(f"S²low: unreadable AR of reply {reply_id}: {exc.message}") from exc
        if ar.type_code not in ("3-5", "4-5"):
            raise ConnectorError(f"S²low: expected a 3-5 / 4-5 for reply {reply_id}, got {ar.root}")
        name = f"{ar.fields.get('id_acte') or reply_id}-{ar.type_code}.xml"
        return ReplyStatus(reply_id, status, True, OutputFile(name, "prefecture_reply_ar", payload, "application/xml"),
                           ar.fields.get("date_reception"))

    async def prefecture_transactions(self, acte_transaction_id: str) -> list[RelatedTransaction]:
        response = await self._request("GET", GET_DOCUMENT, params={"id": acte_transaction_id})
        body = response.content
        if body.startswith(b"KO"):
            raise PermanentConnectorError(f"S²low: transactions of {acte_transaction_id}: {_text(body)}")
        out = []
        for line in body.decode("ascii", "replace").split():
            parts = line.split("-")
            if len(parts) == 4 and parts[1] == "":  # a negative status: "3--1-12"
                parts = [parts[0], "-" + parts[2], parts[3]]
            if len(parts) != 3 or not parts[2].isdigit():
                raise ConnectorError(f"S²low: unreadable line {line!r} from actes_transac_get_document.php")
            out.append(RelatedTransaction(parts[0], int(parts[1]), parts[2]))
        return out


def _media_type(name: str) -> str:
    ext = name.rpartition(".")[2].lower()
    return {"pdf": "application/pdf", "xml": "application/xml", "png": "image/png", "jpg": "image/jpeg",
            "jpeg": "image/jpeg"}.get(ext, "application/octet-stream")


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8").strip()
    except UnicodeDecodeError:
        return body.decode("iso-8859-1").strip()


__all__ = ["PrefectureMessage", "PrefectureMessageRef", "PrefectureMessages", "RelatedTransaction", "ReplyStatus"]
