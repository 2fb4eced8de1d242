"""S²low HELIOS endpoints (PES v2 → DGFiP Hélios, PES_ACQUIT back), added to the S²low simulator.

:func:`install_helios` is called by :func:`connectors.simulators.s2low.create_app`; the HELIOS part
shares the S²low app's authorities (HTTP Basic, the login gives the SIREN), fault injector, virtual
clock and state file (``SimState.helios``). Settings live in ``S2lowSimSettings.helios``
(:class:`HeliosSimSettings`). Sources: docs/protocols.md §2.4, §2.5, §3.3-§3.5, §6.1.

S²low endpoints
---------------
* ``POST /modules/helios/api/helios_importer_fichier.php`` (multipart field ``enveloppe``) →
  ``text/xml`` ``<import><id/><resultat>OK|KO</resultat><message/></import>``. Synchronous: a file
  whose sha1 is already on the platform (any transaction, any status: S²low's ``isDuplicate``)
  → KO "doublon détecté. Ce fichier a déjà été posté", no id given back (counted in
  ``duplicate_refusals``); missing or empty ``enveloppe``, or larger than ``max_file_size`` → KO.
* ``GET /modules/helios/api/helios_transac_get_status.php?transaction=<id>`` → ISO-8859-1
  ``<transaction><id/><resultat/><message/><status/></transaction>``; 3 is reported instead of
  4/6/8 while the PES_ACQUIT file is not there yet (``acquit_file_delay``), as S²low's
  ApiHeliosStatusResolver does.
* ``GET /modules/helios/api/list_pes_aller.php?status_id=&offset=&limit=&min_date=&max_date=`` (the
  archivist right; HTTP 400 ``{"error": "L'utilisateur n'est pas archiviste"}`` otherwise) →
  ``{"status_id", "authority_id", "offset", "limit", "transactions": [{"id"}]}``, strings, newest
  first, the same paging and date rules as ACTES ``list_actes.php``
  (:mod:`connectors.simulators.s2low_listing`); ``status_id`` is the platform's status, not the one
  ``helios_transac_get_status.php`` reports while the acquit file is missing.
* ``GET /modules/helios/helios_download_file.php?id=<id>`` → the PES as posted (``text/xml``,
  ``Content-Disposition`` = the posted file name); a redirect to the HELIOS index page when the
  transaction is not the caller's.
* ``GET /modules/helios/helios_download_acquit.php?id=<id>`` → the PES_ACQUIT XML
  (``Content-Disposition`` filename ``<IdPost>_<yyMMddHHmmss>-ACK-A3020100_A0000MIX_<OK|KO>.xml``);
  HTTP 404 ``KO`` text while there is none.
* ``GET /modules/helios/api/helios_get_list.php`` →
  ``<liste><idColl/><dateDemande/><resultat/><message/><pes_retour><id/><nom/><date/></pes_retour>…</liste>``
  (unread PES_Retour of the authority), ``GET …/helios_get_retour.php?id=<id>`` (the file),
  ``GET …/helios_change_status.php?id=<id>`` (mark read). PES_Retour files are injected with the
  admin API (the simulator does not invent them).

State machine
-------------
import → 1 POSTE →(``validation_delay``) -1 ERREUR with S²low's message, or 2 EN_ATTENTE (the file
is renamed ``PESALR2_<SIREN>_<yymmdd>_<NNN>.xml``, counter per SIREN and day, at least 3 digits)
→(``transmit_delay``) 3 TRANSMIS →(``ack_delay``) the DGFiP's PES_ACQUIT (NomFic = the PES
NomFic, one ElementACQUIT per bordereau and per PJ): every EtatAck 1 → 4 ACQUITTE, none → 6
REFUSE, mixed → 8 INFORMATION_DISPONIBLE (inferred mapping, §3.4). States are computed lazily
from timestamps; with ``frozen_at`` time moves through ``POST /_admin/clock/advance``.

Validation checks (run on the posted bytes at import, applied at the 1 → 2 transition), in order:

1. ISO-8859-1 declaration → "ce fichier n'est pas encodé en ISO-8859-1"
2. XML / PES_Aller XSD (``schemas.helios.pes.read_pes_aller``) → "Le CodCol est trop long",
   "ce fichier ne contient ni bordereau, ni PJ, ni marché", or "Le fichier PES n'est pas valide : …"
3. IdColl (SIRET) starts with the authenticated authority's SIREN → "Le SIRET de la collectivité
   (IdColl) ne correspond pas à la collectivité authentifiée" (our wording)
4. ``require_signature``: at least one XAdES signature and all valid
   (``connectors.signature.xades.verify_pes``) → "La signature du fichier est invalide"
5. ``nom_fic_unique``: no transaction that passed validation carries the same NomFic and CodCol →
   "Transaction <id> : ce fichier existe déjà sur la plateforme" (a second transmission of a
   NomFic: counted in ``duplicates``)

Outcome selection by NomFic (case-sensitive substring):

* ``KOALL`` → every element refused (6);
* ``KOMIX`` → the first bordereau refused, the rest accepted (8; a PES with a single bordereau and
  no PJ therefore gets 6);
* ``KOPJ``  → every PJ refused with ERREUR_DOUBLON_PJ "1984 - L'identifiant unique de la PJ a déjà
  été intégré dans HELIOS" (8, or 6 without bordereau);
* otherwise accepted (4), except that ``faults.reject_rate`` refuses everything with that
  probability (a per-transaction draw seeded by ``seed`` and the transaction id).

Refused elements carry ``ERREUR_AUTRE`` "1971 - Compte fonction présent à tort" (DGFiP sample).
``faults.malformed_next`` replaces the next downloaded PES_ACQUIT by garbage.

Admin API (JSON)
----------------
* ``GET /_admin/helios`` → ``{"transactions": [...], "duplicates": n, "duplicate_refusals": n}``
* ``POST /_admin/helios/retours/{siren}`` (raw PES_Retour body, ``?nom=<file name>``) → ``{"id": n}``
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from schemas.errors import SchemaError

if TYPE_CHECKING:
    from connectors.simulators.s2low import S2lowSimulator
    from schemas.helios.pes import PesSummary

log = logging.getLogger(__name__)

DUPLICATE_MESSAGE = "doublon détecté. Ce fichier a déjà été posté"
NOM_FIC_EXISTS = "ce fichier existe déjà sur la plateforme"
SIGNATURE_INVALID = "La signature du fichier est invalide"
NOT_ISO = "ce fichier n'est pas encodé en ISO-8859-1"
CODCOL_TOO_LONG = "Le CodCol est trop long"
EMPTY = "ce fichier ne contient ni bordereau, ni PJ, ni marché"
WRONG_IDCOLL = "Le SIRET de la collectivité (IdColl) ne correspond pas à la collectivité authentifiée"
DEFAULT_ERROR = ("ERREUR_AUTRE", "1971 - Compte fonction présent à tort")
DOUBLON_PJ_ERROR = ("ERREUR_DOUBLON_PJ", "1984 - L'identifiant unique de la PJ a déjà été intégré dans HELIOS")

STATUS_NAMES = {
    -1: "ERREUR", 0: "ANNULE", 1: "POSTE", 2: "EN_ATTENTE", 3: "TRANSMIS", 4: "ACQUITTE", 5: "VALIDE",
    6: "REFUSE", 7: "EN_TRAITEMENT", 8: "INFORMATION_DISPONIBLE",
}
STATUS_MESSAGES = {
    1: "Fichier bien reçu par la plate-forme Helios",
    2: "En attente de transmission. Fichier valide.",
    3: "Transmis",
    4: "Acquittement reçu",
    6: "Refusé",
    8: "Information disponible",
}
_HELIOS_PREFIX = "/modules/helios/"


class HeliosSimSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    require_signature: bool = Field(True, description="check XAdES signatures (at least one, all valid)")
    nom_fic_unique: bool = Field(True, description="NomFic unique per authority (S²low's default)")
    validation_delay: float = Field(0.0, ge=0, description="seconds from 1 POSTE to 2 (or -1)")
    transmit_delay: float = Field(0.0, ge=0, description="seconds from 2 to 3 TRANSMIS")
    ack_delay: float = Field(0.0, ge=0, description="seconds from 3 to the DGFiP's acquit (4/6/8)")
    acquit_file_delay: float = Field(
        0.0, ge=0, description="seconds after 4/6/8 before the PES_ACQUIT file is stored (status reads 3)"
    )
    max_file_size: int = Field(600 * 1024 * 1024, gt=0)


# ------------------------------------------------------------------------------------ state


@dataclass
class HeliosTransaction:
    id: int
    siren: str
    filename: str  # as posted
    nom_fic: str  # "" when unreadable
    sha1: str
    size: int
    created_at: float
    status: int
    outcome: str  # accepted | partial | rejected | invalid
    data: bytes
    summary: dict[str, Any] | None = None  # PesSummary.to_dict() when the file is readable
    check_error: str | None = None  # the -1 message decided at import
    error_message: str | None = None
    rejected_bordereaux: list[str] = field(default_factory=list)
    rejected_pj: list[str] = field(default_factory=list)
    reject_all: bool = False
    error: list[str] = field(default_factory=lambda: list(DEFAULT_ERROR))
    pesalr2_name: str | None = None
    acquit_xml: bytes | None = None
    acquit_name: str | None = None
    acquit_at: float | None = None  # when the acquit file is stored
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PesRetour:
    id: int
    siren: str
    nom: str
    date: str
    data: bytes
    read: bool = False


@dataclass
class HeliosState:
    transactions: dict[int, HeliosTransaction] = field(default_factory=dict)
    next_id: int = 1
    serials: dict[str, int] = field(default_factory=dict)  # "<siren>:<yymmdd>" -> last counter
    duplicates: int = 0  # transactions refused at validation for a NomFic already transmitted
    duplicate_refusals: int = 0  # imports refused "doublon" (sha1 already on the platform)
    retours: dict[int, PesRetour] = field(default_factory=dict)
    next_retour_id: int = 1

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> HeliosState:
        raw = dict(raw)
        transactions = {int(k): HeliosTransaction(**v) for k, v in raw.pop("transactions", {}).items()}
        retours = {int(k): PesRetour(**v) for k, v in raw.pop("retours", {}).items()}
        return cls(transactions=transactions, retours=retours, **raw)


class ImportRefused(Exception):
    """A KO answer to an import."""


# ------------------------------------------------------------------------------------ XML answers


def xml_answer(root_tag: str, children: list[tuple[str, Any]], status_code: int = 200) -> Response:
    root = etree.Element(root_tag)
    for tag, value in children:
        etree.SubElement(root, tag).text = "" if value is None else str(value)
    body = etree.tostring(root, encoding="ISO-8859-1", xml_declaration=True)
    return Response(body, status_code=status_code, media_type="text/xml; charset=ISO-8859-1")


def _text_ko(message: str, status_code: int) -> Response:
    return Response(("KO\n" + message + "\n").encode("iso-8859-1", "replace"), status_code=status_code,
                    media_type="text/plain; charset=ISO-8859-1")


def _s2low_message(exc: Exception) -> str:
    """S²low's wording for a `read_pes_aller` failure."""
    code = getattr(exc, "code", "")
    if code == "pes_not_iso_8859_1":
        return NOT_ISO
    if code == "pes_codcol_too_long":
        return CODCOL_TOO_LONG
    if code == "pes_empty":
        return EMPTY
    message = str(getattr(exc, "message", exc)).split(" / ")[0]
    return f"Le fichier PES n'est pas valide : {message}"


