"""S²low connector for the ``tdt`` stage of the HELIOS flow (PES v2 → DGFiP; protocols.md §2.4, §2.5, §3.4).

* ``submit`` posts the PES (role ``signed_document`` if present, else ``document``) to
  ``helios_importer_fichier.php`` as multipart field ``enveloppe``, the file name sanitised as
  Pastell does (characters outside ``[a-zA-Z0-9._\\- ]`` become ``_``). A KO "doublon détecté"
  means the same bytes were already posted: the transaction is found back through ``lookup``.
  Any other KO is permanent.
* ``lookup`` asks the simulator extension ``helios_transac_find.php`` for the latest transaction
  with the job's NomFic (``job.metadata["nom_fic"]``, else read from the file) **and** the sha1 of
  the file it would send, so a different file reusing a NomFic is not mistaken for our effect
  (S²low then refuses it at validation: "ce fichier existe déjà sur la plateforme"). A server
  without the extension (HTTP 404) gives ``None``.
* ``poll`` reads ``helios_transac_get_status.php``: 1/2/3/7 (and 13/14/24) pending; 4/6/8 (and the
  SAE statuses reached after an acquit) → download ``helios_download_acquit.php`` and parse the
  PES_ACQUIT:

  - every element accepted → ``done``, fields ``{"acquit": "accepted", "tdt_transaction_id", "nom_fic"}``;
  - some refused → ``done``, fields add ``"acquit": "partial"``, ``failed_bordereaux`` (NumBord),
    ``failed_pj`` (IdUnique) and ``acquit_errors`` (the flow goes on; these fields flag it);
  - all refused → ``rejected``, reason listing the DGFiP codes/labels, fields
    ``{"acquit": "rejected", "acquit_errors": [...]}``;

  the acquit is always returned as ``OutputFile(role="pes_acquit", media_type="application/xml")``
  named as the server names it (``<IdPost>_<yyMMddHHmmss>-ACK-…xml``). -1 → ``rejected`` with
  the platform's message; 0 → ``rejected`` (cancelled).

Errors: HTTP 5xx, timeouts, transport errors, non-XML answers and unreadable acquits are retryable
(``ConnectorError``); HTTP 401/403, KO answers to an import and a missing file are permanent.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import Any

from connectors.base import (
    ConnectorError,
    InputFile,
    OutputFile,
    PermanentConnectorError,
    StageJob,
    StageResult,
)
from connectors.tdt.s2low_http import S2lowClient, filename_from
from schemas.errors import SchemaError

log = logging.getLogger(__name__)

IMPORT = "/modules/helios/api/helios_importer_fichier.php"
STATUS = "/modules/helios/api/helios_transac_get_status.php"
FIND = "/modules/helios/api/helios_transac_find.php"
ACQUIT = "/modules/helios/helios_download_acquit.php"
PENDING_STATUSES = {1, 2, 3, 7, 13, 14, 24}
# 4 ACQUITTE, 6 REFUSE, 8 INFORMATION_DISPONIBLE, then the SAE statuses that follow an acquit.
ACQUIT_STATUSES = {4, 5, 6, 8, 9, 10, 11, 19, 20, 23}
DUPLICATE_MARKER = "doublon"
_UNSAFE_NAME = re.compile(r"[^a-zA-Z0-9._\- ]")


def sanitize_filename(name: str) -> str:
    """Pastell's clean-up of the posted file name."""
    return _UNSAFE_NAME.sub("_", name) or "pes.xml"


class XmlAnswer:
    """A small S²low HELIOS answer: ``<import>`` / ``<transaction>`` with text children."""

    def __init__(self, body: bytes, path: str) -> None:
        from schemas.xml import parse_xml

        try:
            root = parse_xml(body.strip(), max_bytes=1_000_000)
        except SchemaError as exc:
            raise ConnectorError(f"S²low: unreadable answer on {path}: {body[:80]!r}") from exc
        self.tag = root.tag if isinstance(root.tag, str) else ""
        self.fields = {child.tag: (child.text or "").strip() for child in root if isinstance(child.tag, str)}
        self.ok = self.fields.get("resultat") == "OK"
        self.message = self.fields.get("message", "")
        self.id = self.fields.get("id", "")


