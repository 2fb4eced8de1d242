"""As@lae connector for the ``sae`` stage: SEDA 2.1 transfer over As@lae's REST API (protocols.md §5).

* ``submit`` builds an ``ArchiveTransfer`` (MessageIdentifier = ``job.reference``) describing every
  file of the job, packs the files into a tar.gz and posts both to ``/sedaMessages``.
* ``lookup`` asks for the ``Acknowledgement`` of ``job.reference``: if it exists the transfer was
  already received.
* ``poll`` asks for the ``ArchiveTransferReply``: 404 → pending; ReplyCode ``000`` → done with the
  archive identifier; any other code → rejected (``"<code> - <comment>"``).

Authentication is HTTP Basic with the hex SHA-256 of the password, as Pastell does.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import httpx

from connectors.base import (
    ConnectorError,
    OutputFile,
    PermanentConnectorError,
    StageJob,
    StageResult,
)
from schemas.seda.transfer import (
    SedaError,
    build_archive_transfer,
    parse_acknowledgement,
    parse_transfer_reply,
)

DUPLICATE_MARKER = "a déjà été reçu"
_KEYWORD_FIELDS = ("id_acte", "numero_interne", "classification", "nature")


def pack_tar_gz(files: list[tuple[str, bytes]]) -> bytes:
    """A reproducible tar.gz (fixed mtimes, given order)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _unique_names(names: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for index, name in enumerate(names, start=1):
        base = name.replace("\\", "/").rsplit("/", 1)[-1] or f"file{index}"
        candidate = base
        while candidate in seen:
            candidate = f"{index}_{base}"
            index += 1000
        seen.add(candidate)
        out.append(candidate)
    return out


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


class AsalaeConnector:
    def __init__(
        self,
        base_url: str,
        login: str,
        password: str,
        archival_agency: str,
        transferring_agency: str,
        originating_agency: str,
        archival_agreement: str | None = None,
        timeout: float = 30.0,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.archival_agency = archival_agency
        self.transferring_agency = transferring_agency
        self.originating_agency = originating_agency
        self.archival_agreement = archival_agreement
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            auth=httpx.BasicAuth(login, hashlib.sha256(password.encode("utf-8")).hexdigest()),
            headers={"Accept": "application/json", "Expect": ""},
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ConnectorError(f"As@lae: timeout on {path}") from exc
        except httpx.HTTPError as exc:
            raise ConnectorError(f"As@lae: transport error on {path}: {exc}") from exc
        if response.status_code in (401, 403):
            raise PermanentConnectorError(f"As@lae: authentication refused (HTTP {response.status_code})")
        if response.status_code >= 500:
            raise ConnectorError(f"As@lae: HTTP {response.status_code} on {path}")
        return response

    def _message_path(self, message: str, reference: str) -> str:
        return (
            f"/sedaMessages/sequence:ArchiveTransfer/message:{message}/"
            f"originOrganizationIdentification:{quote(self.originating_agency, safe='')}/"
            f"originMessageIdentifier:{quote(reference, safe='')}"
        )

    async def _get_message(self, message: str, reference: str) -> bytes | None:
        response = await self._request(
            "GET", self._message_path(message, reference), headers={"Accept": "application/xml"}
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ConnectorError(f"As@lae: HTTP {response.status_code} reading {message} of {reference}")
        return response.content

    # ------------------------------------------------------------------ StageConnector

    def build_transfer(self, job: StageJob, when: datetime | None = None) -> tuple[bytes, bytes]:
        """The SEDA bordereau and the tar.gz attachment for ``job`` (all its files)."""
        if not job.files:
            raise PermanentConnectorError("nothing to archive: the job has no file")
        names = _unique_names([f.name for f in job.files])
        meta = job.metadata
        title = str(meta.get("objet") or meta.get("title") or f"Document {job.document_id}")
        keywords = {k: str(meta[k]) for k in _KEYWORD_FIELDS if meta.get(k) not in (None, "")}
        keywords["flux"] = job.flow
        try:
            bordereau = build_archive_transfer(
                message_identifier=job.reference,
                archival_agency=self.archival_agency,
                transferring_agency=self.transferring_agency,
                originating_agency=self.originating_agency,
                archival_agreement=self.archival_agreement,
                title=title,
                description=str(meta["description"]) if meta.get("description") else None,
                files=[(n, f.data, f.media_type) for n, f in zip(names, job.files)],
                start_date=_as_date(meta.get("date_decision")),
                keywords=keywords,
                date=when or datetime.now().replace(microsecond=0),
            )
        except SedaError as exc:
            raise PermanentConnectorError(f"SEDA transfer not buildable: {exc}") from exc
        return bordereau, pack_tar_gz([(n, f.data) for n, f in zip(names, job.files)])

    async def lookup(self, job: StageJob) -> str | None:
        ack = await self._get_message("Acknowledgement", job.reference)
        if ack is None:
            return None
        try:
            parsed = parse_acknowledgement(ack)
        except SedaError as exc:
            raise ConnectorError(f"As@lae: unreadable Acknowledgement: {exc}") from exc
        if parsed["message_received_identifier"] not in (None, job.reference):
            raise ConnectorError("As@lae: Acknowledgement of another transfer")
        return job.reference

    async def submit(self, job: StageJob) -> tuple[str, list[OutputFile]]:
        bordereau, attachment = self.build_transfer(job)
        response = await self._request(
            "POST",
            "/sedaMessages",
            files={
                "seda_message": ("bordereau.xml", bordereau, "application/xml"),
                "attachments": (f"{job.reference}.tar.gz", attachment, "application/gzip"),
            },
        )
        if response.status_code != 200:
            message = _error_message(response)
            if DUPLICATE_MARKER in message and await self.lookup(job) is not None:
                pass  # already received (a previous attempt whose answer was lost)
            else:
                raise PermanentConnectorError(f"As@lae refused the transfer (HTTP {response.status_code}): {message}")
        return job.reference, [
            OutputFile(name=f"{job.reference}-seda.xml", role="seda_transfer", data=bordereau,
                       media_type="application/xml")
        ]

    async def poll(self, job: StageJob, remote_id: str) -> StageResult:
        reply = await self._get_message("ArchiveTransferReply", remote_id)
        if reply is None:
            return StageResult(status="pending")
        try:
            parsed = parse_transfer_reply(reply)
        except SedaError as exc:
            raise ConnectorError(f"As@lae: unreadable ArchiveTransferReply: {exc}") from exc
        code = parsed["reply_code"] or ""
        files = [OutputFile(name=f"{remote_id}-atr.xml", role="seda_reply", data=reply, media_type="application/xml")]
        fields = {"archive_identifier": parsed["archive_identifier"], "reply_code": code}
        if code == "000":
            return StageResult(status="done", files=files, fields=fields)
        return StageResult(
            status="rejected", files=files, fields=fields, reason=f"{code} - {parsed['comment'] or ''}".strip()
        )


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        return str(body.get("message") or body)
    return str(body)
