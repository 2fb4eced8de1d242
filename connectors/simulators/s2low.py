"""S²low (TdT) + préfecture simulator for the ACTES flow: a real HTTP server speaking S²low's API,
and only that (docs/protocols.md §2.1-§2.3, §2.6, §6.1).

Run it with :class:`connectors.simulators.server.ServerThread` (or ``uvicorn`` on
``create_app(S2lowSimSettings(...))``). The text scripts answer like S²low with ``api=1``: plain
text ``OK\\n<payload>`` / ``KO\\n<message>``, ISO-8859-1 encoded; the ``api/`` scripts answer JSON.

Authentication (§2.1): HTTP Basic, or the nonce: ``GET /api/get-nounce.php`` (with Basic) →
``{"nounce": …}``, valid 5 minutes, then ``login``, ``nounce`` and ``hash`` =
sha256("<password>:<nounce>") as query parameters. The login identifies the authority (SIREN,
département, arrondissement, authority-type nature, classification); authorities are registered
in the settings or through the admin API. Unknown login or wrong password → HTTP 401
``KO\\nÉchec de l'authentification``.

S²low scripts (ACTES)
---------------------
* ``GET  /api/test-connexion.php`` → ``OK``; ``GET /api/get-nounce.php``
* ``POST /modules/actes/actes_transac_create.php`` (multipart: ``nature_code``, ``number``,
  ``subject``, ``decision_date``, ``en_attente``, ``document_papier``, ``type_acte``, ``type_pj[]``,
  ``classif1``..``classif5``; files ``acte_pdf_file``, ``acte_attachments[]``) → ``OK\\n<id>``.
  Synchronous checks: size limit, nature 1-6, classification levels 1 and 2, numéro regex
  ``^([A-Z0-9][A-Z0-9_]{0,13})?[A-Z0-9]$`` and uniqueness per authority over every transaction,
  whatever its type and status (``ActesTransaction::isUnique``: "Un acte portant le même numéro
  interne existe déjà…", no id given back), decision date not in the future, typology
  ``^[A-Z0-9_]{5}$`` ("typologie absente" when missing), acte is a PDF (XML only for nature 5
  with classification 7.1), annexes PDF/XML/PNG/JPEG. It then builds the real transmission
  archive (``<TRI>-<QUAD>--<SIREN>--<YYYYMMDD>-<serial>.tar.gz``, per-SIREN per-day serial) with
  :mod:`schemas.actes`; S²low serves it to no one (tests read it from the simulator's state).
* ``GET  /modules/actes/actes_transac_get_status.php?transaction=<id>`` (or ``unique_id=<IDActe>``)
  → ``OK\\n<status>\\n<flux>``: the ARActe at 4, the ARAnnulation at 0, the préfecture's message at
  7 / 21, a reply's 3-5 / 4-5 at 4; at -1 the AnomalieActe / AnomalieEnveloppe (when the ministry
  sent one) immediately followed by the workflow message, as the real script echoes them.
* ``GET  /modules/actes/actes_transac_get_files_list.php?transaction=<id>`` → JSON
  ``[{id, name, posted_filename, mimetype, size, sign, code_pj}]`` (0 = ``_0.xml``, 1 = acte,
  annexes); ``KO\\nPas d'acquittement recu`` while the transaction went no further than 1/2/3.
  (The real script casts ``unique_id`` to an integer, so an IDActe finds nothing there.)
* ``GET  /modules/actes/actes_download_file.php?file=<id>[&tampon=true]`` (stamped copy of a PDF
  once the acte is acknowledged), or ``?env=<id>``: an enveloppe's archive (a préfecture message)
* ``GET  /modules/actes/actes_create_pdf.php?trans_id=<id>`` → bordereau d'acquittement (PDF)
* ``GET  /modules/actes/actes_classification_fetch.php?api=1`` → RetourClassification XML
* ``POST /modules/actes/actes_transac_cancel.php`` (``id``) → ``OK\\n<type-6 id>``; only at status 4
  and one pending cancellation at a time; the ARAnnulation then puts the acte at 0.
* ``api/actes_status.php``, ``api/number_actes.php``, ``api/list_actes.php``:
  :mod:`connectors.simulators.s2low_listing`.
* The préfecture's messages and the replies (``api/list_document_prefecture.php``,
  ``actes_transac_get_document.php``, ``api/document_prefecture_mark_as_read.php``,
  ``actes_transac_reponse_create.php``): :mod:`connectors.simulators.s2low_prefecture`.

State machine (type-1 transaction)
----------------------------------
1 Posté →(``validation_delay``) 2 →(``transmit_delay``) 3 Transmis →(``ack_delay``) 4 Acquittement
reçu with an ARActe (IDActe ``<DEP>-<SIREN>-<YYYYMMDD>-<NUMERO>-<NAT>``), or -1 Erreur. 17 when
``en_attente=1`` (stays there: the interactive RGS confirmation is not simulated). States are
computed lazily from timestamps on every read, which keeps runs deterministic; with
``frozen_at`` time only moves through ``POST /_admin/clock/advance``.

Outcome selection, by numéro prefix: ``ERRANO…`` → AnomalieActe nature 002 ("ODT-VERIF-01 …"),
``ERRENV…`` → AnomalieEnveloppe 999, ``ERRVAL…`` → -1 at the TdT validation (invalid PAdES),
``ERRKO…`` → KO on create. ``faults.reject_rate`` draws from a seeded ``random.Random`` (one draw
per accepted acte) and gives AnomalieActe.

Admin API (JSON)
----------------
* ``PUT  /_admin/authorities/{siren}`` ``{"login","password","departement","arrondissement",
  "nature","name","email","archivist"}``; ``GET /_admin/authorities``;
  ``PUT /_admin/authorities/{siren}/classification`` (raw RetourClassification XML body)
* ``GET  /_admin/transmissions`` → ``{"transactions": [...], "duplicates": n, "duplicate_refusals": n}``:
  ``duplicates`` counts type-1 transactions beyond the first for one (SIREN, numéro) (an acte
  transmitted twice), ``duplicate_refusals`` the creates refused for a numéro already used
* ``POST /_admin/prefecture-messages``: :mod:`connectors.simulators.s2low_prefecture`
* ``GET  /_admin/stats``; ``POST /_admin/clock/advance`` ``{"seconds": n}``
* ``GET|POST|DELETE /_admin/faults`` (see :mod:`connectors.simulators.faults`)

Persistence: with ``state_file`` set, a JSON snapshot is rewritten atomically after every change and
reloaded at start-up.

HELIOS (PES v2 → DGFiP): see :mod:`connectors.simulators.s2low_helios` (endpoints under
``/modules/helios/``, settings ``helios``, admin view ``/_admin/helios``).
"""

