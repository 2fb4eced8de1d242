"""Signature stage through an i-Parapheur v5 server (REST), as Pastell does it.

The calls and their wire names are those of Libriciel's generated client
(libriciel/iparapheur-v5-api-php ``lib/Api/FolderApi.php``) in the order Pastell makes them
(libriciel/pastell ``src/Connector/IparapheurRest/IparapheurRestConnector.php``).

* ``submit`` creates the folder, named ``job.reference``, with ``autoStart=false`` (the server
  starts it when the parameter is absent) and the files as repeated ``documents`` parts, and
  returns its id at once: the runner records it. ``poll`` then starts the draft (the START task id
  comes from the PREMIS) and follows it. So the only window where the bus may have made a folder
  without knowing its id is the creation call itself.
* That window is closed through what the real API offers. The server refuses no second folder of
  the same name (no 409 is documented), and its listings are per desk and per state, filtered by
  type and subtype only. A folder created but never recorded is still a DRAFT on our desk, since
  only ``poll`` starts folders, and only recorded ones. ``lookup`` lists the desk's DRAFTs of the
  job's type and subtype and matches the exact name.
  - One draft: it is ours, and ``poll`` starts it.
  - None: nothing was created. The runner looks up only once its lease is over (twice the
    connector timeout plus 5 s, ``bus/worker.py``), so a creation a dead worker had on the wire
    has landed by then.
  - Several: :class:`PermanentConnectorError`, naming the folder ids, for an operator to settle.
  When the creation call itself times out or its connection drops (or a gateway answers 502 /
  504), ``submit`` lists the drafts at once. If none is there, the server may still be creating
  it: an operator decides (the error says so), and nothing is ever sent twice.
* ``poll`` reads the PREMIS. The current step is the last task event: ``ARCHIVE`` = finished
  (download the ZIP, return the signed main documents and the bordereau, delete the folder),
  ``DELETE`` = rejected (the refusal note becomes the reason; the folder is left for the humans).

Errors: transport errors, timeouts, HTTP 5xx/408/429 and malformed answers raise
:class:`ConnectorError`; other 4xx (bad credentials, unknown tenant/desk/type, invalid folder)
raise :class:`PermanentConnectorError`.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from lxml import etree

from connectors.base import (
    ConnectorError,
    InputFile,
    OutputFile,
    PermanentConnectorError,
    StageJob,
    StageResult,
)
from connectors.http import HttpClient, HttpResponse, error_for_status

log = logging.getLogger(__name__)

PREMIS_NS = "http://www.loc.gov/premis/v3"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
API = "/api/standard/v1"
TOKEN_PATH = "/auth/realms/api/protocol/openid-connect/token"
CLIENT_ID = "ipcore-web"
MAIN_DIR = "Documents principaux/"
_ANY_STATUS = frozenset(range(300, 600))  # statuses are read by IparapheurConnector._check
MAX_ZIP_BYTES = 1 << 30  # refuse absurd ZIPs (uncompressed total)


class _AnswerLost(ConnectorError):
    """The request may have been carried out, but its answer never came (timeout, dropped
    connection, a gateway giving up): the outcome is unknown."""


@dataclass(frozen=True)
class _Ids:
    tenant: str
    desk: str
    type: str
    subtype: str


@dataclass(frozen=True)
class PremisEvent:
    task_id: str
    type: str
    date: str  # "" while the task is pending
    note: str
    agent_id: str


@dataclass(frozen=True)
class Premis:
    name: str
    main_files: list[str]
    events: list[PremisEvent]
    agents: dict[str, str]  # userId -> agentName


# ---------------------------------------------------------------------------------------------
# PREMIS (de)serialisation


def build_folder_premis(
    name: str,
    type_id: str,
    subtype_id: str,
    files: Iterable[tuple[str, bool]],
    metadata: dict[str, str] | None = None,
    due_date: str | None = None,
) -> bytes:
    """The draft PREMIS of a folder creation: one intellectualEntity + one file object each."""
    root = etree.Element(f"{{{PREMIS_NS}}}premis", nsmap={None: PREMIS_NS, "xsi": XSI_NS})
    root.set("version", "3.0")

    def sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
        el = etree.SubElement(parent, f"{{{PREMIS_NS}}}{tag}")
        el.text = text
        return el

    def prop(parent: etree._Element, key: str, value: str) -> None:
        el = sub(parent, "significantProperties")
        sub(el, "significantPropertiesType", key)
        sub(el, "significantPropertiesValue", value)

    entity = sub(root, "object")
    entity.set(f"{{{XSI_NS}}}type", "intellectualEntity")
    prop(entity, "i_Parapheur_reserved_type", type_id)
    prop(entity, "i_Parapheur_reserved_subtype", subtype_id)
    if due_date:
        prop(entity, "i_Parapheur_reserved_dueDate", due_date)
    for key, value in (metadata or {}).items():
        prop(entity, key, value)
    sub(entity, "originalName", name)
    for file_name, main in files:
        obj = sub(root, "object")
        obj.set(f"{{{XSI_NS}}}type", "file")
        prop(obj, "i_Parapheur_reserved_mainDocument", "true" if main else "false")
        sub(obj, "originalName", file_name)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _safe_xml(data: bytes) -> etree._Element:
    if b"<!DOCTYPE" in data[:4096]:
        raise ValueError("DOCTYPE is not allowed")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(data, parser)


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _find(el: etree._Element, *path: str) -> etree._Element | None:
    for name in path:
        el = next((c for c in el if _local(c.tag) == name), None)  # type: ignore[assignment]
        if el is None:
            return None
    return el


def _text(el: etree._Element, *path: str) -> str:
    found = _find(el, *path)
    return (found.text or "").strip() if found is not None else ""


def parse_premis(data: bytes) -> Premis:
    try:
        root = _safe_xml(data)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise ConnectorError(f"i-Parapheur returned an unreadable PREMIS: {exc}") from exc
    name, main_files = "", []
    for obj in (c for c in root if _local(c.tag) == "object"):
        kind = (obj.get(f"{{{XSI_NS}}}type") or "").split(":")[-1]
        if kind == "intellectualEntity":
            name = _text(obj, "originalName")
        elif kind == "file":
            props = {
                _text(p, "significantPropertiesType"): _text(p, "significantPropertiesValue")
                for p in obj
                if _local(p.tag) == "significantProperties"
            }
            if props.get("i_Parapheur_reserved_mainDocument", "").lower() == "true":
                main_files.append(_text(obj, "originalName"))
    events = [
        PremisEvent(
            task_id=_text(ev, "eventIdentifier", "eventIdentifierValue"),
            type=_text(ev, "eventType").upper(),
            date=_text(ev, "eventDateTime"),
            note=_text(
                ev, "eventOutcomeInformation", "eventOutcomeDetail", "eventOutcomeDetailNote"
            ),
            agent_id=_text(ev, "linkingAgentIdentifier", "linkingAgentIdentifierValue"),
        )
        for ev in root
        if _local(ev.tag) == "event"
        and _text(ev, "eventIdentifier", "eventIdentifierType") == "taskId"
    ]
    agents = {
        _text(ag, "agentIdentifier", "agentIdentifierValue"): _text(ag, "agentName")
        for ag in root
        if _local(ag.tag) == "agent"
    }
    return Premis(name=name, main_files=main_files, events=events, agents=agents)


def _media_type(name: str) -> str:
    lowered = name.lower()
    if lowered.endswith(".pdf"):
        return "application/pdf"
    return "text/xml" if lowered.endswith(".xml") else "application/octet-stream"


# ---------------------------------------------------------------------------------------------
# The connector


class IparapheurConnector:
    """StageConnector for i-Parapheur v5. ``tenant``, ``desk``, ``type_name`` and
    ``subtype_name`` are names (ids are accepted too) resolved once through the discovery API.

    ``metadata_keys`` limits which scalar ``job.metadata`` entries are sent as folder metadata
    (``None``: all of them); ``job.options["due_date"]`` (YYYY-MM-DD) sets the folder due date and
    ``job.options["public_annotation"]`` the start annotation.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        tenant: str,
        desk: str,
        type_name: str,
        subtype_name: str,
        timeout: float = 30.0,
        *,
        metadata_keys: Iterable[str] | None = None,
    ) -> None:
        self._client = HttpClient("i-Parapheur", base_url, timeout=timeout)
        self._username = username
        self._password = password
        self._names = (tenant, desk, type_name, subtype_name)
        self._metadata_keys = None if metadata_keys is None else tuple(metadata_keys)
        self._token: str | None = None
        self._token_expiry = 0.0
        self._ids: dict[tuple[str, str, str, str], _Ids] = {}
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- HTTP plumbing -----------------------------------------------------------------------

    async def _send(self, method: str, url: str, **kwargs: Any) -> HttpResponse:
        """One call, its answer whatever the status (``_check`` reads it). A transport failure is
        a :class:`ConnectorError` when the request cannot have left (no connection), else
        :class:`_AnswerLost`: the server may have carried it out."""
        try:
            return await self._client.request(method, url, accept=_ANY_STATUS, **kwargs)
        except ConnectorError as exc:
            cause = exc.__cause__
            unsent = isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError) or (
                # aiohttp's words when the body could not be written (a pooled connection the
                # server had closed): the server never got a whole request.
                isinstance(cause, aiohttp.ClientOSError) and "Can not write request body" in str(cause)
            )
            if unsent:
                raise ConnectorError(f"i-Parapheur unreachable on {method} {url}: {cause!r}") from cause
            if isinstance(cause, TimeoutError):
                raise _AnswerLost(f"i-Parapheur timed out on {method} {url}") from cause
            raise _AnswerLost(f"i-Parapheur connection lost on {method} {url}: {cause!r}") from cause

    @staticmethod
    def _check(response: HttpResponse, what: str) -> None:
        """The connectors' one mapping (``connectors/http.py``), but for 502 / 504: a gateway gave
        up, and the server behind it may still be working."""
        status = response.status_code
        if status < 400:
            return
        detail = response.text[:300]
        if status in (502, 504):
            raise _AnswerLost(f"i-Parapheur: HTTP {status} on {what}: {detail}")
        error = error_for_status("i-Parapheur", status, what)
        raise type(error)(f"{error}: {detail}")

    @staticmethod
    def _json(response: HttpResponse, what: str) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConnectorError(f"{what}: the answer is not JSON") from exc

    async def _bearer(self) -> str:
        async with self._lock:
            if self._token and time.monotonic() < self._token_expiry:
                return self._token
            response = await self._send(
                "POST",
                TOKEN_PATH,
                data={
                    "grant_type": "password",
                    "client_id": CLIENT_ID,
                    "username": self._username,
                    "password": self._password,
                },
            )
            if response.status_code in (400, 401, 403):
                raise PermanentConnectorError(
                    f"i-Parapheur refused the credentials of {self._username!r} "
                    f"(HTTP {response.status_code})"
                )
            self._check(response, f"POST {TOKEN_PATH}")
            body = self._json(response, "i-Parapheur token")
            token = body.get("access_token") if isinstance(body, dict) else None
            if not token:
                raise ConnectorError("i-Parapheur token: no access_token in the answer")
            # Renew a little early so a token never expires between the check and the call.
            ttl = float(body.get("expires_in") or 60)
            self._token, self._token_expiry = token, time.monotonic() + max(ttl - 30, ttl / 2)
            return token

    async def _request(self, method: str, path: str, **kwargs: Any) -> HttpResponse:
        """An authenticated call; one transparent re-authentication on 401."""
        for attempt in range(2):
            token = await self._bearer()
            response = await self._send(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
            if response.status_code != 401 or attempt == 1:
                break
            async with self._lock:
                if self._token == token:
                    self._token = None
        self._check(response, f"{method} {path}")
        return response

    async def _paged(self, path: str, **filters: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 0
        while True:
            response = await self._request(
                "GET", path, params={**filters, "page": page, "size": 100}
            )
            body = self._json(response, f"i-Parapheur GET {path}")
            if not isinstance(body, dict) or not isinstance(body.get("content"), list):
                raise ConnectorError(f"i-Parapheur GET {path}: not a page (no content[])")
            items.extend(x for x in body["content"] if isinstance(x, dict))
            current = (body.get("pageable") or {}).get("pageNumber", page)
            total = body.get("totalPages") or 1
            if current + 1 >= total or page >= 10_000:
                return items
            page = current + 1

    # -- discovery ---------------------------------------------------------------------------

    @staticmethod
    def _pick(items: list[dict[str, Any]], wanted: str, what: str) -> str:
        for item in items:
            if wanted in (item.get("name"), item.get("id")):
                return str(item["id"])
        known = ", ".join(repr(i.get("name")) for i in items)
        raise PermanentConnectorError(f"i-Parapheur {what} {wanted!r} not found (known: {known})")

    async def _resolve(self, job: StageJob | None = None) -> _Ids:
        """Ids of the configured tenant/desk/type/subtype; a job's metadata `iparapheur_type` /
        `iparapheur_sous_type` (Pastell's per-document circuit) override the configured ones."""
        tenant_name, desk_name, type_name, subtype_name = self._names
        if job is not None and job.metadata.get("iparapheur_type"):
            type_name = str(job.metadata["iparapheur_type"])
            subtype_name = str(job.metadata.get("iparapheur_sous_type") or subtype_name)
        names = (tenant_name, desk_name, type_name, subtype_name)
        if names not in self._ids:
            tenant = self._pick(await self._paged(f"{API}/tenant"), tenant_name, "tenant")
            desk = self._pick(await self._paged(f"{API}/tenant/{tenant}/desk"), desk_name, "desk")
            typ = self._pick(await self._paged(f"{API}/tenant/{tenant}/types"), type_name, "type")
            subtype = self._pick(
                await self._paged(f"{API}/tenant/{tenant}/types/{typ}/subtypes"),
                subtype_name,
                "subtype",
            )
            self._ids[names] = _Ids(tenant, desk, typ, subtype)
        return self._ids[names]

    def _desk_path(self, ids: _Ids) -> str:
        return f"{API}/tenant/{ids.tenant}/desk/{ids.desk}"

    # -- StageConnector ----------------------------------------------------------------------

    async def _drafts_named(self, ids: _Ids, name: str) -> list[str]:
        """Ids of the DRAFT folders on our desk with exactly this name, of our type and subtype
        (the listing filters by type and subtype only; the name is matched here)."""
        drafts = await self._paged(
            f"{self._desk_path(ids)}/DRAFT", typeId=ids.type, subtypeId=ids.subtype
        )
        return [str(d["id"]) for d in drafts if d.get("name") == name and d.get("id")]

    def _desk_label(self, ids: _Ids) -> str:
        return f"desk {self._names[1]!r} ({ids.desk}), type {ids.type}, subtype {ids.subtype}"

    async def lookup(self, job: StageJob) -> str | None:
        ids = await self._resolve(job)
        found = await self._drafts_named(ids, job.reference)
        if len(found) > 1:
            raise PermanentConnectorError(
                f"i-Parapheur: {len(found)} draft folders named {job.reference!r} on "
                f"{self._desk_label(ids)}: {', '.join(found)}. Not sent again: keep one (or none) "
                f"in i-Parapheur, delete the others, then replay the document."
            )
        return found[0] if found else None

    def _metadata(self, job: StageJob) -> dict[str, str]:
        keys = self._metadata_keys if self._metadata_keys is not None else job.metadata.keys()
        out = {}
        for key in keys:
            value = job.metadata.get(key)
            if isinstance(value, bool):
                out[key] = "true" if value else "false"
            elif isinstance(value, (str, int, float)):
                out[key] = str(value)
        return out

    async def submit(self, job: StageJob) -> tuple[str, list[OutputFile]]:
        main = [f for f in job.files if f.role == "document"]
        annexes = [f for f in job.files if f.role == "annexe"]
        if not main:
            raise PermanentConnectorError("no file with role 'document' to send for signature")
        files: list[InputFile] = main + annexes
        ids = await self._resolve(job)
        premis = build_folder_premis(
            job.reference,
            ids.type,
            ids.subtype,
            [(f.name, f.role == "document") for f in files],
            metadata=self._metadata(job),
            due_date=job.options.get("due_date"),
        )
        parts = [("folder", ("premis.xml", premis, "application/xml"))]
        parts += [("documents", (f.name, f.data, f.media_type)) for f in files]
        try:
            response = await self._request(
                "POST",
                f"{self._desk_path(ids)}/folder",
                params={"autoStart": "false"},
                files=parts,
            )
        except PermanentConnectorError:
            raise  # refused: nothing was created
        except ConnectorError as exc:
            return await self._settle_creation(ids, job, exc), []
        body = self._json(response, "i-Parapheur folder creation")
        folder_id = str(body.get("id") or "") if isinstance(body, dict) else ""
        if not folder_id:
            raise ConnectorError("i-Parapheur folder creation: no id in the answer")
        return folder_id, []

    async def _settle_creation(self, ids: _Ids, job: StageJob, failure: ConnectorError) -> str:
        """The creation call failed: was the folder made? The drafts of our name tell."""
        try:
            found = await self.lookup(job)
        except PermanentConnectorError:
            raise
        except ConnectorError as exc:
            if isinstance(failure, _AnswerLost):
                raise PermanentConnectorError(
                    f"i-Parapheur: the creation of folder {job.reference!r} on "
                    f"{self._desk_label(ids)} got no answer ({failure}), and the drafts could not "
                    f"be listed ({exc}). Not sent again: look for a folder of that name in "
                    f"i-Parapheur, then replay the document (it takes that folder, if only one)."
                ) from failure
            raise failure from exc
        if found is not None:
            log.info("i-Parapheur folder %s was created (%s) though its answer was lost: %s",
                     job.reference, found, failure)
            return found
        if isinstance(failure, _AnswerLost):
            raise PermanentConnectorError(
                f"i-Parapheur: the creation of folder {job.reference!r} on {self._desk_label(ids)} "
                f"got no answer ({failure}) and no draft of that name is listed yet: the server may "
                f"still be creating it. Not sent again: look for a folder of that name in "
                f"i-Parapheur, then replay the document (it takes that folder, if only one)."
            ) from failure
        raise failure  # the server answered an error and made nothing: retry

    async def _premis(self, ids: _Ids, folder_id: str) -> Premis:
        response = await self._request("GET", f"{self._desk_path(ids)}/folder/{folder_id}/premis")
        premis = parse_premis(response.content)
        if not premis.events:
            raise ConnectorError(f"i-Parapheur folder {folder_id}: PREMIS without task events")
        return premis

    async def _start_if_draft(
        self, ids: _Ids, folder_id: str, premis: Premis, job: StageJob
    ) -> bool:
        start = next((e for e in premis.events if e.type == "START"), None)
        if start is None or start.date:
            return False
        await self._request(
            "PUT",
            f"{self._desk_path(ids)}/folder/{folder_id}/task/{start.task_id}/start",
            json={
                "publicAnnotation": str(job.options.get("public_annotation") or ""),
                "privateAnnotation": "",
            },
        )
        return True

    async def poll(self, job: StageJob, remote_id: str) -> StageResult:
        ids = await self._resolve(job)
        premis = await self._premis(ids, remote_id)
        current = premis.events[-1]
        if current.type == "ARCHIVE":
            return await self._collect(ids, remote_id, premis)
        if current.type == "DELETE":
            refusal = next((e for e in reversed(premis.events) if e.note), None)
            return StageResult(
                "rejected",
                reason=refusal.note if refusal else "Dossier rejeté dans i-Parapheur",
                fields={
                    "remote_folder_id": remote_id,
                    "rejected_by": premis.agents.get(refusal.agent_id) if refusal else None,
                },
            )
        if await self._start_if_draft(ids, remote_id, premis, job):
            log.info("i-Parapheur folder %s was still a draft: started it", remote_id)
        return StageResult("pending", fields={"current_step": current.type})

    async def _collect(self, ids: _Ids, folder_id: str, premis: Premis) -> StageResult:
        response = await self._request("GET", f"{self._desk_path(ids)}/folder/{folder_id}/zip")
        files = self._unzip(response.content, premis)
        signature = next(
            (e for e in reversed(premis.events) if e.type in ("SIGNATURE", "EXTERNAL_SIGNATURE")),
            None,
        )
        return StageResult(
            "done",
            files=files,
            fields={
                "remote_folder_id": folder_id,
                "signer": premis.agents.get(signature.agent_id) if signature else None,
                "signed_at": signature.date if signature else None,
            },
        )

    async def after_outcome(self, job: StageJob, remote_id: str, result: StageResult) -> None:
        """Delete a signed folder once the bus has recorded its files (the runner calls this after
        its commit). Deleted within `poll`, a worker killed before the commit left a document whose
        signed files were gone from the parapheur: polled forever, a 404 each time."""
        if result.status != "done":
            return  # a rejected folder is left for the humans
        ids = await self._resolve(job)
        await self._request("DELETE", f"{self._desk_path(ids)}/folder/{remote_id}")

    @staticmethod
    def _unzip(data: bytes, premis: Premis) -> list[OutputFile]:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:
            raise ConnectorError("i-Parapheur ZIP is not a ZIP") from exc
        # A member whose bytes lie about its size (a bomb), a bad CRC, an encrypted or unknown
        # compression: the ZIP is refused, never half read.
        try:
            with archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                    raise ConnectorError("i-Parapheur ZIP is too large once uncompressed")
                by_name = {m.filename: m for m in members}
                out = []
                for name in premis.main_files:
                    member = by_name.get(MAIN_DIR + name)
                    if member is None:
                        raise ConnectorError(f"i-Parapheur ZIP lacks {MAIN_DIR}{name}")
                    out.append(
                        OutputFile(
                            name=name,
                            role="signed_document",
                            data=archive.read(member),
                            media_type=_media_type(name),
                        )
                    )
                if not out:
                    raise ConnectorError("i-Parapheur ZIP: the PREMIS names no main document")
                expected = premis.name.replace("/", "_").replace("\\", "_") + "_bordereau.pdf"
                bordereau = by_name.get(expected) or next(
                    (m for m in members if re.fullmatch(r'[^/\\\x00-\x1f"]+_bordereau\.pdf', m.filename)),
                    None,
                )
                if bordereau is not None:
                    out.append(
                        OutputFile(
                            name=bordereau.filename,
                            role="bordereau_signature",
                            data=archive.read(bordereau),
                            media_type="application/pdf",
                        )
                    )
                return out
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
            raise PermanentConnectorError(f"i-Parapheur ZIP is corrupt: {exc}") from exc
