"""S²low connector for the ``tdt`` stage of the ACTES flow (protocols.md §2.1-§2.3).

* ``submit`` posts ``actes_transac_create.php`` (the signed PDF if any, else the deposited one, then
  the annexes in order) and fetches the transmitted ``.tar.gz`` (role ``tdt_archive``) through the
  simulator extension ``actes_transac_get_archive.php`` when the server offers it.
* ``lookup`` finds a transaction already created for the job's numéro interne through the
  simulator extension ``actes_transac_find.php`` (real S²low has no such call: there, the duplicate
  numéro KO is the only signal, and it is handled in ``submit``).
* ``cancel`` posts ``actes_transac_cancel.php`` for an acknowledged acte (S²low sends the 6-1
  Annulation) and fetches that transaction's archive (role ``annulation_archive``);
  ``cancellation`` is done when the acte's status is 0 with the ARAnnulation 6-2 (role
  ``ar_annulation``), rejected when the annulation transaction went to -1.
* ``poll`` reads ``actes_transac_get_status.php``: 1/2/3 pending; 4 done with the ARActe (role
  ``aracte``), the stamped acte (``stamped_document``) and the bordereau (``bordereau``); -1
  rejected with the préfecture's anomaly (role ``anomalie``) when there is one.

Errors: KO answers to a create are permanent (``PermanentConnectorError``), except the duplicate
numéro KO which means the acte was already sent; HTTP 5xx, timeouts, transport errors and
unreadable answers are retryable (``ConnectorError``). HTTP 401/403 is permanent (configuration).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from connectors.base import (
    ConnectorError,
    InputFile,
    OutputFile,
    PermanentConnectorError,
    StageJob,
    StageResult,
)
from connectors.tdt.s2low_http import S2lowClient, filename_from
from schemas.actes.messages import parse_actes_message
from schemas.actes.metadata import ActesMetadata
from schemas.actes.naming import response_file_name
from schemas.errors import SchemaError

log = logging.getLogger(__name__)

CREATE = "/modules/actes/actes_transac_create.php"
STATUS = "/modules/actes/actes_transac_get_status.php"
FIND = "/modules/actes/actes_transac_find.php"
ARCHIVE = "/modules/actes/actes_transac_get_archive.php"
FILES_LIST = "/modules/actes/actes_transac_get_files_list.php"
DOWNLOAD = "/modules/actes/actes_download_file.php"
BORDEREAU = "/modules/actes/actes_create_pdf.php"
CANCEL = "/modules/actes/actes_transac_cancel.php"
CANCEL_PENDING_MARKER = "annulation est déjà en cours"
PENDING_STATUSES = {1, 2, 3, 17, 18}
DUPLICATE_MARKER = "même numéro interne existe déjà"
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


class S2lowConnector(S2lowClient):
    # ------------------------------------------------------------------ HTTP

    async def _answer(self, method: str, path: str, **kwargs: Any) -> S2lowAnswer:
        response = await self._request(method, path, **kwargs)
        if response.status_code != 200:
            raise ConnectorError(f"S²low: HTTP {response.status_code} on {path}")
        return S2lowAnswer(response.content)

    # ------------------------------------------------------------------ lookup / submit

    async def lookup(self, job: StageJob) -> str | None:
        numero = str(job.metadata.get("numero_interne") or "")
        if not numero:
            return None
        response = await self._request("GET", FIND, params={"number": numero}, accept=(404,))
        if response.status_code == 404:
            return None  # a real S²low: no find extension
        answer = S2lowAnswer(response.content)
        if not answer.ok or not answer.lines:
            return None
        return answer.lines[0]

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
            found = await self.lookup(job)
            if found is None:
                raise PermanentConnectorError(f"S²low: {answer.text}")
            transaction_id = found
        else:
            raise PermanentConnectorError(f"S²low: {answer.text}")
        return transaction_id, await self._archive(transaction_id)

    async def _archive(self, transaction_id: str) -> list[OutputFile]:
        """The transmitted archive, when the server offers it. The acte is already sent: a failure
        here must not make the stage retry the create, so it is logged and skipped."""
        try:
            response = await self._request("GET", ARCHIVE, params={"transaction": transaction_id}, accept=(404,))
        except PermanentConnectorError:
            raise
        except ConnectorError as exc:
            log.warning("S²low: transmitted archive of %s not fetched: %s", transaction_id, exc)
            return []
        if response.status_code != 200 or not response.content.startswith(b"\x1f\x8b"):
            return []
        name = filename_from(response) or f"{transaction_id}.tar.gz"
        return [OutputFile(name=name, role="tdt_archive", data=response.content, media_type="application/gzip")]

    # ------------------------------------------------------------------ poll

    async def poll(self, job: StageJob, remote_id: str) -> StageResult:
        answer = await self._answer("GET", STATUS, params={"transaction": remote_id})
        if not answer.ok:
            raise PermanentConnectorError(f"S²low: status of {remote_id}: {answer.text}")
        status_line, _, payload = answer.payload.partition(b"\n")
        try:
            status = int(status_line.strip())
        except ValueError as exc:
            raise ConnectorError(f"S²low: unreadable status {status_line[:40]!r}") from exc
        payload = payload.strip()
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
        if response.status_code != 200:
            return []
        try:
            entries = response.json()
        except ValueError:
            return []  # a KO text: no files list for this transaction
        if not isinstance(entries, list) or len(entries) < 2 or not isinstance(entries[1], dict):
            return []
        acte = entries[1]
        download = await self._request("GET", DOWNLOAD, params={"file": acte.get("id"), "tampon": "true"})
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
        if response.status_code != 200 or not response.content.startswith(b"%PDF-"):
            return []
        return [OutputFile(name=f"{id_acte}-bordereau.pdf", role="bordereau", data=response.content,
                           media_type="application/pdf")]

    def _error(self, job: StageJob, remote_id: str, payload: bytes) -> StageResult:
        message_line, _, xml = payload.partition(b"\n")
        message = message_line.decode("iso-8859-1").strip() or "Erreur"
        fields: dict[str, Any] = {"tdt_transaction_id": remote_id, "nature": None, "detail": message}
        files: list[OutputFile] = []
        xml = xml.strip()
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

    async def cancel(self, remote_id: str) -> tuple[str | None, list[OutputFile]]:
        answer = await self._answer("POST", CANCEL, data={"api": "1", "id": remote_id})
        if answer.ok:
            if not answer.lines or not answer.lines[0].isdigit():
                raise ConnectorError(f"S²low: cancel answered OK without an id: {answer.text!r}")
            cancel_id = answer.lines[0]
            files = await self._archive(cancel_id)
            return cancel_id, [OutputFile(f.name, "annulation_archive", f.data, f.media_type) for f in files]
        if CANCEL_PENDING_MARKER in answer.text:
            return None, []
        raise PermanentConnectorError(f"S²low: {answer.text}")

    async def _status(self, transaction_id: str) -> tuple[int, bytes]:
        answer = await self._answer("GET", STATUS, params={"transaction": transaction_id})
        if not answer.ok:
            raise PermanentConnectorError(f"S²low: status of {transaction_id}: {answer.text}")
        status_line, _, payload = answer.payload.partition(b"\n")
        try:
            return int(status_line.strip()), payload.strip()
        except ValueError as exc:
            raise ConnectorError(f"S²low: unreadable status {status_line[:40]!r}") from exc

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
                reason = cancel_payload.partition(b"\n")[0].decode("iso-8859-1").strip() or "Erreur"
                return StageResult(status="rejected", reason=f"Annulation refusée : {reason}")
        return StageResult(status="pending", fields={"tdt_status": status})