from __future__ import annotations

import functools

import hashlib
import hmac
import json
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from connectors.simulators.clock import SimClock
from connectors.simulators.common import (
    SnapshotWriter,
    basic_credentials,
    decode_json_state,
    encode_json_state,
    rng_state_from_json,
    write_json_atomically,
)
from connectors.simulators.faults import FaultConfig, FaultInjector, install_faults
from connectors.simulators.s2low_helios import HeliosSimSettings, install_helios
from connectors.simulators.s2low_listing import install_listing
from connectors.simulators.s2low_prefecture import install_prefecture
from schemas.actes import naming
from schemas.actes.messages import parse_actes_message

NUMBER_RE = re.compile(r"^([A-Z0-9][A-Z0-9_]{0,13})?[A-Z0-9]$")
TYPOLOGY_RE = re.compile(r"^[A-Z0-9_]{5}$")
ANOMALIE_ACTE_NATURE = "002"
ANOMALIE_ACTE_DETAIL = (
    "ODT-VERIF-01 : Votre acte a été transmis avec une date de classification qui n'est pas à jour"
)
ANOMALIE_ENVELOPPE_NATURE = "999"
ANOMALIE_ENVELOPPE_DETAIL = (
    "ODT-VERIF-17 : La transaction que vous avez envoyé n'est pas reconnu dans l'application ACTES"
)
DUPLICATE_MESSAGE = (
    "Un acte portant le même numéro interne existe déjà dans la base de données.\n"
    "Il faut peut-être ajouter un suffixe au numéro."
)
# s2low:db/init_data.sql, table actes_status (docs/protocols.md §2.3)
STATUS_NAMES = {
    -1: "Erreur", 0: "Annulé", 1: "Posté", 2: "En attente de transmission", 3: "Transmis",
    4: "Acquittement reçu", 5: "Validé", 6: "Refusé", 7: "Document reçu", 8: "Acquittement envoyé",
    9: "Document envoyé", 10: "Refus d'envoie", 11: "Acquittement de document reçu", 12: "Envoyé au SAE",
    13: "Archivé par le SAE", 14: "Erreur lors de l'archivage", 15: "Reçu par le SAE", 16: "Détruite",
    17: "En attente d'être postée", 18: "En attente d'être signé", 19: "En attente de transmission au SAE",
    20: "Erreur lors de l'envoi au SAE", 21: "Document reçu (pas d'AR)",
    22: "Impossible d'envoyer au SAE (documents indisponibles)",
}
NONCE_LIFETIME = 300.0  # seconds ("un nounce valable 5 min")
ANNEX_MIMETYPES = {"application/pdf", "application/xml", "image/png", "image/jpeg"}
MIME_EXTENSIONS = {"application/pdf": "pdf", "application/xml": "xml", "image/png": "png", "image/jpeg": "jpg"}


# ------------------------------------------------------------------------------------ settings


class AuthorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    login: str = Field(min_length=1)
    password: str
    departement: str = Field(pattern=r"^[09][0-9][AB0-9]$")
    arrondissement: str = Field("0", pattern=r"^[0-9]$")
    nature: str = Field("31", pattern=r"^[0-9]{2}$", description="authority-type code, 31 commune")
    name: str = ""
    email: str | None = None
    archivist: bool = Field(True, description="the account has the archivist right (HELIOS list_pes_aller.php)")


class S2lowSimSettings(BaseModel):
    trigramme: str = Field("SLO", pattern=r"^[A-Za-z0-9]+$")
    quadrigramme: str = Field("EACT", pattern=r"^[A-Za-z0-9]+$")
    tdt_email: str = "actes@s2low-simulateur.test"
    validation_delay: float = Field(0.0, ge=0, description="seconds from 1 Posté to 2")
    transmit_delay: float = Field(0.0, ge=0, description="seconds from 2 to 3 Transmis")
    ack_delay: float = Field(0.0, ge=0, description="seconds from 3 to the préfecture answer")
    max_archive_size: int = Field(150 * 1024 * 1024, gt=0)
    seed: int = 0
    first_transaction_id: int = Field(1, ge=1)
    frozen_at: datetime | None = Field(None, description="virtual clock start; None = wall time")
    state_file: Path | None = None
    authorities: dict[str, AuthorityIn] = Field(default_factory=dict, description="by SIREN")
    faults: FaultConfig = Field(default_factory=FaultConfig)
    helios: HeliosSimSettings = Field(default_factory=HeliosSimSettings, description="HELIOS flow")


# ------------------------------------------------------------------------------------ state


@dataclass(frozen=True)
class PostedFile:
    filename: str
    data: bytes


@dataclass
class StoredFile:
    id: int
    name: str  # official name inside the archive
    posted_filename: str
    mimetype: str
    data: bytes
    code_pj: str | None = None
    sign: str = ""


@dataclass
class Transaction:
    id: int
    type: int  # 1 transmission d'acte, 6 annulation
    siren: str
    numero: str
    nature: int
    date_decision: str
    objet: str
    classification: str
    classification_date: str
    typologies: list[str]
    created_at: float
    status: int
    outcome: str  # ack | anomalie_acte | anomalie_enveloppe | invalid
    id_acte: str
    history: list[dict[str, Any]] = field(default_factory=list)
    archive_name: str | None = None
    archive_data: bytes | None = None
    enveloppe_name: str | None = None
    enveloppe_xml: bytes | None = None
    acte_xml: bytes | None = None
    files: list[StoredFile] = field(default_factory=list)
    reply_name: str | None = None
    reply_xml: bytes | None = None
    error_message: str | None = None
    related_transaction_id: int | None = None
    document_papier: bool = False
    type_reponse: int | None = None  # a collectivité's reply: 3 refus, 4 envoi (actes_transac_reponse_create.php)
    read: bool = False  # a préfecture message marked read (document_prefecture_mark_as_read.php)
    message_type: str | None = None  # the business message this transaction carries, "3-1"


