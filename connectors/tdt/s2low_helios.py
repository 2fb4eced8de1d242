"""S²low connector for the ``tdt`` stage of the HELIOS flow (PES v2 → DGFiP; docs/protocols.md §2.4,
§2.5, §2.6, §3.4).

* ``submit`` posts the PES (role ``signed_document`` if present, else ``document``) to
  ``helios_importer_fichier.php`` as multipart field ``enveloppe``, the file name sanitised as
  Pastell does (characters outside ``[a-zA-Z0-9._\\- ]`` become ``_``). Any KO but "doublon" is
  permanent.
* Recovering an uncertain import. The intent recorded before the call holds the NomFic, the SHA-1
  of the bytes sent and the day (:meth:`S2lowHeliosConnector.intent_facts`). S²low has no lookup
  by NomFic, so ``lookup`` says "not found" and the runner posts again: S²low refuses the same
  bytes ("doublon détecté. Ce fichier a déjà été posté", no id given back), which proves the
  first import got through; ``submit`` then pages ``api/list_pes_aller.php`` over the statuses a
  PES can be in, from the day of the intent, and downloads the candidates
  (``helios_download_file.php``) until one has the recorded SHA-1. ``lookup`` searches that way
  itself when the effect it is asked about sent other bytes than the job's (an earlier
  generation), so a PES is never posted twice under one NomFic (S²low would refuse the second at
  validation: "ce fichier existe déjà sur la plateforme"). ``list_pes_aller.php`` needs the S²low
  account's archivist right.
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
from datetime import date, timedelta
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
LIST_PES_ALLER = "/modules/helios/api/list_pes_aller.php"
DOWNLOAD = "/modules/helios/helios_download_file.php"
ACQUIT = "/modules/helios/helios_download_acquit.php"
# Where a PES can be after its import, most likely first.
STATUSES_AFTER_IMPORT = (1, 2, 3, 7, 4, 6, 8, -1, 24, 13, 14, 0, 5, 9, 10, 11, 19, 20, 21, 22, 23)
LIST_PAGE = 100
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

    # ------------------------------------------------------------------ intent / lookup / submit

    async def intent_facts(self, job: StageJob) -> dict[str, Any]:
        document = self._document(job)
        sha1 = await asyncio.to_thread(lambda: hashlib.sha1(document.data).hexdigest())
        return {"nom_fic": await self._nom_fic(job, document), "sha1": sha1,
                "filename": sanitize_filename(document.name), "submitted_on": date.today().isoformat()}

    async def lookup(self, job: StageJob) -> str | None:
        recorded = job.intent.get("sha1")
        if not recorded:
            return None
        document = self._document(job)
        sha1 = await asyncio.to_thread(lambda: hashlib.sha1(document.data).hexdigest())
        if sha1 == recorded:
            # Posting again is the probe: S²low refuses the same bytes as "doublon" if the first
            # import got through, and submit then finds the transaction (docs/protocols.md §2.6).
            return None
        return await self.find_pes(job.intent)

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
            sha1 = await asyncio.to_thread(lambda: hashlib.sha1(document.data).hexdigest())
            found = await self.find_pes({**job.intent, "sha1": sha1})
            if found is None:
                raise PermanentConnectorError(
                    f"S²low refuses this PES as already posted, and none of this collectivité's "
                    f"transactions carries it: {answer.message}")
            log.info("S²low: PES %s already imported as transaction %s: not sent again", sha1, found)
            return found, []
        raise PermanentConnectorError(f"S²low: {answer.message or 'import refusé'}")

    async def find_pes(self, facts: dict[str, Any]) -> str | None:
        """The transaction whose posted bytes have SHA-1 ``facts["sha1"]``: the candidates of
        ``list_pes_aller.php`` (newest first, from the day before the intent, then without the
        date bound if that finds nothing), each downloaded until one matches."""
        sha1 = str(facts["sha1"])
        since = facts.get("submitted_on")
        bounds: list[str | None] = [None]
        if since:
            bounds.insert(0, (date.fromisoformat(str(since)) - timedelta(days=1)).isoformat())
        seen: set[str] = set()
        for min_date in bounds:
            for status in STATUSES_AFTER_IMPORT:
                offset = 0
                while True:
                    ids = await self._list_pes_aller(status, offset, min_date)
                    for tx_id in ids:
                        if tx_id not in seen:
                            seen.add(tx_id)
                            if await self._posted_sha1(tx_id) == sha1:
                                return tx_id
                    if len(ids) < LIST_PAGE:
                        break
                    offset += LIST_PAGE
        return None

    async def _list_pes_aller(self, status: int, offset: int, min_date: str | None) -> list[str]:
        params: dict[str, Any] = {"status_id": status, "offset": offset, "limit": LIST_PAGE}
        if min_date:
            params["min_date"] = min_date
        response = await self._request("GET", LIST_PES_ALLER, params=params, accept=(400,))
        try:
            body = response.json()
        except ValueError as exc:
            raise ConnectorError(f"S²low: unreadable list_pes_aller.php answer {response.content[:80]!r}") from exc
        if response.status_code == 400:
            raise PermanentConnectorError(
                f"S²low: list_pes_aller.php refused ({body.get('error') if isinstance(body, dict) else body}): "
                "the S²low account needs the archivist right to find a PES again")
        rows = body.get("transactions") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) and str(r.get("id", "")).isdigit() for r in rows):
            raise ConnectorError(f"S²low: unexpected list_pes_aller.php answer {response.content[:80]!r}")
        return [str(r["id"]) for r in rows]

    async def _posted_sha1(self, transaction_id: str) -> str | None:
        response = await self._request("GET", DOWNLOAD, params={"id": transaction_id}, accept=(302, 404))
        if response.status_code != 200:
            return None
        return await asyncio.to_thread(lambda: hashlib.sha1(response.content).hexdigest())

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

        response = await self._request("GET", ACQUIT, params={"id": remote_id}, accept=(404,))
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
