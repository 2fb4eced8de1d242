"""S²low connector for the ``tdt`` stage of the ACTES flow (docs/protocols.md §2.1-§2.3, §2.6).

Only what the real S²low offers is called (the list at the end of this docstring).

* ``submit`` posts ``actes_transac_create.php`` (the signed PDF if any, else the deposited one, then
  the annexes in order). It keeps, as role ``tdt_archive``, the @ctes transfer archive the bus
  builds itself from what it sent (:func:`schemas.actes.archive.build_acte_archive`: enveloppe,
  Acte message, files under their official names): S²low serves no archive back.
* Recovering an uncertain create (a crash, a lost answer). The intent recorded before the call
  holds the numéro interne and the day (:meth:`S2lowConnector.intent_facts`). S²low knows nothing
  of our reference, so ``lookup`` says "not found" and the runner submits again: S²low refuses a
  second acte with the same numéro ("Un acte portant le même numéro interne existe déjà…"),
  which proves the first create got through; ``submit`` then pages ``api/list_actes.php`` over
  the statuses an acte can be in after a create, from the day of the intent, and matches the
  numéro (and the decision date: a numéro taken by another acte is a permanent error). The acte
  is never transmitted twice. ``lookup`` searches the listing itself only when the effect it is
  asked about went out under another numéro than the job's.
* ``poll`` reads ``actes_transac_get_status.php``: 1/2/3/17/18 pending; 4 done with the ARActe
  (role ``aracte``), the stamped acte (``stamped_document``) and the bordereau (``bordereau``); -1
  rejected with the préfecture's anomaly (role ``anomalie``) when there is one.
* ``cancel`` posts ``actes_transac_cancel.php`` for an acknowledged acte (S²low sends the 6-1
  Annulation; the bus keeps the 6-1 archive it builds the same way, role ``annulation_archive``);
  ``cancellation`` is done when the acte's status is 0 with the ARAnnulation 6-2 (role
  ``ar_annulation``), rejected when the annulation transaction went to -1.
* The préfecture's messages about acknowledged actes (2-1, 3-1, 4-1, 5-1) and the replies to them:
  :class:`connectors.tdt.s2low_prefecture.PrefectureMessages`.

Errors: KO answers to a create are permanent (``PermanentConnectorError``), except the duplicate
numéro KO, which means the acte was already sent; HTTP 5xx, timeouts, transport errors and
unreadable answers are retryable (``ConnectorError``). HTTP 401/403 is permanent (configuration).

S²low scripts called (ACTES): ``actes_transac_create.php``, ``actes_transac_get_status.php``,
``api/list_actes.php``, ``actes_transac_get_files_list.php``, ``actes_download_file.php``,
``actes_create_pdf.php``, ``actes_transac_cancel.php``; for the préfecture's messages
``api/list_document_prefecture.php``, ``actes_transac_get_document.php`` (→
``actes_download_file.php?env=``), ``api/document_prefecture_mark_as_read.php``,
``actes_transac_reponse_create.php``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import date, timedelta
from typing import Any

from pydantic import ValidationError

from connectors.base import (
    Collectivite,
    ConnectorError,
    InputFile,
    OutputFile,
    PermanentConnectorError,
    StageJob,
    StageResult,
)
from connectors.tdt.s2low_http import S2lowClient
from connectors.tdt.s2low_prefecture import PrefectureMessages
from schemas.actes.messages import parse_actes_message
from schemas.actes.metadata import ActesMetadata
from schemas.actes.naming import response_file_name
from schemas.errors import SchemaError

log = logging.getLogger(__name__)

CREATE = "/modules/actes/actes_transac_create.php"
STATUS = "/modules/actes/actes_transac_get_status.php"
LIST_ACTES = "/modules/actes/api/list_actes.php"
FILES_LIST = "/modules/actes/actes_transac_get_files_list.php"
DOWNLOAD = "/modules/actes/actes_download_file.php"
BORDEREAU = "/modules/actes/actes_create_pdf.php"
CANCEL = "/modules/actes/actes_transac_cancel.php"
CANCEL_PENDING_MARKER = "annulation est déjà en cours"
PENDING_STATUSES = {1, 2, 3, 17, 18}
DUPLICATE_MARKER = "même numéro interne existe déjà"
# Where an acte can be after its create, most likely first: the transmission (1 → 2 → 3 → 4 or
# -1, 17/18 while waiting), then validated, cancelled, refused, and S²low's own archiving.
STATUSES_AFTER_CREATE = (1, 2, 3, 4, -1, 17, 18, 5, 0, 6, 19, 12, 15, 13, 14, 20, 22, 16)
LIST_PAGE = 100
_MEDIA_EXTENSIONS = {"application/pdf": "pdf", "application/xml": "xml", "text/xml": "xml", "image/png": "png",
                     "image/jpeg": "jpg"}
_ANOMALY_ROOT = re.compile(rb"^\s*(?:<\?xml[^>]*\?>\s*)?<(?:[\w.-]+:)?(AnomalieActe|AnomalieEnveloppe)\b")
# S²low stores the subject in ISO-8859-1 (after a cp1252 clean-up): map the usual typographic
# characters instead of losing them to "?".
_LATIN1_FALLBACKS = str.maketrans({
    "\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
    "\u2026": "...", "\u0153": "oe", "\u0152": "OE", "\u20ac": "EUR", "\u00a0": " ", "\u202f": " ",
})


def _latin1(text: str) -> bytes:
    return text.translate(_LATIN1_FALLBACKS).encode("iso-8859-1", "replace")


class S2lowAnswer:
    """A parsed ``OK\\n…`` / ``KO\\n…`` answer; ``lines`` are decoded, ``payload`` keeps the raw bytes
    after the first line."""

    def __init__(self, body: bytes) -> None:
        head, _, rest = body.partition(b"\n")
        head = head.strip()
        if head not in (b"OK", b"KO"):
            raise ConnectorError(f"S²low: unreadable answer {body[:80]!r}")
        self.ok = head == b"OK"
        self.payload = rest
        self.text = rest.decode("iso-8859-1").strip()
        self.lines = [line.strip() for line in self.text.splitlines()]


def split_error_payload(payload: bytes) -> tuple[bytes, str]:
    """The payload after ``-1``: the ministry's AnomalieActe / AnomalieEnveloppe (when there is
    one) immediately followed by the workflow message. Returns (xml, message)."""
    match = _ANOMALY_ROOT.match(payload)
    if match is None:
        return b"", payload.decode("iso-8859-1").strip()
    closing = re.search(rb"</(?:[\w.-]+:)?" + match.group(1) + rb"\s*>", payload)
    if closing is None:
        raise ConnectorError(f"S²low: unreadable anomaly in a status answer {payload[:80]!r}")
    return payload[: closing.end()].strip(), payload[closing.end():].decode("iso-8859-1").strip()


class S2lowConnector(S2lowClient, PrefectureMessages):
    def __init__(self, base_url: str, login: str, password: str, timeout: float = 30.0, *,
                 trigramme: str = "DMB", quadrigramme: str = "EACT",
                 return_email: str = "actes@dematbus.local") -> None:
        super().__init__(base_url, login, password, timeout)
        # The identity in the transfer archive the bus keeps (tdt_archive, annulation_archive).
        self.trigramme, self.quadrigramme, self.return_email = trigramme, quadrigramme, return_email

    # ------------------------------------------------------------------ HTTP

    async def _answer(self, method: str, path: str, **kwargs: Any) -> S2lowAnswer:
        response = await self._request(method, path, **kwargs)
        return S2lowAnswer(response.content)

    # ------------------------------------------------------------------ intent / lookup / submit

    async def intent_facts(self, job: StageJob) -> dict[str, Any]:
        meta = self._metadata(job)
        return {"number": meta.numero_interne, "decision_date": meta.date_decision.isoformat(),
                "submitted_on": date.today().isoformat()}

    async def lookup(self, job: StageJob) -> str | None:
        number = job.intent.get("number")
        if not number or number == job.metadata.get("numero_interne"):
            # Submitting again is the probe: S²low refuses the numéro if the first create got
            # through, and submit then finds the transaction (docs/protocols.md §2.6).
            return None
        return await self.find_acte(str(number), job.intent)

    def _metadata(self, job: StageJob) -> ActesMetadata:
        wanted = {k: v for k, v in job.metadata.items() if k in ActesMetadata.model_fields}
        try:
            return ActesMetadata.model_validate(wanted)
        except ValidationError as exc:
            raise PermanentConnectorError(f"invalid ACTES metadata: {exc.errors()[0]['msg']}") from exc

    @staticmethod
    def _files(job: StageJob) -> tuple[InputFile, list[InputFile]]:
        by_role = {f.role: f for f in job.files}
        document = by_role.get("signed_document") or by_role.get("document")
        if document is None:
            raise PermanentConnectorError("no document (role signed_document or document) to transmit")
        return document, [f for f in job.files if f.role == "annexe"]

    async def submit(self, job: StageJob) -> tuple[str, list[OutputFile]]:
        meta = self._metadata(job)
        document, annexes = self._files(job)
        try:
            typologies = meta.typologies(len(annexes))
        except SchemaError as exc:
            raise PermanentConnectorError(exc.message) from exc
        levels = meta.classification.split(".")
        data: dict[str, Any] = {
            "api": "1",
            "nature_code": str(meta.nature),
            "number": meta.numero_interne,
            "subject": _latin1(meta.objet),
            "decision_date": meta.date_decision.isoformat(),
            "en_attente": "0",
            "document_papier": "1" if job.metadata.get("document_papier") else "0",
            "type_acte": typologies[0],
            "type_pj[]": typologies[1:],
        }
        for index in range(5):
            data[f"classif{index + 1}"] = levels[index] if index < len(levels) else ""
        files = [("acte_pdf_file", (document.name, document.data, document.media_type))]
        files += [("acte_attachments[]", (a.name, a.data, a.media_type)) for a in annexes]

        answer = await self._answer("POST", CREATE, data=data, files=files)
        if answer.ok:
            if not answer.lines or not answer.lines[0].isdigit():
                raise ConnectorError(f"S²low: create answered OK without an id: {answer.text!r}")
            transaction_id = answer.lines[0]
        elif DUPLICATE_MARKER in answer.text:
            facts = {"decision_date": meta.date_decision.isoformat(), **job.intent, "number": meta.numero_interne}
            found = await self.find_acte(meta.numero_interne, facts)
            if found is None:
                raise PermanentConnectorError(
                    f"S²low refuses numéro {meta.numero_interne} as already used, and none of this "
                    f"collectivité's transactions carries it: {answer.text}")
            log.info("S²low: acte %s already created as transaction %s: not sent again", meta.numero_interne, found)
            transaction_id = found
        else:
            raise PermanentConnectorError(f"S²low: {answer.text}")
        day = date.fromisoformat(str(job.intent.get("submitted_on") or date.today().isoformat()))
        return transaction_id, await self._transfer_archive(job, meta, document, annexes, transaction_id, day)

    async def find_acte(self, number: str, facts: dict[str, Any]) -> str | None:
        """The type-1 transaction with numéro ``number``, from S²low's listing: the statuses an acte
        can be in after a create, from the day before the intent (the dates filter on when a
        transaction reached its status, always after its create); without the date bound if that
        finds nothing (the bus's and S²low's clocks may disagree)."""
        since = facts.get("submitted_on")
        bounds: list[str | None] = [None]
        if since:
            bounds.insert(0, (date.fromisoformat(str(since)) - timedelta(days=1)).isoformat())
        for min_date in bounds:
            for status in STATUSES_AFTER_CREATE:
                offset = 0
                while True:
                    rows = await self._list_actes(status, offset, min_date)
                    for row in rows:
                        if str(row.get("type")) == "1" and row.get("number") == number:
                            return self._matching(row, number, facts)
                    if len(rows) < LIST_PAGE:
                        break
                    offset += LIST_PAGE
        return None

    @staticmethod
    def _matching(row: dict[str, Any], number: str, facts: dict[str, Any]) -> str:
        decided = facts.get("decision_date")
        if decided and str(row.get("date") or "")[:10] not in ("", str(decided)):
            raise PermanentConnectorError(
                f"S²low: numéro {number} is already used by another acte (transaction {row.get('id')}, "
                f"decided on {row.get('date')}, not {decided})")
        if not str(row.get("id", "")).isdigit():
            raise ConnectorError(f"S²low: unreadable transaction id in list_actes.php: {row!r}")
        return str(row["id"])

    async def _list_actes(self, status: int, offset: int, min_date: str | None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"status_id": status, "offset": offset, "limit": LIST_PAGE}
        if min_date:
            params["min_date"] = min_date
        response = await self._request("GET", LIST_ACTES, params=params)
        try:
            body = response.json()
        except ValueError as exc:
            raise ConnectorError(f"S²low: unreadable list_actes.php answer {response.content[:80]!r}") from exc
        rows = body.get("transactions") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ConnectorError(f"S²low: unexpected list_actes.php answer {response.content[:80]!r}")
        return rows

    async def _transfer_archive(self, job: StageJob, meta: ActesMetadata, document: InputFile,
                                annexes: list[InputFile], transaction_id: str, day: date) -> list[OutputFile]:
        """The @ctes archive of what was sent, built by the bus (S²low serves none back). The acte
        is already sent: a failure here must not make the stage send it again, so it is logged."""
        def build() -> OutputFile:
            from schemas.actes.archive import build_acte_archive

            sent = meta.model_copy(update={"objet": _latin1(meta.objet).decode("iso-8859-1")})
            built = build_acte_archive(
                emetteur=_emetteur(job.collectivite), metadata=sent,
                classification_date=_classification_date(job.collectivite),
                document=(_named(document), document.data), annexes=[(_named(a), a.data) for a in annexes],
                trigramme=self.trigramme, quadrigramme=self.quadrigramme,
                serial=_serial(transaction_id), day=day, return_emails=[self.return_email],
            )
            return OutputFile(name=built.name, role="tdt_archive", data=built.data, media_type="application/gzip")

        try:
            return [await asyncio.to_thread(build)]
        except (SchemaError, ValueError) as exc:
            log.warning("S²low: transfer archive of transaction %s not built: %s", transaction_id, exc)
            return []

    # ------------------------------------------------------------------ poll

    async def poll(self, job: StageJob, remote_id: str) -> StageResult:
        status, payload = await self._status(remote_id)
        if status in PENDING_STATUSES:
            return StageResult(status="pending", fields={"tdt_status": status})
        if status in (4, 5):
            return await self._acknowledged(job, remote_id, payload)
        if status == -1:
            return self._error(job, remote_id, payload)
        if status in (0, 6):
            reason = "Acte annulé" if status == 0 else "Transaction refusée"
            return StageResult(status="rejected", reason=reason, fields={"tdt_transaction_id": remote_id})
        return StageResult(status="pending", fields={"tdt_status": status})

    async def _status(self, transaction_id: str) -> tuple[int, bytes]:
        answer = await self._answer("GET", STATUS, params={"transaction": transaction_id})
        if not answer.ok:
            raise PermanentConnectorError(f"S²low: status of {transaction_id}: {answer.text}")
        status_line, _, payload = answer.payload.partition(b"\n")
        try:
            return int(status_line.strip()), payload.strip()
        except ValueError as exc:
            raise ConnectorError(f"S²low: unreadable status {status_line[:40]!r}") from exc

    async def _acknowledged(self, job: StageJob, remote_id: str, payload: bytes) -> StageResult:
        try:
            message = parse_actes_message(payload)
        except SchemaError as exc:
            raise ConnectorError(f"S²low: unreadable ARActe for {remote_id}: {exc.message}") from exc
        if message.root != "ARActe" or not message.fields.get("id_acte"):
            raise ConnectorError(f"S²low: expected an ARActe for {remote_id}, got {message.root}")
        id_acte = message.fields["id_acte"]
        date_reception = message.fields.get("date_reception")
        files = [
            OutputFile(
                name=response_file_name("1-2", 1, id_acte=id_acte),
                role="aracte",
                data=payload,
                media_type="application/xml",
            )
        ]
        files += await self._stamped_document(remote_id)
        files += await self._bordereau(remote_id, id_acte)
        return StageResult(
            status="done",
            files=files,
            fields={
                "id_acte": id_acte,
                "date_reception": date_reception.isoformat() if date_reception else None,
                "tdt_transaction_id": remote_id,
            },
        )

    async def _stamped_document(self, remote_id: str) -> list[OutputFile]:
        response = await self._request("GET", FILES_LIST, params={"transaction": remote_id})
        try:
            entries = response.json()
        except ValueError:
            return []  # a KO text: no files list for this transaction
        if not isinstance(entries, list) or len(entries) < 2 or not isinstance(entries[1], dict):
            return []
        acte = entries[1]
        download = await self._request("GET", DOWNLOAD, params={"file": acte.get("id"), "tampon": "true"},
                                       accept=(404,))
        if download.status_code != 200 or not download.content or download.content.startswith(b"KO\n"):
            return []
        return [
            OutputFile(
                name=str(acte.get("name") or f"{remote_id}-acte.pdf"),
                role="stamped_document",
                data=download.content,
                media_type=str(acte.get("mimetype") or "application/pdf"),
            )
        ]

    async def _bordereau(self, remote_id: str, id_acte: str) -> list[OutputFile]:
        response = await self._request("GET", BORDEREAU, params={"trans_id": remote_id})
        if not response.content.startswith(b"%PDF-"):
            return []
        return [OutputFile(name=f"{id_acte}-bordereau.pdf", role="bordereau", data=response.content,
                           media_type="application/pdf")]

    def _error(self, job: StageJob, remote_id: str, payload: bytes) -> StageResult:
        xml, message = split_error_payload(payload)
        message = message or "Erreur"
        fields: dict[str, Any] = {"tdt_transaction_id": remote_id, "nature": None, "detail": message}
        files: list[OutputFile] = []
        if xml:
            try:
                parsed = parse_actes_message(xml)
            except SchemaError as exc:
                raise ConnectorError(f"S²low: unreadable anomaly for {remote_id}: {exc.message}") from exc
            fields["nature"] = parsed.fields.get("nature")
            fields["detail"] = parsed.fields.get("detail") or message
            fields["anomaly_type"] = parsed.root
            if parsed.root == "AnomalieActe":
                collectivite = job.collectivite
                name = response_file_name("1-3", 1, departement=collectivite.departement, siren=collectivite.siren)
            else:
                name = f"ANO_{remote_id}.xml"
            files.append(OutputFile(name=name, role="anomalie", data=xml, media_type="application/xml"))
        return StageResult(status="rejected", reason=message, fields=fields, files=files)

    # ------------------------------------------------------------------ annulation (6-1 → 6-2)

    async def cancel(self, remote_id: str, collectivite: Collectivite | None = None
                     ) -> tuple[str | None, list[OutputFile]]:
        answer = await self._answer("POST", CANCEL, data={"api": "1", "id": remote_id})
        if answer.ok:
            if not answer.lines or not answer.lines[0].isdigit():
                raise ConnectorError(f"S²low: cancel answered OK without an id: {answer.text!r}")
            cancel_id = answer.lines[0]
            return cancel_id, await self._annulation_archive(remote_id, cancel_id, collectivite)
        if CANCEL_PENDING_MARKER in answer.text:
            return None, []
        raise PermanentConnectorError(f"S²low: {answer.text}")

    async def _annulation_archive(self, remote_id: str, cancel_id: str,
                                  collectivite: Collectivite | None) -> list[OutputFile]:
        """The 6-1 archive (enveloppe + Annulation) of the cancelled acte, built by the bus; the
        IDActe comes from the acte's ARActe. Skipped (logged) when it cannot be built: the
        cancellation itself is under way."""
        if collectivite is None:
            return []
        try:
            status, payload = await self._status(remote_id)
            # the ARActe, or already the ARAnnulation: both carry the IDActe
            id_acte = parse_actes_message(payload).fields.get("id_acte") if status in (0, 4) else None
        except (ConnectorError, SchemaError) as exc:
            log.warning("S²low: annulation archive of %s not built: %s", remote_id, exc)
            return []
        if not id_acte:
            return []

        def build() -> OutputFile:
            from schemas.actes.archive import build_message_archive
            from schemas.actes.messages import build_annulation
            from schemas.actes.naming import (
                NATURES_BY_ABBR,
                business_file_name,
                parse_id_acte,
            )

            parts = parse_id_acte(id_acte)
            decided = date(int(parts["date"][:4]), int(parts["date"][4:6]), int(parts["date"][6:]))
            name = business_file_name(parts["dep"], parts["siren"], decided, parts["numero"],
                                      NATURES_BY_ABBR[parts["nature"]].code, type_code="6-1", index=0)
            built = build_message_archive(
                emetteur=_emetteur(collectivite), message_name=name, message_xml=build_annulation(id_acte=id_acte),
                files=[], trigramme=self.trigramme, quadrigramme=self.quadrigramme, serial=_serial(cancel_id),
                day=date.today(), return_emails=[self.return_email],
            )
            return OutputFile(built.name, "annulation_archive", built.data, "application/gzip")

        try:
            return [await asyncio.to_thread(build)]
        except (SchemaError, ValueError, KeyError) as exc:
            log.warning("S²low: annulation archive of %s not built: %s", remote_id, exc)
            return []

    async def cancellation(self, remote_id: str, cancel_id: str | None) -> StageResult:
        status, payload = await self._status(remote_id)
        if status == 0:
            try:
                message = parse_actes_message(payload, check_xsd=True)
            except SchemaError as exc:
                raise ConnectorError(f"S²low: unreadable ARAnnulation for {remote_id}: {exc.message}") from exc
            if message.root != "ARAnnulation":
                raise ConnectorError(f"S²low: expected an ARAnnulation for {remote_id}, got {message.root}")
            id_acte = message.fields["id_acte"]
            received = message.fields.get("date_reception")
            name = response_file_name("6-2", 1, id_acte=id_acte)
            return StageResult(status="done", files=[OutputFile(name, "ar_annulation", payload, "application/xml")],
                               fields={"id_acte": id_acte, "annulation_date_reception":
                                       received.isoformat() if received else None})
        if cancel_id:
            cancel_status, cancel_payload = await self._status(cancel_id)
            if cancel_status == -1:
                reason = split_error_payload(cancel_payload)[1] or "Erreur"
                return StageResult(status="rejected", reason=f"Annulation refusée : {reason}")
        return StageResult(status="pending", fields={"tdt_status": status})


def _emetteur(collectivite: Collectivite) -> Any:
    from schemas.actes.archive import Emetteur

    return Emetteur(collectivite.siren, collectivite.departement, collectivite.arrondissement,
                    collectivite.nature_code)


def _classification_date(collectivite: Collectivite) -> date:
    """The classification the collectivité works with: its recorded date, else the date of its
    RetourClassification, else that of the default classification (as the simulator)."""
    from schemas.actes.classification import Classification, default_classification

    if collectivite.classification_date:
        return date.fromisoformat(collectivite.classification_date[:10])
    return Classification.parse(collectivite.classification_xml or default_classification(), check_xsd=False).date


def _named(file: InputFile) -> str:
    """The file's name with the extension of its type (the archive names files by extension)."""
    ext = _MEDIA_EXTENSIONS.get(file.media_type)
    stem, dot, current = file.name.rpartition(".")
    if ext is None or (dot and current.lower() in (ext, "jpeg" if ext == "jpg" else ext)):
        return file.name
    return f"{stem if dot else file.name}.{ext}"


def _serial(transaction_id: str) -> int:
    """The enveloppe serial of the kept archive (1-9999), from S²low's transaction id: the same
    archive whichever attempt builds it."""
    return (int(transaction_id) - 1) % 9999 + 1 if transaction_id.isdigit() else 1