@dataclass
class SimState:
    authorities: dict[str, dict[str, Any]] = field(default_factory=dict)  # siren -> AuthorityIn dump
    classifications: dict[str, bytes] = field(default_factory=dict)  # siren -> RetourClassification
    transactions: dict[int, Transaction] = field(default_factory=dict)
    next_transaction_id: int = 1
    next_file_id: int = 1
    next_ministry_serial: int = 1
    serials: dict[str, int] = field(default_factory=dict)  # "<siren>:<YYYYMMDD>" -> last serial
    authority_ids: dict[str, int] = field(default_factory=dict)  # siren -> S²low's authority_id
    duplicates: int = 0  # a second type-1 transaction stored for a (SIREN, numéro): must stay 0
    duplicate_refusals: int = 0  # creates refused "même numéro interne" (recovery probes land here)
    stats: dict[str, int] = field(default_factory=dict)
    clock_offset: float = 0.0
    rng_state: Any = None
    helios: Any = None  # connectors.simulators.s2low_helios.HeliosState (a dict right after loading)


class CreateRefused(Exception):
    """A KO answer to a create call."""


# ------------------------------------------------------------------------------------ helpers


def ok_text(payload: str | bytes = "", status_code: int = 200) -> Response:
    return _text(b"OK\n", payload, status_code)


def ko_text(message: str, status_code: int = 200) -> Response:
    return _text(b"KO\n", message, status_code)


def _text(head: bytes, payload: str | bytes, status_code: int) -> Response:
    body = payload if isinstance(payload, bytes) else payload.encode("iso-8859-1", "replace")
    if body and not body.endswith(b"\n"):
        body += b"\n"
    return Response(head + body, status_code=status_code, media_type="text/plain; charset=ISO-8859-1")


def unauthorized() -> Response:
    response = ko_text("Échec de l'authentification", status_code=401)
    response.headers["WWW-Authenticate"] = 'Basic realm="S2low"'
    return response


def sniff_mimetype(data: bytes) -> str | None:
    head = data[:1024]
    if b"%PDF-" in head:
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "application/xml"
    return None


def minimal_pdf(lines: list[str]) -> bytes:
    """A small, well-formed one-page PDF (correct xref offsets) showing ``lines``."""
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    text = "BT /F1 11 Tf 50 800 Td 14 TL " + " ".join(f"({esc(line)}) '" for line in lines) + " ET"
    stream = text.encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >>"
        b" /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


# ------------------------------------------------------------------------------------ simulator