def _summary_from(d: dict[str, Any]) -> PesSummary:
    from schemas.helios.pes import BordereauSummary, PesSummary

    d = {k: v for k, v in d.items() if k != "siren"}
    d["bordereaux"] = [BordereauSummary(**b) for b in d["bordereaux"]]
    return PesSummary(**d)


# ------------------------------------------------------------------------------------ behaviour


class HeliosSimulator:
    def __init__(self, sim: S2lowSimulator) -> None:
        self.sim = sim
        self.settings: HeliosSimSettings = sim.settings.helios
        raw = sim.state.helios
        if isinstance(raw, HeliosState):
            self.state = raw
        elif raw:
            self.state = HeliosState.from_json(raw)
        else:
            self.state = HeliosState(next_id=sim.settings.first_transaction_id)
        sim.state.helios = self.state  # persisted with the S²low state (asdict recurses)

    @property
    def now(self) -> float:
        return self.sim.clock.timestamp()

    def _set_status(self, tx: HeliosTransaction, status: int, ts: float, message: str) -> None:
        tx.status = status
        tx.history.append({"status": status, "date": datetime.fromtimestamp(ts).isoformat(), "message": message})

    # -------------------------------------------------------------- import

    def import_file(self, siren: str, filename: str, data: bytes,
                    checked: tuple[PesSummary | None, str | None] | None = None) -> HeliosTransaction:
        """Store a posted PES at status 1 (KO on an empty, too large or sha1-duplicate file).

        ``checked`` is ``check(siren, data)`` computed beforehand (off the event loop by the HTTP
        layer); it is computed here when not given."""
        sha1 = self.precheck(siren, data)
        summary, check_error = checked if checked is not None else self.check(siren, data)
        tx_id = self.state.next_id
        self.state.next_id += 1
        tx = HeliosTransaction(
            id=tx_id, siren=siren, filename=filename, nom_fic=summary.nom_fic if summary else "",
            sha1=sha1, size=len(data), created_at=self.now, status=1, outcome="invalid", data=data,
            summary=summary.to_dict() if summary else None, check_error=check_error,
        )
        if check_error is None and summary is not None and self.settings.nom_fic_unique \
                and self._nom_fic_taken(summary.nom_fic, summary.cod_col):
            tx.check_error = f"Transaction {tx_id} : {NOM_FIC_EXISTS}"
            self.state.duplicates += 1
        if tx.check_error is None and summary is not None:
            self._choose_outcome(tx, summary)
        self._set_status(tx, 1, tx.created_at, STATUS_MESSAGES[1])
        self.state.transactions[tx_id] = tx
        self.sim.count("helios_import_ok")
        self.sim.save()
        return tx

    def precheck(self, siren: str, data: bytes) -> str:
        """The synchronous KO checks; returns the sha1."""
        if not data:
            raise ImportRefused("Aucun fichier n'a été posté")
        if len(data) > self.settings.max_file_size:
            raise ImportRefused(f"Le fichier est trop volumineux (max : {self.settings.max_file_size})")
        sha1 = hashlib.sha1(data).hexdigest()
        if any(other.sha1 == sha1 for other in self.state.transactions.values()):
            self.state.duplicate_refusals += 1
            self.sim.save()
            raise ImportRefused(DUPLICATE_MESSAGE)
        return sha1

    def _nom_fic_taken(self, nom_fic: str, cod_col: str) -> bool:
        """S²low's ``nomFicExists``: a transaction that passed validation with that NomFic and CodCol."""
        return any(o.nom_fic == nom_fic and (o.summary or {}).get("cod_col") == cod_col and o.check_error is None
                   for o in self.state.transactions.values())

    def check(self, siren: str, data: bytes) -> tuple[PesSummary | None, str | None]:
        """S²low's validation checks 1-4 (module docstring): the summary and the -1 message, if any.
        Pure (no state change), so it can run in a worker thread."""
        from schemas.helios.pes import HeliosError, read_pes_aller

        try:
            summary = read_pes_aller(data, max_bytes=self.settings.max_file_size)
        except HeliosError as exc:
            return None, _s2low_message(exc)
        if not re.fullmatch(r"\d{14}", summary.id_coll or "") or summary.siren != siren:
            return summary, WRONG_IDCOLL
        if self.settings.require_signature:
            try:
                from connectors.signature.xades import verify_pes
            except ImportError:
                log.warning("require_signature is set but connectors.signature.xades is missing: PES refused")
                return summary, f"{SIGNATURE_INVALID} (vérification XAdES indisponible sur le simulateur)"
            try:
                checks = verify_pes(data)
            except SchemaError:  # unreadable signature structure
                return summary, SIGNATURE_INVALID
            except Exception:  # a verifier bug must not turn the import into a 500
                log.exception("XAdES verification failed unexpectedly: PES refused")
                return summary, SIGNATURE_INVALID
            if not checks or not all(c.valid for c in checks):
                return summary, SIGNATURE_INVALID
        return summary, None

    def _choose_outcome(self, tx: HeliosTransaction, summary: PesSummary) -> None:
        draw = random.Random(f"{self.sim.settings.seed}:helios:{tx.id}").random()
        nom_fic = summary.nom_fic
        if "KOALL" in nom_fic:
            tx.reject_all = True
        elif "KOMIX" in nom_fic:
            tx.rejected_bordereaux = [summary.bordereaux[0].id_bord] if summary.bordereaux else []
        elif "KOPJ" in nom_fic:
            tx.rejected_pj = list(summary.pj_ids)
            tx.error = list(DOUBLON_PJ_ERROR)
        elif draw < self.sim.faults.config.reject_rate:
            tx.reject_all = True
        elements = len(summary.bordereaux) + len(summary.pj_ids) or 1
        refused = elements if tx.reject_all else len(tx.rejected_bordereaux) + len(tx.rejected_pj)
        tx.outcome = "accepted" if refused == 0 else "rejected" if refused >= elements else "partial"

    # -------------------------------------------------------------- reading

    def get(self, siren: str, tx_id: str | int | None) -> HeliosTransaction | None:
        try:
            tx = self.state.transactions.get(int(str(tx_id)))
        except ValueError:
            return None
        if tx is None or tx.siren != siren:
            return None
        self.refresh(tx)
        return tx

    def reported_status(self, tx: HeliosTransaction) -> int:
        if tx.status in (4, 6, 8) and (tx.acquit_xml is None or tx.acquit_at is None or self.now < tx.acquit_at):
            return 3
        return tx.status

    def status_message(self, tx: HeliosTransaction) -> str:
        if tx.status == -1:
            return tx.error_message or "Erreur"
        return STATUS_MESSAGES.get(self.reported_status(tx), tx.history[-1]["message"] if tx.history else "")

    def refresh(self, tx: HeliosTransaction) -> None:
        s = self.settings
        now = self.now
        t2 = tx.created_at + s.validation_delay
        t3 = t2 + s.transmit_delay
        t4 = t3 + s.ack_delay
        changed = False
        if tx.status == 1 and now >= t2:
            if tx.check_error is not None:
                tx.error_message = tx.check_error
                self._set_status(tx, -1, t2, tx.check_error)
                self.sim.save()
                return
            tx.pesalr2_name = self._pesalr2_name(tx.siren, t2)
            self._set_status(tx, 2, t2, f"{STATUS_MESSAGES[2]} ({tx.pesalr2_name})")
            changed = True
        if tx.status == 2 and now >= t3:
            self._set_status(tx, 3, t3, STATUS_MESSAGES[3])
            changed = True
        if tx.status == 3 and now >= t4:
            self._acquit(tx, t4)
            changed = True
        if changed:
            self.sim.save()

    def _pesalr2_name(self, siren: str, ts: float) -> str:
        day = datetime.fromtimestamp(ts).strftime("%y%m%d")
        key = f"{siren}:{day}"
        counter = self.state.serials.get(key, 0) + 1
        self.state.serials[key] = counter
        return f"PESALR2_{siren}_{day}_{counter:03d}.xml"

    def _acquit(self, tx: HeliosTransaction, ts: float) -> None:
        from schemas.helios.acquit import acquit_file_name, build_acquit

        assert tx.summary is not None
        summary = _summary_from(tx.summary)
        when = datetime.fromtimestamp(ts)
        tx.acquit_xml = build_acquit(
            summary, rejected_bordereaux=frozenset(tx.rejected_bordereaux), rejected_pj=frozenset(tx.rejected_pj),
            reject_all=tx.reject_all, error=(tx.error[0], tx.error[1]), day=when.date(),
        )
        tx.acquit_name = acquit_file_name(summary.id_post, when, tx.outcome == "accepted")
        tx.acquit_at = ts + self.settings.acquit_file_delay
        status = {"accepted": 4, "rejected": 6, "partial": 8}[tx.outcome]
        self._set_status(tx, status, ts, STATUS_MESSAGES[status])

    # -------------------------------------------------------------- PES_Retour

    def add_retour(self, siren: str, nom: str, data: bytes) -> PesRetour:
        retour = PesRetour(id=self.state.next_retour_id, siren=siren, nom=nom,
                           date=self.sim.clock.now().isoformat(timespec="seconds"), data=data)
        self.state.next_retour_id += 1
        self.state.retours[retour.id] = retour
        self.sim.save()
        return retour

    # -------------------------------------------------------------- admin

    def transmissions(self) -> dict[str, Any]:
        rows = []
        for tx in sorted(self.state.transactions.values(), key=lambda t: t.id):
            self.refresh(tx)
            rows.append({
                "id": tx.id, "siren": tx.siren, "filename": tx.filename, "nom_fic": tx.nom_fic, "sha1": tx.sha1,
                "size": tx.size, "status": tx.status, "status_name": STATUS_NAMES.get(tx.status, str(tx.status)),
                "reported_status": self.reported_status(tx), "outcome": tx.outcome,
                "error_message": tx.error_message, "pesalr2_name": tx.pesalr2_name, "acquit_name": tx.acquit_name,
                "rejected_bordereaux": tx.rejected_bordereaux, "rejected_pj": tx.rejected_pj,
                "reject_all": tx.reject_all, "history": tx.history,
            })
        return {"transactions": rows, "duplicates": self.state.duplicates,
                "duplicate_refusals": self.state.duplicate_refusals}