class S2lowHeliosConnector(S2lowClient):
    # ------------------------------------------------------------------ HTTP

    async def _xml(self, method: str, path: str, **kwargs: Any) -> XmlAnswer:
        response = await self._request(method, path, **kwargs)
        if response.status_code != 200:
            raise ConnectorError(f"S²low: HTTP {response.status_code} on {path}")
        return XmlAnswer(response.content, path)

    # ------------------------------------------------------------------ files

    @staticmethod
    def _document(job: StageJob) -> InputFile:
        by_role = {f.role: f for f in job.files}
        document = by_role.get("signed_document") or by_role.get("document")
        if document is None:
            raise PermanentConnectorError("no PES (role signed_document or document) to transmit")
        return document

    @staticmethod
    async def _nom_fic(job: StageJob, document: InputFile) -> str | None:
        nom_fic = job.metadata.get("nom_fic")
        if nom_fic:
            return str(nom_fic)
        from schemas.helios.pes import summarise_pes_aller

        try:
            summary = await asyncio.to_thread(summarise_pes_aller, document.data)
        except SchemaError:
            return None
        return summary.nom_fic or None

    # ------------------------------------------------------------------ lookup / submit

    async def lookup(self, job: StageJob) -> str | None:
        document = self._document(job)
        nom_fic = await self._nom_fic(job, document)
        if not nom_fic:
            return None
        sha1 = await asyncio.to_thread(lambda: hashlib.sha1(document.data).hexdigest())
        response = await self._request("GET", FIND, params={"nom_fic": nom_fic, "sha1": sha1}, accept=(404,))
        if response.status_code == 404:
            return None  # a real S²low: no find extension
        if response.status_code != 200:
            raise ConnectorError(f"S²low: HTTP {response.status_code} on {FIND}")
        answer = XmlAnswer(response.content, FIND)
        if not answer.ok or not answer.id.isdigit():
            return None
        return answer.id

    async def submit(self, job: StageJob) -> tuple[str, list[OutputFile]]:
        document = self._document(job)
        files = {"enveloppe": (sanitize_filename(document.name), document.data, "application/xml")}
        answer = await self._xml("POST", IMPORT, data={"api": "1"}, files=files)
        if answer.tag != "import":
            raise ConnectorError(f"S²low: unexpected answer <{answer.tag}> on {IMPORT}")
        if answer.ok:
            if not answer.id.isdigit():
                raise ConnectorError(f"S²low: import answered OK without an id: {answer.fields!r}")
            return answer.id, []
        if DUPLICATE_MARKER in answer.message.lower():
            found = await self.lookup(job)
            if found is None:
                raise PermanentConnectorError(f"S²low: {answer.message}")
            return found, []
        raise PermanentConnectorError(f"S²low: {answer.message or 'import refusé'}")

    # ------------------------------------------------------------------ poll

    async def poll(self, job: StageJob, remote_id: str) -> StageResult:
        answer = await self._xml("GET", STATUS, params={"transaction": remote_id})
        if not answer.ok:
            raise PermanentConnectorError(f"S²low: status of {remote_id}: {answer.message}")
        try:
            status = int(answer.fields.get("status", ""))
        except ValueError as exc:
            raise ConnectorError(f"S²low: unreadable status {answer.fields.get('status')!r}") from exc
        base = {"tdt_transaction_id": remote_id, "tdt_status": status}
        if status in PENDING_STATUSES:
            return StageResult(status="pending", fields=base)
        if status == -1:
            message = answer.message or "Erreur"
            return StageResult(status="rejected", reason=message, fields={**base, "detail": message})
        if status == 0:
            return StageResult(status="rejected", reason="Transaction annulée", fields=base)
        if status in ACQUIT_STATUSES:
            return await self._acquitted(job, remote_id, base)
        return StageResult(status="pending", fields=base)

    async def _acquitted(self, job: StageJob, remote_id: str, base: dict[str, Any]) -> StageResult:
        from schemas.helios.acquit import parse_acquit

        response = await self._request("GET", ACQUIT, params={"id": remote_id})
        if response.status_code != 200:
            raise ConnectorError(f"S²low: PES_ACQUIT of {remote_id} not available (HTTP {response.status_code})")
        data = response.content
        try:
            acquit = parse_acquit(data)
        except SchemaError as exc:
            raise ConnectorError(f"S²low: unreadable PES_ACQUIT for {remote_id}: {exc.message}") from exc
        expected = job.metadata.get("nom_fic")
        if expected and acquit.nom_fic != expected:
            raise PermanentConnectorError(
                f"S²low: PES_ACQUIT of {remote_id} is for NomFic {acquit.nom_fic!r}, expected {expected!r}"
            )
        name = filename_from(response) or f"ACQUIT_{acquit.nom_fic or remote_id}.xml"
        files = [OutputFile(name=name, role="pes_acquit", data=data, media_type="application/xml")]
        errors = _acquit_errors(acquit)
        fields: dict[str, Any] = {**base, "acquit": acquit.verdict, "nom_fic": acquit.nom_fic, "acquit_name": name}
        if acquit.verdict == "accepted":
            return StageResult(status="done", files=files, fields=fields)
        fields.update(failed_bordereaux=acquit.failed_bordereaux, failed_pj=acquit.failed_pj, acquit_errors=errors)
        if acquit.verdict == "partial":
            return StageResult(status="done", files=files, fields=fields)
        return StageResult(status="rejected", files=files, fields=fields, reason=_reason(errors))


def _acquit_errors(acquit: Any) -> list[dict[str, Any]]:
    """One entry per DGFiP anomaly of a refused element (element, piece or line level)."""
    out: list[dict[str, Any]] = []
    for el in acquit.elements:
        if el.accepted:
            continue
        where = {"domain": el.domain, "domain_label": el.domain_label, "num_bord": el.num_bord,
                 "exercice": el.exercice, "id_unique": el.id_unique}
        found = False
        for code, label in el.errors:
            out.append({**where, "code": code, "label": label})
            found = True
        for piece in el.pieces:
            for code, label in piece.get("errors", []):
                out.append({**where, "num_piece": piece.get("num_piece"), "code": code, "label": label})
                found = True
            for line in piece.get("lines", []):
                for code, label in line.get("errors", []):
                    out.append({**where, "num_piece": piece.get("num_piece"), "num_ligne": line.get("num_ligne"),
                                "code": code, "label": label})
                    found = True
        if not found:
            out.append({**where, "code": None, "label": f"EtatAck {el.etat}"})
    return out


def _reason(errors: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for e in errors:
        target = (f"bordereau {e['num_bord']}" + (f"/{e['exercice']}" if e.get("exercice") else "")
                  if e.get("num_bord") else f"PJ {e['id_unique']}" if e.get("id_unique") else e["domain_label"])
        text = " ".join(x for x in (e.get("code"), e.get("label")) if x)
        item = f"{text} ({target})"
        if item not in parts:
            parts.append(item)
    return "PES refusé par la DGFiP : " + ("; ".join(parts) if parts else "aucun élément accepté")


__all__ = ["S2lowHeliosConnector", "sanitize_filename"]
