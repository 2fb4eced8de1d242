"""As@lae (SAE) simulator: a real HTTP server speaking As@lae's REST API for SEDA 2.1 transfers.

It answers the calls Pastell makes (libriciel/pastell ``connecteur/as@lae-rest/AsalaeREST.php``),
the way the real server answers them as far as public clients show, and nothing else. Run it with
:class:`connectors.simulators.server.ServerThread` or ``uvicorn`` on ``create_app(AsalaeSimSettings())``.

Authentication: HTTP Basic with ``settings.login`` and the **hex SHA-256 of** ``settings.password``
as password (what Pastell sends). Anything else → HTTP 401.

Endpoints (relative to the base URL, which plays the role of ``…/restservices``)
--------------------------------------------------------------------------------
* ``GET  /ping`` → ``"webservices as@lae accessibles"``
* ``GET  /versions`` → ``{"application": "as@lae", "denomination": "", "version": settings.version}``
* ``POST /sedaMessages`` multipart ``seda_message`` (the bordereau) + ``attachments`` (tar.gz or
  zip). Checks: the bordereau is a SEDA 2.1 ``ArchiveTransfer`` valid against the XSD; an attachment
  is present when the bordereau lists BinaryDataObjects; every listed file is in it with the same
  SHA-256 (and size). Answer: JSON ``"ok"``, or HTTP 400 with ``{"message": …}``. A MessageIdentifier
  already received from that transferring agency is counted in ``duplicates`` and, with
  ``duplicate_transfers="refuse"`` (the default), refused with a 400 whose text says nothing of a
  duplicate (no public source shows what As@lae says then); with ``"accept"`` it is stored again,
  as a server that checks nothing would.
* ``GET /sedaMessages/sequence:ArchiveTransfer/message:Acknowledgement/originOrganizationIdentification:<org>/originMessageIdentifier:<id>``
  → the ``Acknowledgement`` XML after ``ack_delay`` (0 by default: As@lae acknowledges on receipt).
* same path with ``message:ArchiveTransferReply`` → the ``ArchiveTransferReply`` after
  ``reply_delay``: ReplyCode ``000`` with ``ArchivalAgencyArchiveUnitIdentifier`` ``AE_<year>_<n>``
  (n counts accepted transfers per year, deterministic), or ``101`` + Comment when the originating
  agency matches ``refuse_originating_agencies``, the transfer id matches ``refuse_transfer_ids``
  (regular expressions, ``re.search``) or the ``refuse_next`` fault is armed.
  ``<org>`` is the transferring or the originating agency identifier.
* Until a message exists the answer is the real server's: **HTTP 500, body
  ``Transfert en cours de traitement``** (PatPercot/cd56-connecteur-asalae
  ``src/main/java/fr/morbihan/patrickpercot/cd56_connecteur_asalae/AsalaeConnector.java``). For a
  transfer never received, no source says: ``unknown_transfer_status`` / ``unknown_transfer_text``
  (404 "message introuvable" by default; set 500 "Transfert en cours de traitement" to rehearse
  the least helpful server).

Not simulated: chunked uploads (``/sedaAttachmentsChunkFiles``), SEDA 0.2/1.0 bordereaux (refused
with HTTP 400).

Admin API (JSON)
----------------
* ``GET /_admin/transfers`` → ``{"transfers": [...], "duplicates": n}`` (``duplicates`` counts
  POSTs of a MessageIdentifier already received)
* ``GET /_admin/stats``; ``POST /_admin/clock/advance`` ``{"seconds": n}``
* ``GET|POST|DELETE /_admin/faults`` (``fail_next``, ``slow_seconds``, ``timeout_next``,
  ``malformed_next`` for the message GETs, ``refuse_next``; see :mod:`connectors.simulators.faults`)

Persistence: with ``state_file`` set, a JSON snapshot is rewritten atomically after every change and
reloaded at start-up.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import tarfile
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from connectors.simulators.clock import SimClock
from connectors.simulators.common import (
    SnapshotWriter,
    basic_credentials,
    decode_json_state,
    encode_json_state,
    write_json_atomically,
)
from connectors.simulators.faults import FaultConfig, FaultInjector, install_faults
from schemas.seda.transfer import (
    SedaError,
    build_acknowledgement,
    build_transfer_reply,
    parse_archive_transfer,
    validate_seda21,
)

MESSAGE_PATH_RE = re.compile(
    r"^sequence:ArchiveTransfer/message:(?P<message>Acknowledgement|ArchiveTransferReply)/"
    r"originOrganizationIdentification:(?P<org>[^/]+)/originMessageIdentifier:(?P<id>.+)$"
)
MAX_MEMBERS = 10_000
PENDING_TEXT = "Transfert en cours de traitement"


class AsalaeSimSettings(BaseModel):
    login: str = "pastell"
    password: str = "pastell"
    version: str = "V2.1.0"
    archival_agency: str = Field("FRAD000", description="identifier used as Sender of the messages")
    ack_delay: float = Field(0.0, ge=0)
    reply_delay: float = Field(0.0, ge=0, description="seconds before the ArchiveTransferReply exists")
    archive_id_prefix: str = "AE"
    reply_id_prefix: str = "ATR"
    refuse_originating_agencies: list[str] = Field(default_factory=list, description="regexes")
    refuse_transfer_ids: list[str] = Field(default_factory=list, description="regexes")
    refusal_comment: str = "Transfert refusé : le service producteur n'est pas autorisé à verser"
    max_attachment_size: int = Field(2 * 1024**3, gt=0)
    duplicate_transfers: Literal["refuse", "accept"] = "refuse"
    unknown_transfer_status: int = Field(404, ge=400, le=599)
    unknown_transfer_text: str = "message introuvable"
    frozen_at: datetime | None = None
    state_file: Path | None = None
    faults: FaultConfig = Field(default_factory=FaultConfig)


@dataclass
class Transfer:
    number: int
    message_identifier: str
    transferring_agency: str
    originating_agency: str
    archival_agency: str
    received_at: float
    files: int
    attachment_size: int
    reply_code: str
    comment: str | None
    archive_identifier: str | None
    request_identifier: str
    title: str | None = None


@dataclass
class AsalaeState:
    transfers: list[Transfer] = field(default_factory=list)
    archive_counters: dict[str, int] = field(default_factory=dict)  # year -> last n
    duplicates: int = 0
    stats: dict[str, int] = field(default_factory=dict)
    clock_offset: float = 0.0


class TransferRefused(Exception):
    """HTTP 400 on POST /sedaMessages."""


def _read_attachment(data: bytes, filename: str, cap: int) -> dict[str, bytes]:
    """Files of a tar.gz / zip attachment by base name, refusing unsafe members."""
    files: dict[str, bytes] = {}
    try:
        if data[:2] == b"PK":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                infos = [i for i in archive.infolist() if not i.is_dir()]
                if len(infos) > MAX_MEMBERS or sum(i.file_size for i in infos) > cap:
                    raise TransferRefused("pièce jointe trop volumineuse")
                for info in infos:
                    files[info.filename.rsplit("/", 1)[-1]] = archive.read(info)
        else:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
                total = 0
                for count, member in enumerate(archive):
                    if count >= MAX_MEMBERS:
                        raise TransferRefused("pièce jointe : trop de fichiers")
                    if not member.isfile():
                        continue
                    total += member.size
                    if total > cap:
                        raise TransferRefused("pièce jointe trop volumineuse")
                    extracted = archive.extractfile(member)
                    files[member.name.rsplit("/", 1)[-1]] = extracted.read() if extracted else b""
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise TransferRefused(f"pièce jointe illisible ({filename}) : {exc}") from exc
    return files


class AsalaeSimulator:
    def __init__(self, settings: AsalaeSimSettings) -> None:
        self.settings = settings
        self.state = AsalaeState()
        self.faults = FaultInjector(settings.faults)
        self._load()
        self.clock = SimClock(settings.frozen_at, self.state.clock_offset)
        self._snapshots = SnapshotWriter(self._write_snapshot)

    def _load(self) -> None:
        path = self.settings.state_file
        if path is None or not path.exists():
            return
        raw = decode_json_state(json.loads(path.read_text(encoding="utf-8")))
        transfers = [Transfer(**t) for t in raw.pop("transfers")]
        self.state = AsalaeState(transfers=transfers, **raw)

    def save(self) -> None:
        self._snapshots.request()

    def flush(self) -> None:
        """Write the pending snapshot now (on shutdown)."""
        self._snapshots.flush()

    def _write_snapshot(self) -> None:
        if self.settings.state_file is None:
            return
        self.state.clock_offset = self.clock.offset
        write_json_atomically(self.settings.state_file, encode_json_state(asdict(self.state)))

    def count(self, key: str) -> None:
        self.state.stats[key] = self.state.stats.get(key, 0) + 1

    def authenticated(self, request: Request) -> bool:
        credentials = basic_credentials(request)
        if credentials is None:
            return False
        expected = hashlib.sha256(self.settings.password.encode("utf-8")).hexdigest()
        return credentials[0] == self.settings.login and hmac.compare_digest(
            credentials[1].lower().encode(), expected.encode()
        )

    # ------------------------------------------------------------------ receive

    def receive(self, bordereau: bytes, attachment: tuple[str, bytes] | None) -> Transfer:
        try:
            validate_seda21(bordereau)
            info = parse_archive_transfer(bordereau)
        except SedaError as exc:
            raise TransferRefused(f"bordereau SEDA invalide : {exc}") from exc
        message_id = info["message_identifier"] or ""
        transferring = info["transferring_agency"] or ""
        if self.find(transferring, message_id) is not None:
            self.state.duplicates += 1
            self.save()
            if self.settings.duplicate_transfers == "refuse":
                raise TransferRefused("Erreur lors de l'enregistrement du transfert")
        listed = info["files"]
        if listed and attachment is None:
            raise TransferRefused("pièce jointe (attachments) absente")
        content = (
            _read_attachment(attachment[1], attachment[0], self.settings.max_attachment_size)
            if attachment
            else {}
        )
        for bdo in listed:
            name = bdo["filename"]
            if not name or name not in content:
                raise TransferRefused(f"fichier {name!r} absent de la pièce jointe")
            algorithm = (bdo["algorithm"] or "").upper().replace("-", "")
            if algorithm not in ("SHA256", "SHA512"):
                raise TransferRefused(f"algorithme d'empreinte non supporté : {bdo['algorithm']}")
            digest = hashlib.new(algorithm.lower(), content[name]).hexdigest()
            if digest.lower() != (bdo["digest"] or "").lower():
                raise TransferRefused(f"empreinte incorrecte pour le fichier {name}")
            if bdo["size"] and bdo["size"] != len(content[name]):
                raise TransferRefused(f"taille incorrecte pour le fichier {name}")

        now = self.clock.now()
        originating = info["originating_agency"] or transferring
        refused = (
            any(re.search(p, originating) for p in self.settings.refuse_originating_agencies)
            or any(re.search(p, message_id) for p in self.settings.refuse_transfer_ids)
            or self.faults.take_refusal()
        )
        archive_identifier = None
        if not refused:
            year = str(now.year)
            self.state.archive_counters[year] = self.state.archive_counters.get(year, 0) + 1
            archive_identifier = f"{self.settings.archive_id_prefix}_{year}_{self.state.archive_counters[year]}"
        number = len(self.state.transfers) + 1
        transfer = Transfer(
            number=number,
            message_identifier=message_id,
            transferring_agency=transferring,
            originating_agency=originating,
            archival_agency=info["archival_agency"] or self.settings.archival_agency,
            received_at=now.timestamp(),
            files=len(listed),
            attachment_size=len(attachment[1]) if attachment else 0,
            reply_code="101" if refused else "000",
            comment=self.settings.refusal_comment if refused else "Transfert accepté",
            archive_identifier=archive_identifier,
            request_identifier=f"{self.settings.reply_id_prefix}_{number}",
            title=info["title"],
        )
        self.state.transfers.append(transfer)
        self.count("transfers_received")
        self.save()
        return transfer

    def find(self, org: str, message_id: str) -> Transfer | None:
        for transfer in self.state.transfers:
            if transfer.message_identifier == message_id and org in (
                transfer.transferring_agency,
                transfer.originating_agency,
            ):
                return transfer
        return None

    # ------------------------------------------------------------------ messages

    def message(self, kind: str, transfer: Transfer) -> bytes | None:
        """The message if its time has come (built deterministically from the stored transfer)."""
        delay = self.settings.ack_delay if kind == "Acknowledgement" else self.settings.reply_delay
        ready_at = transfer.received_at + delay
        if self.clock.timestamp() < ready_at:
            return None
        when = datetime.fromtimestamp(ready_at).replace(microsecond=0)
        if kind == "Acknowledgement":
            return build_acknowledgement(
                message_identifier=f"ACK_{transfer.number}",
                message_received_identifier=transfer.message_identifier,
                sender=transfer.archival_agency,
                receiver=transfer.transferring_agency,
                date=when,
                comment="Accusé de réception du transfert",
            )
        return build_transfer_reply(
            message_identifier=transfer.message_identifier,
            reply_code=transfer.reply_code,
            comment=transfer.comment,
            archive_unit_identifier=transfer.archive_identifier,
            request_identifier=transfer.request_identifier,
            archival_agency=transfer.archival_agency,
            transferring_agency=transfer.transferring_agency,
            date=when,
        )

    def transfers_view(self) -> dict[str, Any]:
        rows = []
        for t in self.state.transfers:
            row = asdict(t)
            row["received_at"] = datetime.fromtimestamp(t.received_at).isoformat()
            row["reply_available"] = self.clock.timestamp() >= t.received_at + self.settings.reply_delay
            rows.append(row)
        return {"transfers": rows, "duplicates": self.state.duplicates}


def create_app(settings: AsalaeSimSettings) -> FastAPI:
    sim = AsalaeSimulator(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        sim.flush()

    app = FastAPI(title="As@lae simulator (dematbus)", lifespan=lifespan)
    app.state.sim = sim
    install_faults(app, sim.faults)

    def unauthorized() -> Response:
        return JSONResponse(
            {"message": "Authentification requise"},
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="asalae"'},
        )

    @app.get("/ping")
    async def ping(request: Request) -> Response:
        sim.count("ping")
        if not sim.authenticated(request):
            return unauthorized()
        return JSONResponse("webservices as@lae accessibles")

    @app.get("/versions")
    async def versions(request: Request) -> Response:
        sim.count("versions")
        if not sim.authenticated(request):
            return unauthorized()
        return JSONResponse({"application": "as@lae", "denomination": "", "version": settings.version})

    @app.post("/sedaMessages")
    async def post_seda_message(request: Request) -> Response:
        sim.count("post_seda_message")
        if not sim.authenticated(request):
            return unauthorized()
        try:
            form = await request.form()
        except Exception as exc:
            return JSONResponse({"message": f"requête multipart invalide : {exc}"}, status_code=400)
        seda = form.get("seda_message")
        if seda is None:
            return JSONResponse({"message": "seda_message absent"}, status_code=400)
        bordereau = await seda.read() if isinstance(seda, UploadFile) else str(seda).encode("utf-8")
        attachment = None
        upload = form.get("attachments")
        if isinstance(upload, UploadFile):
            attachment = (upload.filename or "attachments", await upload.read())
        try:
            sim.receive(bordereau, attachment)
        except TransferRefused as exc:
            sim.count("post_refused")
            return JSONResponse({"message": str(exc)}, status_code=400)
        return JSONResponse("ok")

    @app.get("/sedaMessages/{message_path:path}")
    async def get_seda_message(request: Request, message_path: str) -> Response:
        sim.count("get_seda_message")
        if not sim.authenticated(request):
            return unauthorized()
        match = MESSAGE_PATH_RE.match(message_path)
        if match is None:
            return JSONResponse({"message": "chemin de message inconnu"}, status_code=404)
        transfer = sim.find(match["org"], match["id"])
        if transfer is None:
            return PlainTextResponse(settings.unknown_transfer_text, status_code=settings.unknown_transfer_status)
        message = sim.message(match["message"], transfer)
        if message is None:
            return PlainTextResponse(PENDING_TEXT, status_code=500)
        if sim.faults.take_malformed():
            return Response(b"<html><body>Erreur interne</body>", media_type="application/xml")
        return Response(message, media_type="application/xml")

    @app.get("/_admin/transfers")
    async def admin_transfers() -> dict[str, Any]:
        return sim.transfers_view()

    @app.get("/_admin/stats")
    async def admin_stats() -> dict[str, Any]:
        accepted = sum(1 for t in sim.state.transfers if t.reply_code == "000")
        return {
            "transfers": len(sim.state.transfers),
            "accepted": accepted,
            "refused": len(sim.state.transfers) - accepted,
            "duplicates": sim.state.duplicates,
            "calls": dict(sorted(sim.state.stats.items())),
            "faults": sim.faults.snapshot(),
            "now": sim.clock.now().isoformat(),
        }

    @app.post("/_admin/clock/advance")
    async def advance_clock(body: dict[str, float]) -> dict[str, Any]:
        now = sim.clock.advance(float(body.get("seconds", 0)))
        sim.save()
        return {"now": now.isoformat()}

    return app