# ------------------------------------------------------------------------------------ HTTP


def install_helios(app: FastAPI, sim: S2lowSimulator) -> None:
    """Add the HELIOS endpoints (module docstring) to the S²low simulator app."""
    helios = HeliosSimulator(sim)
    app.state.helios = helios

    def unauthorized() -> Response:
        response = _text_ko("Échec de l'authentification", 401)
        response.headers["WWW-Authenticate"] = 'Basic realm="S2low"'
        return response

    @app.post(_HELIOS_PREFIX + "api/helios_importer_fichier.php")
    async def importer_fichier(request: Request) -> Response:
        sim.count("helios_import")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        try:
            form = await request.form(max_files=10, max_fields=100, max_part_size=helios.settings.max_file_size)
        except Exception as exc:  # noqa: BLE001 - malformed multipart, whatever the parser raises
            return xml_answer("import", [("id", ""), ("resultat", "KO"), ("message", f"Requête invalide : {exc}")])
        upload = form.get("enveloppe")
        if not isinstance(upload, UploadFile):
            return xml_answer("import", [("id", ""), ("resultat", "KO"),
                                         ("message", "Aucun fichier n'a été posté (champ enveloppe)")])
        data = await upload.read()
        try:
            helios.precheck(who[0], data)
            checked = await run_in_threadpool(helios.check, who[0], data)  # XSD + XAdES: off the loop
            tx = helios.import_file(who[0], upload.filename or "pes.xml", data, checked)
        except ImportRefused as exc:
            sim.count("helios_import_ko")
            return xml_answer("import", [("id", ""), ("resultat", "KO"), ("message", str(exc))])
        return xml_answer("import", [("id", tx.id), ("resultat", "OK"), ("message", "Fichier bien reçu")])

    @app.get(_HELIOS_PREFIX + "api/helios_transac_get_status.php")
    async def transac_get_status(request: Request, transaction: str = "") -> Response:
        sim.count("helios_get_status")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        tx = helios.get(who[0], transaction)
        if tx is None:
            return xml_answer("transaction", [("id", transaction), ("resultat", "KO"),
                                              ("message", "La transaction n'existe pas"), ("status", "")])
        return xml_answer("transaction", [("id", tx.id), ("resultat", "OK"), ("message", helios.status_message(tx)),
                                          ("status", helios.reported_status(tx))])

    @app.get(_HELIOS_PREFIX + "helios_download_acquit.php")
    async def download_acquit(request: Request, id: str = "") -> Response:
        sim.count("helios_download_acquit")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        tx = helios.get(who[0], id)
        if tx is None or tx.acquit_xml is None or helios.reported_status(tx) not in (4, 6, 8):
            return _text_ko("Pas d'acquittement pour cette transaction", 404)
        data = tx.acquit_xml
        if sim.faults.take_malformed():
            data = b"<html><body>Service indisponible</body>"
        return Response(data, media_type="application/xml",
                        headers={"Content-Disposition": f'attachment; filename="{tx.acquit_name}"'})

    @app.get(_HELIOS_PREFIX + "api/list_pes_aller.php")
    async def list_pes_aller(request: Request) -> Response:
        from connectors.simulators.s2low_listing import get_date, get_int, listed

        sim.count("helios_list_pes_aller")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        if not who[1].archivist:
            return JSONResponse({"error": "L'utilisateur n'est pas archiviste"}, status_code=400)
        status_id = get_int(request, "status_id")
        offset = max(0, get_int(request, "offset"))
        limit = max(0, get_int(request, "limit", 100))
        mine = [tx for tx in helios.state.transactions.values() if tx.siren == who[0]]
        for tx in mine:
            helios.refresh(tx)
        rows = listed(mine, status_id, get_date(request, "min_date"), get_date(request, "max_date"))
        return JSONResponse({
            "status_id": str(status_id), "authority_id": str(sim.authority_id(who[0])), "offset": str(offset),
            "limit": str(limit), "transactions": [{"id": str(tx.id)} for tx in rows[offset:offset + limit]],
        })

    @app.get(_HELIOS_PREFIX + "helios_download_file.php")
    async def download_file(request: Request, id: str = "") -> Response:
        sim.count("helios_download_file")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        tx = helios.get(who[0], id)
        if tx is None:  # the real script sets a session error and redirects to the module's page
            return Response(status_code=302, headers={"Location": "/modules/helios/index.php"})
        return Response(tx.data, media_type="text/xml",
                        headers={"Content-Disposition": f'attachment; filename="{tx.filename}"'})

    @app.get(_HELIOS_PREFIX + "api/helios_get_list.php")
    async def get_list(request: Request) -> Response:
        sim.count("helios_get_list")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        siren = who[0]
        root = etree.Element("liste")
        etree.SubElement(root, "idColl").text = siren
        etree.SubElement(root, "dateDemande").text = sim.clock.now().date().isoformat()
        etree.SubElement(root, "resultat").text = "OK"
        etree.SubElement(root, "message").text = ""
        for retour in sorted(helios.state.retours.values(), key=lambda r: r.id):
            if retour.siren == siren and not retour.read:
                item = etree.SubElement(root, "pes_retour")
                etree.SubElement(item, "id").text = str(retour.id)
                etree.SubElement(item, "nom").text = retour.nom
                etree.SubElement(item, "date").text = retour.date
        body = etree.tostring(root, encoding="ISO-8859-1", xml_declaration=True)
        return Response(body, media_type="text/xml; charset=ISO-8859-1")

    def _retour(siren: str, retour_id: str) -> PesRetour | None:
        try:
            retour = helios.state.retours.get(int(retour_id))
        except ValueError:
            return None
        return retour if retour is not None and retour.siren == siren else None

    @app.get(_HELIOS_PREFIX + "api/helios_get_retour.php")
    async def get_retour(request: Request, id: str = "") -> Response:
        sim.count("helios_get_retour")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        retour = _retour(who[0], id)
        if retour is None:
            return _text_ko("PES Retour introuvable", 404)
        return Response(retour.data, media_type="application/xml",
                        headers={"Content-Disposition": f'attachment; filename="{retour.nom}"'})

    @app.get(_HELIOS_PREFIX + "api/helios_change_status.php")
    async def change_status(request: Request, id: str = "") -> Response:
        sim.count("helios_change_status")
        who = sim.authenticate(request)
        if who is None:
            return unauthorized()
        retour = _retour(who[0], id)
        if retour is None:
            return xml_answer("change", [("id", id), ("resultat", "KO"), ("message", "PES Retour introuvable")])
        retour.read = True
        sim.save()
        return xml_answer("change", [("id", retour.id), ("resultat", "OK"), ("message", "")])

    # ---------------------------------------------------------------- admin

    @app.get("/_admin/helios")
    async def admin_helios() -> dict[str, Any]:
        return helios.transmissions()

    @app.post("/_admin/helios/retours/{siren}")
    async def admin_add_retour(siren: str, request: Request, nom: str = "") -> Response:
        if not re.fullmatch(r"[0-9]{9}", siren):
            return JSONResponse({"error": "SIREN must be 9 digits"}, status_code=422)
        body = await request.body()
        if not body:
            return JSONResponse({"error": "empty PES_Retour"}, status_code=422)
        retour = helios.add_retour(siren, nom or f"PES_RETOUR_{helios.state.next_retour_id}.xml", body)
        return JSONResponse({"id": retour.id, "nom": retour.nom})


__all__ = ["HeliosSimSettings", "HeliosSimulator", "HeliosState", "HeliosTransaction", "install_helios"]
