"""i-Parapheur v5 (REST) simulator: a real HTTP app that operators can rehearse against.

It answers the standard API as Libriciel's generated client describes it
(libriciel/iparapheur-v5-api-php: ``lib/Api/FolderApi.php``, ``docs/Api/FolderApi.md``,
``docs/Model/FolderRepresentation.md``) and as Pastell calls it
(libriciel/pastell ``src/Connector/IparapheurRest/IparapheurRestConnector.php``), and nothing the
real API does not offer. Run it with ``python -m connectors.simulators.iparapheur --port 8085``
(or mount ``create_app(settings)`` in any ASGI server).

Endpoints (``{t}`` tenant id, ``{d}`` desk id, ``{f}`` folder id; ids are deterministic UUIDs
derived from ``settings.seed``: name-based for tenants/desks/types, counter-based for the rest)

* ``POST /auth/realms/api/protocol/openid-connect/token`` - Keycloak password grant (form
  ``grant_type=password``, ``client_id=ipcore-web``, ``username``, ``password``) →
  ``{"access_token", "expires_in", "token_type": "Bearer"}``; bad credentials → 401.
  Every ``/api`` call needs ``Authorization: Bearer <token>`` (401 otherwise).
* Discovery, paged with ``page`` (0-based) and ``size`` (capped at ``max_page_size``); answers
  ``{"content": [...], "totalPages", "totalElements", "pageable": {"pageNumber", ...}, ...}``:
  ``GET /api/standard/v1/tenant``, ``…/tenant/{t}/desk``, ``…/tenant/{t}/types``,
  ``…/tenant/{t}/types/{typeId}/subtypes``. Each tenant has its configured desks plus the
  ``signer_desk`` where the circuit's signature step waits.
* ``POST …/tenant/{t}/desk/{d}/folder?autoStart=<bool>`` - ``autoStart`` is **true when absent**
  (other spellings such as ``auto_start`` are ignored, so they start the folder too); multipart:
  part ``folder`` (PREMIS v3 XML, parsed without DTD/entities/network) + repeated file parts
  ``documents`` (parts under any other name are ignored). The intellectualEntity ``originalName``
  is the folder name (2 to 255 characters), ``i_Parapheur_reserved_type`` / ``_subtype`` (id or
  name) are required, other significantProperties are metadata; every file object needs an
  uploaded part of the same name. → 201 ``FolderRepresentation``; 400 for a bad PREMIS / unknown
  type. **A name already used is no error**: the real API documents 201, 401, 403, 404 and 406
  only, so a second folder of the same name is created (counted in the admin ``duplicates``).
* ``PUT …/desk/{d}/folder/{f}/task/{taskId}/start`` - body ``SimpleTaskParams`` (optional).
* ``GET …/desk/{d}/folder/{f}/premis`` - PREMIS with objects, events and agents.
* ``GET …/desk/{d}/{state}`` with ``state`` one of ``DRAFT``, ``PENDING``, ``LATE``,
  ``DELEGATED``, ``FINISHED``, ``REJECTED``, ``RETRIEVABLE`` (as spelt), filtered by ``typeId``,
  ``subtypeId`` only, paged (``page``, ``size``), ``sort`` = ``<FolderSortBy>,<asc|desc>``
  (repeatable); items ``{"id", "name", "dueDate", "metadata"}``. A folder is listed **on the
  desk where it waits**: DRAFT, FINISHED and REJECTED on the desk that created it, RETRIEVABLE
  there too while its first step waits (UNDO possible), PENDING / LATE on the signer's desk - so a
  started folder leaves its creator's lists until it comes back. DELEGATED lists nothing (no
  delegation is simulated).
* ``GET …/desk/{d}/folder/{f}/zip`` - ``i_Parapheur_internal_premis.xml``,
  ``Documents principaux/<file>`` (once the folder is FINISHED, PDF main documents carry a real
  PAdES signature made with the simulator's own test certificate, and the PES of a ``HELIOS``
  folder a real XAdES enveloped signature, DGFiP profile, per Bordereau or on the root; other
  files, or a PES already signed / without Id, are returned as uploaded), ``Annexes/<file>``,
  ``<folder name>_bordereau.pdf``.
* ``DELETE …/desk/{d}/folder/{f}`` - only DRAFT, REJECTED and FINISHED folders (400 otherwise).

Folder calls (start, premis, zip, delete) answer for the desk that created the folder and for the
desk where it waits, as Pastell reads everything through its own configured desk.

Workflow and the "current step" rule. Every event is a task (``eventIdentifierType`` = ``taskId``);
a pending task has an empty ``eventDateTime``. The current step is the LAST event, and, as in
Pastell, a folder is finished when it is ``ARCHIVE`` and rejected when it is ``DELETE``:

* created: ``CREATE`` (done), ``START`` (pending) → DRAFT
* started: ``START`` done, ``SIGNATURE`` pending → PENDING (LATE too once a dueDate has passed)
* ``sign_delay`` seconds after the start (computed lazily on each read): either ``SIGNATURE`` done
  then ``ARCHIVE`` pending → FINISHED, or ``REJECT`` done with ``eventOutcomeDetailNote`` = the
  refusal reason then ``DELETE`` pending → REJECTED; a "never" folder stays PENDING forever.

Outcome per folder, decided at creation: admin counters first (``reject_next``, ``never_next``),
then ``never_pattern``, then ``reject_pattern`` (regex searched in the folder name and metadata
values; default ``REJET``), else signed.

Admin (no auth, not subject to faults)

* ``GET /_admin/folders`` → ``{"folders": [...], "duplicates": n, "creating": n}`` (deleted
  folders included; ``duplicates`` counts creations under a name already used on the desk,
  ``creating`` the creations under way).
* ``GET|POST /_admin/faults`` - POST merges the given fields of :class:`Faults`:
  ``fail_next`` (HTTP 500 before doing anything), ``fail_after_next`` (do the work, then answer
  500: a lost answer), ``unauthorized_next`` (401), ``timeout_next`` (hold the request
  ``hang_seconds`` then 504, nothing done), ``delay`` (latency added before every call),
  ``create_delay`` (a folder creation takes that long once its request is read, and completes
  even if its client went away: the window a crashed client leaves open), ``reject_next``,
  ``never_next``, ``match`` (HTTP faults only hit requests whose ``"METHOD /path"`` contains it).
* ``POST /_admin/advance`` ``{"seconds": s}`` - move the virtual clock forward.
* ``POST /_admin/reset`` - drop folders, tokens, faults and counters.
* ``GET /_admin/certificate`` - the simulator's signing certificate (PEM).

Persistence: with ``state_file`` set, folders, counters and the clock offset are written
atomically (temp file + rename) on every change and reloaded at start-up; tokens and faults are
not persisted (clients simply re-authenticate).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import io
import json
import os
import re
import tempfile
import time
import uuid
import zipfile
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from lxml import etree
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from connectors.signature.certificates import make_test_certificate
from connectors.signature.pades import sign_pdf
from connectors.signature.pdf import is_pdf, make_pdf
from connectors.signature.xades import XadesError, sign_pes

PREMIS_NS = "http://www.loc.gov/premis/v3"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
PREMIS_XSD = "http://www.loc.gov/standards/premis/v3/premis.xsd"
API = "/api/standard/v1"
STATES = ("DRAFT", "PENDING", "LATE", "DELEGATED", "FINISHED", "REJECTED", "RETRIEVABLE")
DELETABLE = ("DRAFT", "REJECTED", "FINISHED")
RESERVED_TYPE = "i_Parapheur_reserved_type"
RESERVED_SUBTYPE = "i_Parapheur_reserved_subtype"
RESERVED_DUE_DATE = "i_Parapheur_reserved_dueDate"
RESERVED_MAIN = "i_Parapheur_reserved_mainDocument"


# ---------------------------------------------------------------------------------------------
# Settings and admin models


class TenantSettings(BaseModel):
    name: str = "Collectivités"
    desks: list[str] = Field(default_factory=lambda: ["Secrétariat général"])
    # The desk of the circuit's signature step: a started folder waits there (added to the desks
    # when missing), not on the desk that created it.
    signer_desk: str = "Signature"
    types: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "ACTES": ["Délibération", "Arrêté", "Contrat"],
            "HELIOS": ["PES"],
            "RH": ["Arrêté individuel", "Contrat de travail"],
        }
    )


class IparapheurSimSettings(BaseModel):
    username: str = "pastell"
    password: str = "pastell"
    client_id: str = "ipcore-web"
    token_ttl: int = 300
    tenants: list[TenantSettings] = Field(default_factory=lambda: [TenantSettings()])
    page_size: int = 20  # default page size when the client sends none
    max_page_size: int = 100  # larger ``size`` requests are capped, as Spring servers do
    sign_delay: float = 0.0  # seconds between START and the signature/rejection
    reject_pattern: str | None = "REJET"
    never_pattern: str | None = None
    reject_reason: str = "Refusé par le signataire (simulateur i-Parapheur)"
    signer_common_name: str = "Signataire Simulateur i-Parapheur"
    signer_organisation: str = "dematbus - simulateur i-Parapheur"
    hang_seconds: float = 120.0  # how long a ``timeout_next`` request is held
    # "Signature à la volée": subtypes whose circuit ends with an external signer (the agent),
    # reached by e-mail and one-time code on the mobile given as folder metadata.
    external_subtypes: list[str] = Field(default_factory=lambda: ["Contrat de travail"])
    external_email_key: str = "agent_email"
    external_phone_key: str = "agent_mobile"
    external_refuse_pattern: str | None = "REFUS_AGENT"
    external_refusal_reason: str = "Refusé par le signataire externe (simulateur i-Parapheur)"
    external_signer_label: str = "Signataire externe"
    seed: int = 0
    data_dir: Path | None = None  # signing certificate; a temporary directory when None
    state_file: Path | None = None


class Faults(BaseModel):
    fail_next: int = 0
    fail_after_next: int = 0
    unauthorized_next: int = 0
    timeout_next: int = 0
    delay: float = 0.0
    reject_next: int = 0
    never_next: int = 0
    external_refuse_next: int = 0  # the next N external signers refuse to sign
    # A folder creation takes that long once its request is read (document conversion on a busy
    # server), and completes even when the client has gone away meanwhile.
    create_delay: float = 0.0
    match: str | None = None


class AdvanceIn(BaseModel):
    seconds: float


class TaskParams(BaseModel):
    publicAnnotation: str | None = None
    privateAnnotation: str | None = None
    metadata: dict[str, Any] | None = None


# ---------------------------------------------------------------------------------------------
# Domain


@dataclass
class Named:
    id: str
    name: str


@dataclass
class SimType(Named):
    subtypes: list[Named] = field(default_factory=list)


@dataclass
class SimTenant(Named):
    desks: list[Named] = field(default_factory=list)
    types: list[SimType] = field(default_factory=list)
    signer_desk_id: str = ""


@dataclass
class SimDocument:
    id: str
    name: str
    main: bool
    media_type: str
    data: bytes


@dataclass
class SimEvent:
    task_id: str
    type: str
    date: float | None  # None while the task is pending
    agent: str | None = None
    note: str = ""


Outcome = Literal["sign", "reject", "never"]


@dataclass
class SimFolder:
    id: str
    tenant_id: str
    desk_id: str
    name: str
    type_id: str
    subtype_id: str
    properties: list[tuple[str, str]]  # metadata (non-reserved significantProperties)
    due_date: str | None
    documents: list[SimDocument]
    events: list[SimEvent]
    created_at: float
    outcome: Outcome
    deleted: bool = False
    # External signer: {"email", "phone" (masked), "outcome", "log": [steps the agent went through]}
    external: dict[str, Any] | None = None
    signed: dict[str, bytes] = field(default_factory=dict, repr=False)  # cache, not persisted


@dataclass
class ParsedPremis:
    name: str
    type_ref: str
    subtype_ref: str
    due_date: str | None
    properties: list[tuple[str, str]]
    files: list[tuple[str, bool]]  # (originalName, is main document)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------------------------------------
# PREMIS


def safe_xml(data: bytes) -> etree._Element:
    """Parse untrusted XML: no DTD, no entity expansion, no network; a DOCTYPE is refused."""
    if b"<!DOCTYPE" in data[:4096]:
        raise ValueError("DOCTYPE is not allowed")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
    )
    root = etree.fromstring(data, parser)
    if root.getroottree().docinfo.doctype:
        raise ValueError("DOCTYPE is not allowed")
    return root


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child(el: etree._Element, name: str) -> etree._Element | None:
    return next((c for c in el if _local(c.tag) == name), None)


def _text(el: etree._Element | None, name: str) -> str:
    found = _child(el, name) if el is not None else None
    return (found.text or "").strip() if found is not None else ""


def _xsi_type(el: etree._Element) -> str:
    value = el.get(f"{{{XSI_NS}}}type") or ""
    return value.split(":")[-1]


def significant_properties(obj: etree._Element) -> list[tuple[str, str]]:
    return [
        (_text(p, "significantPropertiesType"), _text(p, "significantPropertiesValue"))
        for p in obj
        if _local(p.tag) == "significantProperties"
    ]


def parse_folder_premis(data: bytes) -> ParsedPremis:
    try:
        root = safe_xml(data)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise ApiError(400, f"invalid PREMIS: {exc}") from exc
    if _local(root.tag) != "premis" or etree.QName(root).namespace != PREMIS_NS:
        raise ApiError(400, "the folder part must be a PREMIS v3 document")
    objects = [o for o in root if _local(o.tag) == "object"]
    entities = [o for o in objects if _xsi_type(o) == "intellectualEntity"]
    if len(entities) != 1:
        raise ApiError(400, "exactly one intellectualEntity object is required")
    entity = entities[0]
    name = _text(entity, "originalName")
    if not name:
        raise ApiError(400, "the intellectualEntity originalName (folder name) is required")
    if not 2 <= len(name) <= 255:  # FolderRepresentation.name: 2 to 255 characters
        raise ApiError(400, "the folder name must be 2 to 255 characters long")
    props = significant_properties(entity)
    reserved = {k: v for k, v in props if k.startswith("i_Parapheur_reserved_")}
    if not reserved.get(RESERVED_TYPE) or not reserved.get(RESERVED_SUBTYPE):
        raise ApiError(400, f"{RESERVED_TYPE} and {RESERVED_SUBTYPE} are required")
    files = []
    for obj in objects:
        if _xsi_type(obj) != "file":
            continue
        file_name = _text(obj, "originalName")
        if not file_name:
            raise ApiError(400, "every file object needs an originalName")
        main = dict(significant_properties(obj)).get(RESERVED_MAIN, "false").lower() == "true"
        files.append((file_name, main))
    if not any(main for _, main in files):
        raise ApiError(400, "at least one main document is required")
    return ParsedPremis(
        name=name,
        type_ref=reserved[RESERVED_TYPE],
        subtype_ref=reserved[RESERVED_SUBTYPE],
        due_date=reserved.get(RESERVED_DUE_DATE) or None,
        properties=[(k, v) for k, v in props if not k.startswith("i_Parapheur_reserved_")],
        files=files,
    )


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{PREMIS_NS}}}{name}")
    if text is not None:
        el.text = text
    return el


def _identifier(parent: etree._Element, prefix: str, id_type: str, value: str) -> None:
    ident = _sub(parent, f"{prefix}Identifier")
    _sub(ident, f"{prefix}IdentifierType", id_type)
    _sub(ident, f"{prefix}IdentifierValue", value)


def _property(parent: etree._Element, key: str, value: str) -> None:
    prop = _sub(parent, "significantProperties")
    _sub(prop, "significantPropertiesType", key)
    _sub(prop, "significantPropertiesValue", value)


# ---------------------------------------------------------------------------------------------
# The simulator state


class Simulator:
    def __init__(self, settings: IparapheurSimSettings) -> None:
        self.settings = settings
        self._ns = uuid.uuid5(uuid.NAMESPACE_URL, f"dematbus:iparapheur-sim:{settings.seed}")
        self.tenants = [self._build_tenant(t) for t in settings.tenants]
        self.folders: dict[str, SimFolder] = {}
        self.counter = 0
        self.duplicates = 0
        self.creating = 0  # creations under way (admin view)
        self.clock_offset = 0.0
        self.faults = Faults()
        self.tokens: dict[str, float] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        data_dir = settings.data_dir
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="iparapheur-sim-")
            data_dir = Path(self._tmp.name)
        self.cert_path, self.key_path = self._certificate(Path(data_dir))
        if settings.state_file and Path(settings.state_file).exists():
            self._load(Path(settings.state_file))

    # ids, clock, certificate

    def _uuid(self, key: str) -> str:
        return str(uuid.uuid5(self._ns, key))

    def new_id(self, kind: str) -> str:
        self.counter += 1
        return self._uuid(f"{kind}:{self.counter}")

    def now(self) -> float:
        return time.time() + self.clock_offset

    def _build_tenant(self, conf: TenantSettings) -> SimTenant:
        tid = self._uuid(f"tenant:{conf.name}")
        desks = conf.desks + ([] if conf.signer_desk in conf.desks else [conf.signer_desk])
        return SimTenant(
            id=tid,
            name=conf.name,
            desks=[Named(self._uuid(f"desk:{tid}:{d}"), d) for d in desks],
            signer_desk_id=self._uuid(f"desk:{tid}:{conf.signer_desk}"),
            types=[
                SimType(
                    id=self._uuid(f"type:{tid}:{t}"),
                    name=t,
                    subtypes=[Named(self._uuid(f"subtype:{tid}:{t}:{s}"), s) for s in subs],
                )
                for t, subs in conf.types.items()
            ],
        )

    def _certificate(self, data_dir: Path) -> tuple[Path, Path]:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.settings.signer_common_name).strip("-").lower()
        cert, key = data_dir / f"{slug}.crt.pem", data_dir / f"{slug}.key.pem"
        if cert.exists() and key.exists():
            return cert, key
        return make_test_certificate(
            self.settings.signer_common_name, self.settings.signer_organisation, data_dir
        )

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # auth

    def issue_token(self) -> str:
        token = self.new_id("token")
        self.tokens[token] = self.now() + self.settings.token_ttl
        return token

    def token_valid(self, token: str) -> bool:
        expiry = self.tokens.get(token)
        return expiry is not None and expiry > self.now()

    # lookups

    def tenant(self, tenant_id: str) -> SimTenant:
        for tenant in self.tenants:
            if tenant.id == tenant_id:
                return tenant
        raise ApiError(404, f"tenant {tenant_id} not found")

    def desk(self, tenant_id: str, desk_id: str) -> tuple[SimTenant, Named]:
        tenant = self.tenant(tenant_id)
        for desk in tenant.desks:
            if desk.id == desk_id:
                return tenant, desk
        raise ApiError(404, f"desk {desk_id} not found")

    def type_(self, tenant: SimTenant, ref: str) -> SimType:
        for typ in tenant.types:
            if ref in (typ.id, typ.name):
                return typ
        raise ApiError(400, f"unknown type {ref!r}")

    def folder(self, tenant_id: str, desk_id: str, folder_id: str) -> SimFolder:
        """A folder as seen from a desk: the one that created it, or the one where it waits."""
        self.desk(tenant_id, desk_id)
        folder = self.folders.get(folder_id)
        if folder is None or folder.deleted or folder.tenant_id != tenant_id:
            raise ApiError(404, f"folder {folder_id} not found")
        self.advance(folder)
        if desk_id not in (folder.desk_id, self.waiting_desk(folder)):
            raise ApiError(404, f"folder {folder_id} not found")
        return folder

    # workflow

    def _outcome(self, parsed: ParsedPremis) -> Outcome:
        faults, settings = self.faults, self.settings
        if faults.reject_next > 0:
            faults.reject_next -= 1
            return "reject"
        if faults.never_next > 0:
            faults.never_next -= 1
            return "never"
        haystack = [parsed.name] + [v for _, v in parsed.properties]
        if settings.never_pattern and any(re.search(settings.never_pattern, t) for t in haystack):
            return "never"
        if settings.reject_pattern and any(re.search(settings.reject_pattern, t) for t in haystack):
            return "reject"
        return "sign"

    def _external(self, subtype: str, parsed: ParsedPremis) -> dict[str, Any] | None:
        settings = self.settings
        if subtype not in settings.external_subtypes:
            return None
        props = dict(parsed.properties)
        email, phone = props.get(settings.external_email_key), props.get(settings.external_phone_key)
        if not email or not phone:
            raise ApiError(400, f"an external signature needs the metadata {settings.external_email_key} "
                                f"and {settings.external_phone_key}")
        refuse = self.faults.external_refuse_next > 0
        if refuse:
            self.faults.external_refuse_next -= 1
        elif settings.external_refuse_pattern:
            haystack = [parsed.name] + [v for _, v in parsed.properties]
            refuse = any(re.search(settings.external_refuse_pattern, t) for t in haystack)
        masked_mail = email[:1] + "***@" + email.rpartition("@")[2]
        masked_phone = "*" * max(len(phone) - 2, 0) + phone[-2:]
        return {"email": masked_mail, "phone": masked_phone, "outcome": "refuse" if refuse else "sign", "log": []}

    def _external_step(self, folder: SimFolder, current: SimEvent, due: float) -> None:
        """The simulator plays the agent: opens the link, consents, gets the one-time code by SMS,
        types it back, then signs (or refuses)."""
        ext = folder.external or {}
        code = str(int(self._uuid(f"otp:{folder.id}").replace("-", "")[:8], 16) % 1_000_000).zfill(6)
        ext["log"] = [
            {"step": "invitation", "to": ext.get("email")},
            {"step": "consent", "accepted": ext.get("outcome") == "sign"},
        ]
        current.date, current.agent = due, self.settings.external_signer_label
        if ext.get("outcome") == "refuse":
            current.type, current.note = "REJECT", self.settings.external_refusal_reason
            folder.events.append(SimEvent(self.new_id("task"), "DELETE", None))
            return
        ext["log"] += [{"step": "otp_sent", "channel": "sms", "to": ext.get("phone")},
                       {"step": "otp_verified", "code_length": len(code)},
                       {"step": "signature"}]
        folder.events.append(SimEvent(self.new_id("task"), "ARCHIVE", None))

    def create_folder(
        self,
        tenant_id: str,
        desk_id: str,
        parsed: ParsedPremis,
        uploads: dict[str, tuple[bytes, str]],
        auto_start: bool,
    ) -> SimFolder:
        tenant, desk = self.desk(tenant_id, desk_id)
        typ = self.type_(tenant, parsed.type_ref)
        subtype = next((s for s in typ.subtypes if parsed.subtype_ref in (s.id, s.name)), None)
        if subtype is None:
            raise ApiError(400, f"unknown subtype {parsed.subtype_ref!r} for type {typ.name}")
        declared = [name for name, _ in parsed.files]
        if len(set(declared)) != len(declared):
            raise ApiError(400, "file names must be unique within a folder")
        if set(declared) != set(uploads):
            raise ApiError(
                400,
                f"uploaded documents {sorted(uploads)} do not match "
                f"the PREMIS files {sorted(declared)}",
            )
        # No refusal of a name already used: the real API documents none (no 409), so a second
        # folder is created. The admin view counts them.
        if any(f.name == parsed.name and f.desk_id == desk.id for f in self.folders.values()):
            self.duplicates += 1
        now = self.now()
        external = self._external(subtype.name, parsed)
        folder = SimFolder(
            id=self.new_id("folder"),
            tenant_id=tenant.id,
            desk_id=desk.id,
            name=parsed.name,
            type_id=typ.id,
            subtype_id=subtype.id,
            properties=parsed.properties,
            due_date=parsed.due_date,
            documents=[
                SimDocument(self.new_id("document"), name, main, uploads[name][1], uploads[name][0])
                for name, main in parsed.files
            ],
            events=[],
            created_at=now,
            outcome=self._outcome(parsed),
            external=external,
        )
        folder.events = [
            SimEvent(self.new_id("task"), "CREATE", now, self.settings.username),
            SimEvent(self.new_id("task"), "START", None),
        ]
        self.folders[folder.id] = folder
        if auto_start:
            self.start(folder, folder.events[1].task_id, TaskParams())
        self.save()
        return folder

    def start(self, folder: SimFolder, task_id: str, params: TaskParams) -> None:
        task = next((e for e in folder.events if e.task_id == task_id), None)
        if task is None:
            raise ApiError(404, f"task {task_id} not found")
        if task.type != "START" or task.date is not None:
            raise ApiError(409, f"task {task_id} is not a pending START task")
        task.date = self.now()
        task.agent = self.settings.username
        task.note = params.publicAnnotation or ""
        folder.events.append(SimEvent(self.new_id("task"), "SIGNATURE", None))
        self.save()

    def advance(self, folder: SimFolder) -> None:
        """Lazily apply the outcome once ``sign_delay`` has elapsed since the start."""
        start = next((e for e in folder.events if e.type == "START"), None)
        current = folder.events[-1]
        if start is None or start.date is None or current.date is not None:
            return
        if current.type == "EXTERNAL_SIGNATURE":
            employer = next(e for e in folder.events if e.type == "SIGNATURE")
            due = (employer.date or 0) + self.settings.sign_delay
            if self.now() >= due:
                self._external_step(folder, current, due)
                self.save()
            return
        if current.type != "SIGNATURE" or folder.outcome == "never":
            return
        due = start.date + self.settings.sign_delay
        if self.now() < due:
            return
        current.date, current.agent = due, self.settings.signer_common_name
        if folder.outcome == "reject":
            current.type, current.note = "REJECT", self.settings.reject_reason
            folder.events.append(SimEvent(self.new_id("task"), "DELETE", None))
        elif folder.external is not None:
            external = SimEvent(self.new_id("task"), "EXTERNAL_SIGNATURE", None)
            folder.events.append(external)
            if self.now() >= due + self.settings.sign_delay:
                self._external_step(folder, external, due + self.settings.sign_delay)
        else:
            folder.events.append(SimEvent(self.new_id("task"), "ARCHIVE", None))
        self.save()

    def state(self, folder: SimFolder) -> str:
        current = folder.events[-1]
        if current.type == "ARCHIVE":
            return "FINISHED"
        if current.type == "DELETE":
            return "REJECTED"
        if current.type == "START":
            return "DRAFT"
        return "PENDING"

    def waiting_desk(self, folder: SimFolder) -> str:
        """Where the folder waits: a started one on the signer's desk, a draft, finished or
        rejected one back on the desk that created it (where the ARCHIVE / DELETE task is)."""
        if self.state(folder) == "PENDING":
            return self.tenant(folder.tenant_id).signer_desk_id
        return folder.desk_id

    def listed_in(self, folder: SimFolder, desk_id: str, state: str) -> bool:
        """Whether ``GET …/desk/{desk_id}/{state}`` lists the folder."""
        if folder.deleted:
            return False
        current = self.state(folder)
        if state in ("PENDING", "LATE"):
            on_desk = current == "PENDING" and self.waiting_desk(folder) == desk_id
            return on_desk and (state == "PENDING" or self.is_late(folder))
        if folder.desk_id != desk_id:
            return False  # DRAFT, FINISHED, REJECTED and RETRIEVABLE are the creating desk's
        if state == "RETRIEVABLE":  # UNDO is possible while the first step after START waits
            first_step = next(i for i, e in enumerate(folder.events) if e.type == "START") + 1
            return current == "PENDING" and len(folder.events) == first_step + 1
        return current == state  # DELEGATED: no delegation is simulated, never listed

    def is_late(self, folder: SimFolder) -> bool:
        if not folder.due_date or self.state(folder) != "PENDING":
            return False
        try:
            due = dt.date.fromisoformat(folder.due_date[:10])
        except ValueError:
            return False
        return due < dt.datetime.fromtimestamp(self.now(), dt.UTC).date()

    def delete(self, folder: SimFolder) -> None:
        if self.state(folder) not in DELETABLE:
            raise ApiError(400, f"only {', '.join(DELETABLE)} folders can be deleted")
        folder.deleted = True
        folder.signed.clear()
        self.save()

    # renderings

    def folder_representation(self, folder: SimFolder) -> dict[str, Any]:
        """A listing item: ``FolderRepresentation`` has ``id``, ``name``, ``dueDate``, ``metadata``."""
        return {
            "id": folder.id,
            "name": folder.name,
            "dueDate": folder.due_date,
            "metadata": dict(folder.properties),
        }

    def folder_json(self, folder: SimFolder) -> dict[str, Any]:
        """The admin view of a folder (more than the API shows)."""
        tenant = self.tenant(folder.tenant_id)
        typ = self.type_(tenant, folder.type_id)
        subtype = next(s for s in typ.subtypes if s.id == folder.subtype_id)
        return {
            **self.folder_representation(folder),
            "state": "DELETED" if folder.deleted else self.state(folder),
            "type": {"id": typ.id, "name": typ.name},
            "subtype": {"id": subtype.id, "name": subtype.name},
            "creationDate": iso(folder.created_at),
            "waiting_desk_id": None if folder.deleted else self.waiting_desk(folder),
        }

    def premis(self, folder: SimFolder) -> bytes:
        root = etree.Element(f"{{{PREMIS_NS}}}premis", nsmap={None: PREMIS_NS, "xsi": XSI_NS})
        root.set("version", "3.0")
        root.set(f"{{{XSI_NS}}}schemaLocation", f"{PREMIS_NS} {PREMIS_XSD}")
        tenant = self.tenant(folder.tenant_id)
        typ = self.type_(tenant, folder.type_id)
        entity = _sub(root, "object")
        entity.set(f"{{{XSI_NS}}}type", "intellectualEntity")
        _identifier(entity, "object", "folderId", folder.id)
        _property(entity, RESERVED_TYPE, typ.id)
        _property(entity, RESERVED_SUBTYPE, folder.subtype_id)
        if folder.due_date:
            _property(entity, RESERVED_DUE_DATE, folder.due_date)
        for key, value in folder.properties:
            _property(entity, key, value)
        _sub(entity, "originalName", folder.name)
        for doc in folder.documents:
            obj = _sub(root, "object")
            obj.set(f"{{{XSI_NS}}}type", "file")
            _identifier(obj, "object", "documentId", doc.id)
            _property(obj, RESERVED_MAIN, "true" if doc.main else "false")
            chars = _sub(obj, "objectCharacteristics")
            _sub(chars, "compositionLevel", "0")
            fmt = _sub(_sub(chars, "format"), "formatDesignation")
            _sub(fmt, "formatName", doc.media_type)
            _sub(obj, "originalName", doc.name)
        agents: dict[str, str] = {}
        for event in folder.events:
            ev = _sub(root, "event")
            _identifier(ev, "event", "taskId", event.task_id)
            _sub(ev, "eventType", event.type)
            _sub(ev, "eventDateTime", iso(event.date) if event.date is not None else "")
            if event.note:
                info = _sub(ev, "eventOutcomeInformation")
                _sub(info, "eventOutcome", event.type)
                _sub(_sub(info, "eventOutcomeDetail"), "eventOutcomeDetailNote", event.note)
            if event.agent:
                agent_id = agents.setdefault(event.agent, self._uuid(f"user:{event.agent}"))
                link = _sub(ev, "linkingAgentIdentifier")
                _sub(link, "linkingAgentIdentifierType", "userId")
                _sub(link, "linkingAgentIdentifierValue", agent_id)
        for name, agent_id in agents.items():
            agent = _sub(root, "agent")
            _identifier(agent, "agent", "userId", agent_id)
            _sub(agent, "agentName", name)
            _sub(agent, "agentType", "person")
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    def bordereau(self, folder: SimFolder) -> bytes:
        lines = [
            f"Dossier : {folder.name}",
            f"Identifiant : {folder.id}",
            f"État : {self.state(folder)}",
            "",
        ]
        for event in folder.events:
            when = iso(event.date) if event.date is not None else "en attente"
            lines.append(f"{event.type:<10} {when}  {event.agent or ''}  {event.note}".rstrip())
        return make_pdf(f"Bordereau de signature - {folder.name}", lines)

    def signed_main(self, folder: SimFolder, doc: SimDocument) -> bytes:
        """The main document as the ZIP gives it once the folder is FINISHED: a PDF PAdES-signed,
        a PES of a HELIOS folder XAdES-signed (per Bordereau, or on the root:
        ``connectors/signature/xades.py``)."""
        if self.state(folder) != "FINISHED":
            return doc.data
        if doc.id not in folder.signed:
            signature = next((e for e in folder.events if e.type == "SIGNATURE"), None)
            task_id = signature.task_id if signature else folder.id
            if is_pdf(doc.data):
                signed = sign_pdf(
                    doc.data,
                    cert_path=self.cert_path,
                    key_path=self.key_path,
                    reason=f"Signature i-Parapheur ({task_id})",
                    signer_name=self.settings.signer_common_name,
                )
                if folder.external is not None:  # the agent's signature, after the one-time code
                    signed = sign_pdf(signed, cert_path=self.cert_path, key_path=self.key_path,
                                      reason="Signature à la volée (code à usage unique vérifié)",
                                      signer_name=self.settings.external_signer_label)
                folder.signed[doc.id] = signed
            elif self._is_helios(folder):
                when = signature.date if signature and signature.date is not None else self.now()
                try:
                    folder.signed[doc.id] = sign_pes(
                        doc.data,
                        cert_path=self.cert_path,
                        key_path=self.key_path,
                        signing_time=dt.datetime.fromtimestamp(when, dt.UTC),
                    )
                except XadesError:  # not a PES, already signed, nothing to sign: as uploaded
                    folder.signed[doc.id] = doc.data
            else:
                return doc.data
        return folder.signed[doc.id]

    def _is_helios(self, folder: SimFolder) -> bool:
        try:
            return self.type_(self.tenant(folder.tenant_id), folder.type_id).name == "HELIOS"
        except ApiError:
            return False

    def zip(self, folder: SimFolder) -> bytes:
        stamp = dt.datetime.fromtimestamp(max(folder.created_at, 315532800), dt.UTC)
        date_time = stamp.timetuple()[:6]
        out = io.BytesIO()
        safe_name = re.sub(r"[\\/]", "_", folder.name)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:

            def add(name: str, data: bytes) -> None:
                archive.writestr(zipfile.ZipInfo(name, date_time), data, zipfile.ZIP_DEFLATED)

            add("i_Parapheur_internal_premis.xml", self.premis(folder))
            for doc in folder.documents:
                if doc.main:
                    add(f"Documents principaux/{doc.name}", self.signed_main(folder, doc))
                else:
                    add(f"Annexes/{doc.name}", doc.data)
            add(f"{safe_name}_bordereau.pdf", self.bordereau(folder))
        return out.getvalue()

    # persistence

    def save(self) -> None:
        path = self.settings.state_file
        if path is None:
            return
        path = Path(path)
        folders = []
        for folder in self.folders.values():
            data = asdict(folder)
            data.pop("signed")
            for doc in data["documents"]:
                doc["data"] = base64.b64encode(doc["data"]).decode("ascii")
            folders.append(data)
        payload = {
            "version": 1,
            "counter": self.counter,
            "duplicates": self.duplicates,
            "clock_offset": self.clock_offset,
            "folders": folders,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)

    def _load(self, path: Path) -> None:
        payload = json.loads(path.read_text(encoding="utf-8"))
        self.counter = payload["counter"]
        self.duplicates = payload["duplicates"]
        self.clock_offset = payload.get("clock_offset", 0.0)
        for data in payload["folders"]:
            data["documents"] = [
                SimDocument(**{**d, "data": base64.b64decode(d["data"])}) for d in data["documents"]
            ]
            data["events"] = [SimEvent(**e) for e in data["events"]]
            data["properties"] = [tuple(p) for p in data["properties"]]
            folder = SimFolder(**data)
            self.folders[folder.id] = folder

    def reset(self) -> None:
        self.folders.clear()
        self.tokens.clear()
        self.faults = Faults()
        self.counter = self.duplicates = 0
        self.clock_offset = 0.0
        self.save()


# ---------------------------------------------------------------------------------------------
# HTTP


def _error(status: int, message: str, path: str) -> JSONResponse:
    reasons = {
        400: "Bad Request",
        401: "Unauthorized",
        404: "Not Found",
        409: "Conflict",
        500: "Internal Server Error",
        504: "Gateway Timeout",
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "status": status,
        "error": reasons.get(status, ""),
        "message": message,
        "path": path,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _still_since(sim: Simulator, folder: SimFolder) -> float:
    return max((e.date for e in folder.events if e.date is not None), default=folder.created_at)


def _start_date(sim: Simulator, folder: SimFolder) -> float:
    return next((e.date for e in folder.events if e.type == "START" and e.date), 0.0)


# FolderSortBy (libriciel/iparapheur-v5-api-php lib/Model/FolderSortBy.php), sorted as strings or
# timestamps so that every key compares.
SORT_KEYS: dict[str, Any] = {
    "VALIDATION_START_DATE": _start_date,
    "CREATION_DATE": lambda sim, f: f.created_at,
    "STILL_SINCE_DATE": _still_since,
    "LATE_DATE": lambda sim, f: f.due_date or "",
    "END_DATE": _still_since,
    "TASK_ID": lambda sim, f: f.events[-1].task_id,
    "FOLDER_ID": lambda sim, f: f.id,
    "FOLDER_NAME": lambda sim, f: f.name,
    "TYPE_ID": lambda sim, f: f.type_id,
    "TYPE_NAME": lambda sim, f: sim.type_(sim.tenant(f.tenant_id), f.type_id).name,
    "SUBTYPE_ID": lambda sim, f: f.subtype_id,
    "SUBTYPE_NAME": lambda sim, f: sim.folder_json(f)["subtype"]["name"],
    "ACTION_TYPE": lambda sim, f: f.events[-1].type,
}


def _page(items: list[Any], page: int, size: int) -> dict[str, Any]:
    size = max(1, size)
    page = max(0, page)
    total_pages = max(1, -(-len(items) // size))
    chunk = items[page * size : (page + 1) * size]
    return {
        "content": chunk,
        "pageable": {"pageNumber": page, "pageSize": size, "offset": page * size},
        "totalPages": total_pages,
        "totalElements": len(items),
        "number": page,
        "size": size,
        "numberOfElements": len(chunk),
        "first": page == 0,
        "last": page >= total_pages - 1,
        "empty": not chunk,
    }


def create_app(settings: IparapheurSimSettings) -> FastAPI:
    sim = Simulator(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        try:
            yield
        finally:
            sim.close()

    app = FastAPI(title="i-Parapheur v5 simulator (dematbus)", lifespan=lifespan)
    app.state.sim = sim

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, request.url.path)

    @app.middleware("http")
    async def faults_and_auth(request: Request, call_next):  # type: ignore[no-untyped-def]
        # Relative to the mount point, so that the app also works mounted under a prefix (hub).
        path = request.url.path
        root_path = request.scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        if path.startswith("/_admin"):
            return await call_next(request)
        faults = sim.faults
        hit = faults.match is None or faults.match in f"{request.method} {path}"
        if hit and faults.delay > 0:
            await asyncio.sleep(faults.delay)
        if hit and faults.timeout_next > 0:
            faults.timeout_next -= 1
            await asyncio.sleep(settings.hang_seconds)
            return _error(504, "injected timeout", path)
        if hit and faults.fail_next > 0:
            faults.fail_next -= 1
            return _error(500, "injected failure", path)
        if hit and faults.unauthorized_next > 0:
            faults.unauthorized_next -= 1
            return _error(401, "injected unauthorized", path)
        if path.startswith("/api/"):
            auth = request.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not sim.token_valid(token.strip()):
                return _error(401, "a valid Bearer token is required", path)
        response = await call_next(request)
        if hit and faults.fail_after_next > 0 and response.status_code < 400:
            faults.fail_after_next -= 1
            return _error(500, "injected failure after processing", path)
        return response

    # -- auth ------------------------------------------------------------------------------

    @app.post("/auth/realms/api/protocol/openid-connect/token")
    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        if form.get("grant_type") != "password":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if form.get("client_id") != settings.client_id:
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Invalid client"}, status_code=401
            )
        if form.get("username") != settings.username or form.get("password") != settings.password:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Invalid user credentials"},
                status_code=401,
            )
        return JSONResponse(
            {
                "access_token": sim.issue_token(),
                "expires_in": settings.token_ttl,
                "refresh_expires_in": 0,
                "token_type": "Bearer",
                "not-before-policy": 0,
                "scope": "profile email",
            }
        )

    # -- discovery -------------------------------------------------------------------------

    def size_or_default(size: int | None) -> int:
        return min(size if size and size > 0 else settings.page_size, settings.max_page_size)

    @app.get(f"{API}/tenant")
    async def list_tenants(page: int = 0, size: int | None = None) -> dict[str, Any]:
        items = [{"id": t.id, "name": t.name} for t in sim.tenants]
        return _page(items, page, size_or_default(size))

    @app.get(f"{API}/tenant/{{tenant_id}}/desk")
    async def list_desks(tenant_id: str, page: int = 0, size: int | None = None) -> dict[str, Any]:
        tenant = sim.tenant(tenant_id)
        items = [{"id": d.id, "name": d.name, "tenantId": tenant.id} for d in tenant.desks]
        return _page(items, page, size_or_default(size))

    @app.get(f"{API}/tenant/{{tenant_id}}/types")
    async def list_types(tenant_id: str, page: int = 0, size: int | None = None) -> dict[str, Any]:
        tenant = sim.tenant(tenant_id)
        items = [{"id": t.id, "name": t.name, "description": t.name} for t in tenant.types]
        return _page(items, page, size_or_default(size))

    @app.get(f"{API}/tenant/{{tenant_id}}/types/{{type_id}}/subtypes")
    async def list_subtypes(
        tenant_id: str, type_id: str, page: int = 0, size: int | None = None
    ) -> dict[str, Any]:
        tenant = sim.tenant(tenant_id)
        typ = next((t for t in tenant.types if t.id == type_id), None)
        if typ is None:
            raise ApiError(404, f"type {type_id} not found")
        items = [{"id": s.id, "name": s.name, "description": s.name} for s in typ.subtypes]
        return _page(items, page, size_or_default(size))

    # -- folders ---------------------------------------------------------------------------

    folder_path = f"{API}/tenant/{{tenant_id}}/desk/{{desk_id}}/folder"

    @app.post(folder_path, status_code=201)
    async def create_folder(
        tenant_id: str,
        desk_id: str,
        request: Request,
        auto_start: Annotated[bool, Query(alias="autoStart")] = True,
    ) -> JSONResponse:
        # The wire names of the real API: query parameter `autoStart` (true when absent; any
        # other spelling is ignored, as Spring ignores unknown parameters) and the repeated
        # file part `documents`.
        sim.desk(tenant_id, desk_id)
        form = await request.form()
        premis_part = form.get("folder")
        if premis_part is None:
            raise ApiError(400, "the multipart part 'folder' (PREMIS) is required")
        if isinstance(premis_part, UploadFile):
            premis_bytes = await premis_part.read()
        else:
            premis_bytes = premis_part.encode("utf-8")
        parsed = parse_folder_premis(premis_bytes)
        uploads: dict[str, tuple[bytes, str]] = {}
        for part in form.getlist("documents"):
            if not isinstance(part, UploadFile) or not part.filename:
                raise ApiError(400, "documents must be file parts with a file name")
            if part.filename in uploads:
                raise ApiError(400, f"document {part.filename!r} uploaded twice")
            media_type = part.content_type or "application/octet-stream"
            uploads[part.filename] = (await part.read(), media_type)

        async def create() -> SimFolder:
            sim.creating += 1
            try:
                if sim.faults.create_delay > 0:
                    await asyncio.sleep(sim.faults.create_delay)
                return sim.create_folder(tenant_id, desk_id, parsed, uploads, auto_start)
            finally:
                sim.creating -= 1

        # Shielded: a request read in full is carried out even if its client disconnects.
        folder = await asyncio.shield(asyncio.ensure_future(create()))
        return JSONResponse(sim.folder_representation(folder), status_code=201)

    @app.put(f"{folder_path}/{{folder_id}}/task/{{task_id}}/start")
    async def start_task(
        tenant_id: str, desk_id: str, folder_id: str, task_id: str, request: Request
    ) -> Response:
        folder = sim.folder(tenant_id, desk_id, folder_id)
        body = await request.body()
        try:
            params = TaskParams.model_validate_json(body) if body.strip() else TaskParams()
        except ValueError as exc:
            raise ApiError(400, f"invalid SimpleTaskParams: {exc}") from exc
        sim.start(folder, task_id, params)
        return Response(status_code=200)

    @app.get(f"{folder_path}/{{folder_id}}/premis")
    async def get_premis(tenant_id: str, desk_id: str, folder_id: str) -> Response:
        folder = sim.folder(tenant_id, desk_id, folder_id)
        return Response(sim.premis(folder), media_type="application/xml")

    @app.get(f"{folder_path}/{{folder_id}}/zip")
    async def get_zip(tenant_id: str, desk_id: str, folder_id: str) -> Response:
        folder = sim.folder(tenant_id, desk_id, folder_id)
        data = await asyncio.to_thread(sim.zip, folder)  # PAdES signing is CPU-bound
        return Response(
            data,
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{folder.id}.zip"'},
        )

    @app.delete(f"{folder_path}/{{folder_id}}")
    async def delete_folder(tenant_id: str, desk_id: str, folder_id: str) -> Response:
        sim.delete(sim.folder(tenant_id, desk_id, folder_id))
        return Response(status_code=204)

    @app.get(f"{API}/tenant/{{tenant_id}}/desk/{{desk_id}}/{{state}}")
    async def list_by_state(
        tenant_id: str,
        desk_id: str,
        state: str,
        type_id: Annotated[str | None, Query(alias="typeId")] = None,
        subtype_id: Annotated[str | None, Query(alias="subtypeId")] = None,
        page: int = 0,
        size: int | None = None,
        sort: Annotated[list[str] | None, Query()] = None,
    ) -> dict[str, Any]:
        """The folders waiting on this desk in this state; filtered by type and subtype only
        (the standard API has no filter by name or metadata)."""
        sim.desk(tenant_id, desk_id)
        if state not in STATES:
            raise ApiError(400, f"unknown state {state!r}, expected one of {', '.join(STATES)}")
        folders = []
        for folder in sim.folders.values():
            if folder.deleted or folder.tenant_id != tenant_id:
                continue
            if type_id is not None and folder.type_id != type_id:
                continue
            if subtype_id is not None and folder.subtype_id != subtype_id:
                continue
            sim.advance(folder)
            if sim.listed_in(folder, desk_id, state):
                folders.append(folder)
        for criterion in reversed(sort or []):  # the first criterion sorts last: it wins
            key, _, direction = criterion.partition(",")
            if key not in SORT_KEYS or direction.lower() not in ("", "asc", "desc"):
                raise ApiError(400, f"invalid sort {criterion!r}: <{'|'.join(SORT_KEYS)}>,<asc|desc>")
            folders.sort(key=lambda f, k=key: SORT_KEYS[k](sim, f), reverse=direction.lower() == "desc")
        items = [sim.folder_representation(f) for f in folders]
        return _page(items, page, size_or_default(size))

    # -- admin -----------------------------------------------------------------------------

    @app.get("/_admin/folders")
    async def admin_folders() -> dict[str, Any]:
        folders = []
        for folder in sim.folders.values():
            if not folder.deleted:
                sim.advance(folder)
            info = sim.folder_json(folder)
            info.update(
                tenant_id=folder.tenant_id,
                desk_id=folder.desk_id,
                outcome=folder.outcome,
                documents=[
                    {"name": d.name, "main": d.main, "size": len(d.data)} for d in folder.documents
                ],
                events=[e.type for e in folder.events],
                external=folder.external,
            )
            folders.append(info)
        return {"folders": folders, "duplicates": sim.duplicates, "creating": sim.creating}

    @app.get("/_admin/faults")
    async def admin_get_faults() -> Faults:
        return sim.faults

    @app.post("/_admin/faults")
    async def admin_set_faults(faults: Faults) -> Faults:
        sim.faults = sim.faults.model_copy(update=faults.model_dump(exclude_unset=True))
        return sim.faults

    @app.post("/_admin/advance")
    async def admin_advance(body: AdvanceIn) -> dict[str, float]:
        sim.clock_offset += body.seconds
        sim.save()
        return {"clock_offset": sim.clock_offset}

    @app.post("/_admin/reset")
    async def admin_reset() -> dict[str, str]:
        sim.reset()
        return {"status": "reset"}

    @app.get("/_admin/certificate")
    async def admin_certificate() -> Response:
        return Response(sim.cert_path.read_bytes(), media_type="application/x-pem-file")

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="i-Parapheur v5 REST simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--settings", type=Path, help="JSON file of IparapheurSimSettings")
    args = parser.parse_args(argv)
    settings = (
        IparapheurSimSettings.model_validate_json(args.settings.read_text(encoding="utf-8"))
        if args.settings
        else IparapheurSimSettings()
    )
    uvicorn.run(create_app(settings), host=args.host, port=args.port, timeout_graceful_shutdown=2)


if __name__ == "__main__":
    main()