class S2lowSimulator:
    """All the behaviour; the FastAPI app only translates HTTP to these calls."""

    def __init__(self, settings: S2lowSimSettings) -> None:
        self.settings = settings
        self.state = SimState(next_transaction_id=settings.first_transaction_id)
        self.rng = random.Random(settings.seed)
        self.faults = FaultInjector(settings.faults)
        for siren, authority in settings.authorities.items():
            self.state.authorities[siren] = authority.model_dump()
        self._load()
        for siren in self.state.authorities:
            self.authority_id(siren)
        self.nonces: dict[str, tuple[str, float]] = {}  # nounce -> (login, expiry); not persisted
        self._nonces_issued = 0
        self.clock = SimClock(settings.frozen_at, self.state.clock_offset)
        self._snapshots = SnapshotWriter(self._write_snapshot)

    # -------------------------------------------------------------- persistence

    def _load(self) -> None:
        path = self.settings.state_file
        if path is None or not path.exists():
            return
        raw = decode_json_state(json.loads(path.read_text(encoding="utf-8")))
        transactions = {}
        for tx in raw.pop("transactions").values():
            tx["files"] = [StoredFile(**f) for f in tx["files"]]
            transactions[int(tx["id"])] = Transaction(**tx)
        rng_state = raw.pop("rng_state")
        authorities = {**self.state.authorities, **raw.pop("authorities")}
        self.state = SimState(transactions=transactions, authorities=authorities, **raw)
        if rng_state is not None:
            self.rng.setstate(rng_state_from_json(rng_state))

    def save(self) -> None:
        self._snapshots.request()

    def flush(self) -> None:
        """Write the pending snapshot now (on shutdown)."""
        self._snapshots.flush()

    def _write_snapshot(self) -> None:
        if self.settings.state_file is None:
            return
        self.state.clock_offset = self.clock.offset
        self.state.rng_state = self.rng.getstate()
        write_json_atomically(self.settings.state_file, encode_json_state(asdict(self.state)))

    # -------------------------------------------------------------- authorities

    def register_authority(self, siren: str, authority: AuthorityIn) -> None:
        for other_siren, other in self.state.authorities.items():
            if other["login"] == authority.login and other_siren != siren:
                raise ValueError(f"login {authority.login!r} already used by {other_siren}")
        self.state.authorities[siren] = authority.model_dump()
        self.authority_id(siren)
        self.save()

    def authority_id(self, siren: str) -> int:
        """S²low's numeric authority id (list_actes.php and number_actes.php show it)."""
        if siren not in self.state.authority_ids:
            self.state.authority_ids[siren] = max(self.state.authority_ids.values(), default=0) + 1
        return self.state.authority_ids[siren]

    def authenticate(self, request: Request) -> tuple[str, AuthorityIn] | None:
        """HTTP Basic, or the nonce of §2.1: ``login``, ``nounce`` and ``hash`` =
        sha256("<password>:<nounce>") as query parameters."""
        credentials = basic_credentials(request)
        if credentials is not None:
            login, password = credentials
            for siren, authority in self.state.authorities.items():
                if authority["login"] == login and hmac.compare_digest(
                    authority["password"].encode(), password.encode()
                ):
                    return siren, AuthorityIn(**authority)
            return None
        params = request.query_params
        login, nonce, digest = params.get("login"), params.get("nounce"), params.get("hash")
        if not (login and nonce and digest):
            return None
        issued = self.nonces.get(nonce)
        if issued is None or issued[0] != login or issued[1] < self.clock.timestamp():
            return None
        for siren, authority in self.state.authorities.items():
            expected = hashlib.sha256(f"{authority['password']}:{nonce}".encode()).hexdigest()
            if authority["login"] == login and hmac.compare_digest(expected, digest.lower()):
                return siren, AuthorityIn(**authority)
        return None

    def issue_nonce(self, login: str) -> str:
        """``api/get-nounce.php``: a nonce valid 5 minutes (simulated clock), drawn from the seeded
        generator's own stream so the transaction outcomes do not depend on logins."""
        now = self.clock.timestamp()
        self.nonces = {n: v for n, v in self.nonces.items() if v[1] >= now}
        self._nonces_issued += 1
        nonce = hashlib.sha256(f"{self.settings.seed}:nounce:{login}:{self._nonces_issued}".encode()).hexdigest()[:32]
        self.nonces[nonce] = (login, now + NONCE_LIFETIME)
        return nonce

    def classification_xml(self, siren: str) -> bytes:
        from schemas.actes.classification import default_classification

        return self.state.classifications.get(siren) or default_classification()

    def classification_date(self, siren: str) -> date:
        return _classification_date(self.classification_xml(siren))

    # -------------------------------------------------------------- bookkeeping

    def count(self, key: str) -> None:
        self.state.stats[key] = self.state.stats.get(key, 0) + 1

    def _at(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts)

    def _set_status(self, tx: Transaction, status: int, ts: float, message: str) -> None:
        tx.status = status
        tx.history.append({"status": status, "date": self._at(ts).isoformat(), "message": message})

    # -------------------------------------------------------------- create

    def create(self, siren: str, authority: AuthorityIn, form: dict[str, Any]) -> Transaction:
        """Validate like S²low does synchronously, build the archive, store the transaction."""
        s = self.settings
        acte_file: PostedFile | None = form.get("acte_pdf_file")
        attachments: list[PostedFile] = form.get("acte_attachments", [])
        total = sum(len(f.data) for f in ([acte_file] if acte_file else []) + attachments)
        if total > s.max_archive_size:
            raise CreateRefused(
                f"La taille totale des fichiers est trop importante (max : {s.max_archive_size})"
            )
        try:
            nature = int(form.get("nature_code") or "")
            naming.nature_info(nature)
        except ValueError:
            raise CreateRefused("La nature de l'acte n'est pas correcte") from None
        classif = [(form.get(f"classif{i}") or "").strip() for i in range(1, 6)]
        if not classif[0] or not classif[1]:
            raise CreateRefused("La classification de l'acte est incomplète (niveaux 1 et 2 obligatoires)")
        if any(classif[i] and not classif[i - 1] for i in range(1, 5)):
            raise CreateRefused("La classification de l'acte n'est pas correcte")
        classification = ".".join(c for c in classif if c)
        numero = (form.get("number") or "").strip()
        if not NUMBER_RE.match(numero):
            raise CreateRefused(
                "Le numéro de l'acte n'est pas correct : 1 à 15 caractères parmi A-Z, 0-9 et _ "
                "(pas de _ en début ou en fin)"
            )
        try:
            date_decision = date.fromisoformat((form.get("decision_date") or "").strip())
        except ValueError:
            raise CreateRefused("La date de décision n'est pas correcte (format AAAA-MM-JJ)") from None
        today = self.clock.now().date()
        if date_decision > today:
            raise CreateRefused("La date de décision est une date dans le futur")
        objet = (form.get("subject") or "").strip()
        if not objet:
            raise CreateRefused("L'objet de l'acte est obligatoire")
        if len(objet) > 499:
            raise CreateRefused("L'objet de l'acte est trop long (499 caractères maximum)")
        if numero.startswith("ERRKO"):
            raise CreateRefused(
                "Erreur de validation du fichier de l'acte :\nerreur simulée (numéro ERRKO…)"
            )
        if self.number_taken(siren, numero):
            self.state.duplicate_refusals += 1
            self.save()
            raise CreateRefused(DUPLICATE_MESSAGE)
        if acte_file is None or not acte_file.data:
            raise CreateRefused("Aucun fichier acte n'a été posté ")
        type_acte = (form.get("type_acte") or "").strip()
        type_pj = [t.strip() for t in form.get("type_pj", [])]
        if not type_acte or len(type_pj) < len(attachments) or any(not t for t in type_pj):
            raise CreateRefused("typologie absente")
        for code in [type_acte, *type_pj[: len(attachments)]]:
            if not TYPOLOGY_RE.match(code):
                raise CreateRefused(f"La typologie {code} n'est pas correcte")
        acte_mime = sniff_mimetype(acte_file.data)
        xml_allowed = nature == 5 and classification.startswith("7.1")
        if acte_mime != "application/pdf" and not (acte_mime == "application/xml" and xml_allowed):
            raise CreateRefused(
                "Erreur de validation du fichier de l'acte :\n"
                "Le fichier de l'acte doit être au format PDF (XML seulement pour un budget, classification 7.1)"
            )
        xml_acte = acte_mime == "application/xml"
        for attachment in attachments:
            mime = sniff_mimetype(attachment.data)
            if mime not in ANNEX_MIMETYPES or (xml_acte and mime != "application/pdf"):
                raise CreateRefused(
                    "Erreur de validation d'un fichier de pièce jointe :\n"
                    f"Le type du fichier {attachment.filename} n'est pas autorisé"
                )
        return self._store_acte(
            siren, authority, nature=nature, numero=numero, date_decision=date_decision, objet=objet,
            classification=classification, typologies=[type_acte, *type_pj[: len(attachments)]],
            document=(acte_file.filename or "acte.pdf", acte_file.data, acte_mime or ""),
            annexes=[(a.filename or f"annexe{i}", a.data, sniff_mimetype(a.data) or "")
                     for i, a in enumerate(attachments, start=1)],
            document_papier=str(form.get("document_papier") or "0") in ("1", "on", "true"),
            en_attente=str(form.get("en_attente") or "0") in ("1", "on", "true"),
        )

    def _store_acte(
        self, siren: str, authority: AuthorityIn, *, nature: int, numero: str, date_decision: date,
        objet: str, classification: str, typologies: list[str], document: tuple[str, bytes, str],
        annexes: list[tuple[str, bytes, str]], document_papier: bool, en_attente: bool,
    ) -> Transaction:
        from schemas.actes.archive import Emetteur, build_acte_archive
        from schemas.actes.metadata import ActesMetadata

        now = self.clock.now()
        classification_date = self.classification_date(siren)
        day_key = f"{siren}:{now:%Y%m%d}"
        serial = self.state.serials.get(day_key, 0) + 1
        if serial > 9999:
            raise CreateRefused("Erreur lors de la génération de l'enveloppe. Numéro de série épuisé pour la journée")
        return_emails = [self.settings.tdt_email] + ([authority.email] if authority.email else [])
        try:
            metadata = ActesMetadata(
                nature=nature, numero_interne=numero, date_decision=date_decision, objet=objet,
                classification=classification, typologie=typologies, signature=False,
            )
            built = build_acte_archive(
                emetteur=Emetteur(siren, authority.departement, authority.arrondissement, authority.nature),
                metadata=metadata, classification_date=classification_date,
                document=(_with_extension(document[0], document[2]), document[1]),
                annexes=[(_with_extension(n, m), d) for n, d, m in annexes],
                trigramme=self.settings.trigramme, quadrigramme=self.settings.quadrigramme,
                serial=serial, day=now.date(), return_emails=return_emails,
            )
        except Exception as exc:  # the builders validate too (XSD, names)
            raise CreateRefused(f"Erreur lors de la génération de l'acte : {exc}") from exc
        if len(built.data) > self.settings.max_archive_size:
            raise CreateRefused(f"la taille d'archive générée n'est pas conforme. filename={built.name}")
        self.state.serials[day_key] = serial

        if numero.startswith("ERRANO"):
            outcome = "anomalie_acte"
        elif numero.startswith("ERRENV"):
            outcome = "anomalie_enveloppe"
        elif numero.startswith("ERRVAL"):
            outcome = "invalid"
        else:
            outcome = "ack"
        draw = self.rng.random()  # always drawn so the sequence does not depend on the rate
        if outcome == "ack" and draw < self.faults.config.reject_rate:
            outcome = "anomalie_acte"

        member_names = list(built.members)
        files = [StoredFile(self._file_id(), built.acte_xml_name, built.acte_xml_name, "application/xml",
                            built.acte_xml)]
        business = [n for n in member_names if n not in (built.enveloppe_name, built.acte_xml_name)]
        posted = [document, *annexes]
        for index, (posted_name, data, mime) in enumerate(posted):
            official = business[index] if index < len(business) else posted_name
            files.append(StoredFile(self._file_id(), official, posted_name, mime, data, typologies[index]))

        tx_id = self.state.next_transaction_id
        self.state.next_transaction_id += 1
        tx = Transaction(
            id=tx_id, type=1, siren=siren, numero=numero, nature=nature,
            date_decision=date_decision.isoformat(), objet=objet, classification=classification,
            classification_date=classification_date.isoformat(), typologies=typologies,
            created_at=now.timestamp(), status=1, outcome=outcome,
            id_acte=naming.id_acte(authority.departement, siren, date_decision, numero, nature),
            archive_name=built.name, archive_data=built.data, enveloppe_name=built.enveloppe_name,
            enveloppe_xml=built.enveloppe_xml, acte_xml=built.acte_xml, files=files,
            document_papier=document_papier,
        )
        self._set_status(tx, 1, tx.created_at, "Posté")
        if en_attente:
            self._set_status(tx, 17, tx.created_at, "En attente d'être postée")
        self.state.transactions[tx_id] = tx
        self.count("create_ok")
        self.save()
        return tx

    def _file_id(self) -> int:
        self.state.next_file_id += 1
        return self.state.next_file_id - 1

    def _ministry_serial(self) -> int:
        self.state.next_ministry_serial += 1
        return self.state.next_ministry_serial - 1

    # -------------------------------------------------------------- reading

    def number_taken(self, siren: str, numero: str) -> bool:
        """S²low's ``ActesTransaction::isUnique``: any transaction of the authority with that numéro,
        whatever its type and status (an acte in error cannot be sent again under its numéro)."""
        return any(tx.siren == siren and tx.numero == numero for tx in self.state.transactions.values())

    def duplicates(self) -> int:
        """Type-1 transactions beyond the first for one (SIREN, numéro): an acte transmitted twice."""
        seen: dict[tuple[str, str], int] = {}
        for tx in self.state.transactions.values():
            if tx.type == 1:
                seen[(tx.siren, tx.numero)] = seen.get((tx.siren, tx.numero), 0) + 1
        return sum(n - 1 for n in seen.values())

    def get(self, siren: str, tx_id: str | int | None = None, unique_id: str | None = None) -> Transaction | None:
        tx: Transaction | None = None
        if tx_id not in (None, ""):
            try:
                tx = self.state.transactions.get(int(str(tx_id)))
            except ValueError:
                return None
        elif unique_id:
            tx = next((t for t in self.state.transactions.values()
                       if t.type == 1 and t.id_acte == unique_id and any(h["status"] == 4 for h in t.history)), None)
        if tx is None or tx.siren != siren:
            return None
        self.refresh(tx)
        return tx

    def refresh(self, tx: Transaction) -> None:
        """Apply the transitions whose time has come (lazy state machine)."""
        s = self.settings
        now = self.clock.timestamp()
        t2 = tx.created_at + s.validation_delay
        t3 = t2 + s.transmit_delay
        t4 = t3 + s.ack_delay
        changed = False
        if tx.status == 1 and now >= t2:
            if tx.outcome == "invalid":
                tx.error_message = "Enveloppe invalide : la signature PAdES du fichier de l'acte n'est pas valide"
                self._set_status(tx, -1, t2, tx.error_message)
                self.save()
                return
            self._set_status(tx, 2, t2, "Accepté par le TdT : validation OK")
            changed = True
        if tx.status == 2 and now >= t3:
            self._set_status(tx, 3, t3, "Transmis au MI")
            changed = True
        if tx.status == 3 and now >= t4 and not (tx.type == 2 and tx.type_reponse):
            self._conclude(tx, t4)  # a 2-2 ReponseCourrierSimple gets no AR: it stays at 3
            changed = True
        if tx.status == 7 and now >= tx.created_at + s.transmit_delay:
            # 3-1 / 4-1: S²low sends the 3-2 / 4-2 AR itself (ActesEnvoiAR), then 8
            self._set_status(tx, 8, tx.created_at + s.transmit_delay, "Acquittement envoyé")
            changed = True
        if tx.type == 1 and tx.status == 4:
            for other in list(self.state.transactions.values()):
                if other.type == 6 and other.related_transaction_id == tx.id and other.status != 4:
                    self.refresh(other)
        if changed:
            self.save()

    def _conclude(self, tx: Transaction, ts: float) -> None:
        from schemas.actes import messages

        day = self._at(ts).date()
        auth = self.state.authorities[tx.siren]
        classification_date = date.fromisoformat(tx.classification_date)
        if tx.type_reponse:  # the préfecture acknowledges a reply: 3-5 / 4-5
            kind = "ARPieceComplementaire" if tx.type == 3 else "ARReponseRejetLettreObservations"
            courrier = date.fromisoformat(str(parse_actes_message(tx.acte_xml or b"").fields["date_courrier_pref"]))
            tx.reply_xml = messages.build_ar_reponse_cl(kind, id_acte=tx.id_acte, date_courrier=courrier,
                                                        date_reception=day)
            code = "3-5" if tx.type == 3 else "4-5"
            tx.reply_name = naming.response_file_name(code, self._ministry_serial(), id_acte=tx.id_acte)
            self._set_status(tx, 4, ts, "Acquittement reçu")
            return
        if tx.type == 6:
            tx.reply_xml = messages.build_ar_annulation(id_acte=tx.id_acte, date_reception=day)
            tx.reply_name = naming.response_file_name("6-2", self._ministry_serial(), id_acte=tx.id_acte)
            self._set_status(tx, 4, ts, "Acquittement reçu")
            acte = self.state.transactions.get(tx.related_transaction_id or 0)
            if acte is not None and acte.status == 4:
                self._set_status(acte, 0, ts, "Annulé (ARAnnulation reçu)")
                acte.reply_xml, acte.reply_name = tx.reply_xml, tx.reply_name
            return
        if tx.outcome == "anomalie_acte":
            tx.reply_xml = messages.build_anomalie_acte(
                tx.acte_xml, nature=ANOMALIE_ACTE_NATURE, detail=ANOMALIE_ACTE_DETAIL, day=day,
                classification_date=classification_date,
            )
            tx.reply_name = naming.response_file_name(
                "1-3", self._ministry_serial(), departement=auth["departement"], siren=tx.siren
            )
            tx.error_message = f"Anomalie signalee par le MI : {ANOMALIE_ACTE_NATURE} - {ANOMALIE_ACTE_DETAIL}"
            self._set_status(tx, -1, ts, tx.error_message)
        elif tx.outcome == "anomalie_enveloppe":
            tx.reply_xml = messages.build_anomalie_enveloppe(
                tx.enveloppe_xml, nature=ANOMALIE_ENVELOPPE_NATURE, detail=ANOMALIE_ENVELOPPE_DETAIL, day=day
            )
            tx.reply_name = naming.anomalie_enveloppe_file_name(tx.enveloppe_name or "")
            tx.error_message = (
                f"Enveloppe rejetée par le MI ({ANOMALIE_ENVELOPPE_NATURE} : {ANOMALIE_ENVELOPPE_DETAIL})"
            )
            self._set_status(tx, -1, ts, tx.error_message)
        else:
            tx.reply_xml = messages.build_aracte(
                tx.acte_xml, id_acte=tx.id_acte, date_reception=day, classification_date=classification_date
            )
            tx.reply_name = naming.response_file_name("1-2", self._ministry_serial(), id_acte=tx.id_acte)
            self._set_status(tx, 4, ts, "Acquittement reçu")

    def status_payload(self, tx: Transaction) -> bytes:
        """What actes_transac_get_status.php prints after the status line: the flux_retour of that
        status (ARActe at 4, ARAnnulation at 0, the préfecture's message at 7 / 21), and at -1 the
        flux (AnomalieActe / AnomalieEnveloppe, when the ministry sent one) immediately followed by
        the workflow message, with no separator, as the real script echoes them."""
        flux = b""
        if tx.status in (4, 0) and tx.reply_xml:
            flux = tx.reply_xml
        elif tx.status in (7, 21) and tx.acte_xml:
            flux = tx.acte_xml
        elif tx.status == -1 and tx.reply_xml:
            flux = tx.reply_xml
        if flux and self.faults.take_malformed():
            flux = b"<html><body>Service indisponible</body>"
        if tx.status == -1:
            return flux + (tx.error_message or "Erreur").encode("iso-8859-1", "replace")
        return flux

    # -------------------------------------------------------------- cancel

    def cancel(self, siren: str, tx_id: str) -> Transaction:
        acte = self.get(siren, tx_id)
        if acte is None or acte.type != 1:
            raise CreateRefused("La transaction n'existe pas")
        if acte.status != 4:
            raise CreateRefused("Seule une transaction acquittée (statut 4) peut être annulée")
        for other in self.state.transactions.values():
            if other.type == 6 and other.related_transaction_id == acte.id and other.status not in (-1,):
                raise CreateRefused("Une annulation est déjà en cours pour cette transaction")
        now = self.clock.now()
        built = self._annulation_archive(acte, now.date())
        new_id = self.state.next_transaction_id
        self.state.next_transaction_id += 1
        cancel = Transaction(
            id=new_id, type=6, siren=siren, numero=acte.numero, nature=acte.nature,
            date_decision=acte.date_decision, objet=acte.objet, classification=acte.classification,
            classification_date=acte.classification_date, typologies=[], created_at=now.timestamp(),
            status=1, outcome="ack", id_acte=acte.id_acte, related_transaction_id=acte.id,
            archive_name=built.name, archive_data=built.data, enveloppe_name=built.enveloppe_name,
            enveloppe_xml=built.enveloppe_xml, acte_xml=built.acte_xml,
            files=[StoredFile(self._file_id(), built.acte_xml_name, built.acte_xml_name, "application/xml",
                              built.acte_xml)],
        )
        self._set_status(cancel, 1, cancel.created_at, "Posté")
        self.state.transactions[new_id] = cancel
        self.count("cancel_ok")
        self.save()
        return cancel

    def _annulation_archive(self, acte: Transaction, day: date) -> Any:
        """The 6-1 transmission archive: enveloppe + Annulation message, both XSD-validated by the
        builders; the message name reuses the acte's date, numéro and nature (docs/protocols.md §1.3)."""
        from schemas.actes.archive import Emetteur, build_message_archive
        from schemas.actes.messages import build_annulation

        auth = self.state.authorities[acte.siren]
        day_key = f"{acte.siren}:{day:%Y%m%d}"
        serial = self.state.serials.get(day_key, 0) + 1
        message_name = naming.business_file_name(
            auth["departement"], acte.siren, date.fromisoformat(acte.date_decision), acte.numero, acte.nature,
            type_code="6-1", index=0,
        )
        built = build_message_archive(
            emetteur=Emetteur(acte.siren, auth["departement"], auth.get("arrondissement", "0"), auth.get("nature", "31")),
            message_name=message_name, message_xml=build_annulation(id_acte=acte.id_acte), files=[],
            trigramme=self.settings.trigramme, quadrigramme=self.settings.quadrigramme, serial=serial, day=day,
            return_emails=[self.settings.tdt_email],
        )
        self.state.serials[day_key] = serial
        return built

    # -------------------------------------------------------------- admin views

    def transmissions(self) -> dict[str, Any]:
        rows = []
        for tx in sorted(self.state.transactions.values(), key=lambda t: t.id):
            self.refresh(tx)
            rows.append({
                "id": tx.id, "type": tx.type, "siren": tx.siren, "numero": tx.numero, "nature": tx.nature,
                "status": tx.status, "status_name": STATUS_NAMES.get(tx.status, str(tx.status)),
                "archive_name": tx.archive_name, "id_acte": tx.id_acte, "outcome": tx.outcome,
                "related_transaction_id": tx.related_transaction_id, "history": tx.history,
            })
        return {"transactions": rows, "duplicates": self.duplicates(),
                "duplicate_refusals": self.state.duplicate_refusals}

    def stats(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        for tx in self.state.transactions.values():
            self.refresh(tx)
            by_status[str(tx.status)] = by_status.get(str(tx.status), 0) + 1
        return {
            "transactions": len(self.state.transactions), "by_status": by_status,
            "duplicates": self.duplicates(), "duplicate_refusals": self.state.duplicate_refusals,
            "calls": dict(sorted(self.state.stats.items())),
            "faults": self.faults.snapshot(), "now": self.clock.now().isoformat(),
        }


def _with_extension(filename: str, mimetype: str) -> str:
    """The builders name files by extension: make it agree with the sniffed content."""
    ext = MIME_EXTENSIONS.get(mimetype)
    stem, dot, current = filename.rpartition(".")
    if ext is None or (dot and current.lower() in (ext, "jpeg" if ext == "jpg" else ext)):
        return filename
    return f"{stem if dot else filename}.{ext}"


# ------------------------------------------------------------------------------------ HTTP


async def _read_form(request: Request) -> dict[str, Any]:
    """The create form as plain values (``[]`` suffixes dropped) and :class:`PostedFile` objects."""
    form = await request.form(max_files=10_000, max_fields=10_000)
    out: dict[str, Any] = {"acte_attachments": [], "type_pj": []}
    for key, value in form.multi_items():
        base = key.removesuffix("[]")
        if isinstance(value, UploadFile):
            posted = PostedFile(value.filename or "", await value.read())
            if base == "acte_attachments":
                if posted.filename or posted.data:
                    out["acte_attachments"].append(posted)
            elif base == "acte_pdf_file":
                out["acte_pdf_file"] = posted
        elif base == "type_pj":
            out["type_pj"].append(value)
        else:
            out[base] = value
    return out


def create_app(settings: S2lowSimSettings) -> FastAPI:
    sim = S2lowSimulator(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        sim.flush()

    # No /docs, /redoc, /openapi.json: the simulator serves S²low's scripts and its /_admin API only.
    app = FastAPI(title="S²low simulator (dematbus)", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.sim = sim
    install_faults(app, sim.faults, failure_body=lambda: ko_text("Erreur interne du serveur"))
    install_helios(app, sim)  # the HELIOS endpoints (connectors/simulators/s2low_helios.py)
    install_listing(app, sim)  # list_actes.php & co (connectors/simulators/s2low_listing.py)
    install_prefecture(app, sim)  # the préfecture's messages and replies (s2low_prefecture.py)

    # ---------------------------------------------------------------- S²low API

    @app.get("/api/get-nounce.php")
    async def get_nounce(request: Request) -> Response:
        sim.count("get_nounce")
        credentials = basic_credentials(request)
        if credentials is None or sim.authenticate(request) is None:
            return unauthorized()
        return JSONResponse({"nounce": sim.issue_nonce(credentials[0])})

    @app.get("/api/test-connexion.php")
    async def test_connexion(request: Request) -> Response:
        sim.count("test_connexion")
        if sim.authenticate(request) is None:
            return unauthorized()
        return ok_text("")

    @app.post("/modules/actes/actes_transac_create.php")
    async def transac_create(request: Request) -> Response:
        sim.count("create")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        try:
            form = await _read_form(request)
        except Exception as exc:  # malformed multipart
            return ko_text(f"Requête invalide : {exc}")
        try:
            tx = sim.create(who[0], who[1], form)
        except CreateRefused as exc:
            sim.count("create_ko")
            return ko_text(str(exc))
        return ok_text(str(tx.id))

    @app.get("/modules/actes/actes_transac_get_status.php")
    async def transac_get_status(request: Request, transaction: str | None = None,
                                 unique_id: str | None = None) -> Response:
        sim.count("get_status")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        tx = sim.get(who[0], transaction, unique_id)
        if tx is None:
            return ko_text("La transaction n'existe pas")
        return ok_text(f"{tx.status}\n".encode("ascii") + sim.status_payload(tx))

    @app.get("/modules/actes/actes_transac_get_files_list.php")
    async def transac_get_files_list(request: Request, transaction: str = "", unique_id: str = "") -> Response:
        sim.count("get_files_list")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        if unique_id:
            # The real script casts unique_id to an integer before looking it up, so an IDActe
            # ("034-…") never finds its transaction there: ask with transaction=<id>.
            return ko_text("Numéro de transaction invalide.")
        tx = sim.get(who[0], transaction)
        if tx is None:
            return ko_text("Numéro de transaction invalide.")
        if all(h["status"] in (1, 2, 3) for h in tx.history):
            return ko_text("Pas d'acquittement recu")
        return JSONResponse([
            {"id": str(f.id), "name": f.name, "posted_filename": f.posted_filename, "mimetype": f.mimetype,
             "size": str(len(f.data)), "sign": f.sign, "code_pj": f.code_pj or ""}
            for f in tx.files
        ])

    @app.get("/modules/actes/actes_download_file.php")
    async def download_file(request: Request, file: str = "", tampon: str = "", env: str = "") -> Response:
        sim.count("download_file")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        if env:  # an enveloppe's archive (one transaction per enveloppe: its id is the transaction's)
            tx = sim.get(who[0], env)
            if tx is None or tx.archive_data is None:
                return ko_text("Fichier introuvable", status_code=404)
            data = tx.archive_data
            if sim.faults.take_malformed():
                data = b"<html><body>Service indisponible</body>"
            return Response(data, media_type="application/x-gzip",
                            headers={"Content-Disposition": f'attachment; filename="{tx.archive_name}"'})
        for tx in sim.state.transactions.values():
            if tx.siren != who[0]:
                continue
            for stored in tx.files:
                if str(stored.id) == file:
                    sim.refresh(tx)
                    data = stored.data
                    if tampon in ("true", "1") and tx.status == 4 and stored.mimetype == "application/pdf":
                        data = _stamp(data, tx)
                    return Response(data, media_type=stored.mimetype or "application/octet-stream",
                                    headers={"Content-Disposition": f'attachment; filename="{stored.name}"'})
        return ko_text("Fichier introuvable", status_code=404)

    @app.get("/modules/actes/actes_create_pdf.php")
    async def create_pdf(request: Request, trans_id: str = "") -> Response:
        sim.count("create_pdf")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        tx = sim.get(who[0], trans_id)
        if tx is None:
            return ko_text("La transaction n'existe pas")
        lines = [
            "Bordereau d'acquittement de transaction (simulateur S2low)",
            f"Transaction : {tx.id}", f"Identifiant de l'acte : {tx.id_acte}",
            f"Objet : {tx.objet}", f"Nature : {naming.nature_info(tx.nature).label}",
            f"Classification : {tx.classification}",
            *(f"{h['date']} - {h['message']}" for h in tx.history),
        ]
        return Response(minimal_pdf(lines), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="bordereau-{tx.id}.pdf"'})

    @app.get("/modules/actes/actes_classification_fetch.php")
    async def classification_fetch(request: Request) -> Response:
        sim.count("classification_fetch")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        return Response(sim.classification_xml(who[0]), media_type="application/xml")

    @app.post("/modules/actes/actes_transac_cancel.php")
    async def transac_cancel(request: Request) -> Response:
        sim.count("cancel")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        form = await request.form()
        try:
            cancel = sim.cancel(who[0], str(form.get("id") or ""))
        except CreateRefused as exc:
            return ko_text(str(exc))
        return ok_text(str(cancel.id))

    # ---------------------------------------------------------------- admin

    @app.put("/_admin/authorities/{siren}")
    async def put_authority(siren: str, authority: AuthorityIn) -> Response:
        if not re.fullmatch(r"[0-9]{9}", siren):
            return JSONResponse({"error": "SIREN must be 9 digits"}, status_code=422)
        try:
            sim.register_authority(siren, authority)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse({"siren": siren, **authority.model_dump(exclude={"password"})})

    @app.get("/_admin/authorities")
    async def list_authorities() -> dict[str, Any]:
        return {siren: {k: v for k, v in a.items() if k != "password"}
                for siren, a in sorted(sim.state.authorities.items())}

    @app.put("/_admin/authorities/{siren}/classification")
    async def put_classification(siren: str, request: Request) -> Response:
        from schemas.actes.classification import Classification

        body = await request.body()
        try:
            Classification.parse(body)
        except Exception as exc:
            return JSONResponse({"error": f"invalid RetourClassification: {exc}"}, status_code=422)
        sim.state.classifications[siren] = body
        sim.save()
        return JSONResponse({"siren": siren, "date": sim.classification_date(siren).isoformat()})

    @app.get("/_admin/transmissions")
    async def admin_transmissions() -> dict[str, Any]:
        return sim.transmissions()

    @app.get("/_admin/stats")
    async def admin_stats() -> dict[str, Any]:
        return sim.stats()

    @app.post("/_admin/clock/advance")
    async def advance_clock(body: dict[str, float]) -> dict[str, Any]:
        now = sim.clock.advance(float(body.get("seconds", 0)))
        sim.save()
        return {"now": now.isoformat()}

    return app


def _stamp(pdf: bytes, tx: Transaction) -> bytes:
    """A "stamped" copy: the PDF plus a trailing comment naming the acknowledgement (PDF readers ignore
    bytes after %%EOF, so the file stays valid and is recognisably different)."""
    date_ar = next((h["date"][:10] for h in tx.history if h["status"] == 4), "")
    return pdf + f"\n% Tampon S2low simulateur : {tx.id_acte} recu en prefecture le {date_ar}\n".encode("ascii")


@functools.lru_cache(maxsize=64)
def _classification_date(xml: bytes) -> date:
    """The date of a classification file: parsed once per content, not once per acte received."""
    from schemas.actes.classification import Classification

    return Classification.parse(xml, check_xsd=False).date
