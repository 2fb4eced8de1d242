"""Digital-safe (coffre-fort numérique) simulator: where payslips are delivered to each agent.

A small provider-neutral REST API (`X-Api-Key` header on every non-admin call):

* ``POST /api/v1/deposits`` - multipart: ``reference`` (the sender's own, unique), ``recipient``
  (the agent's safe identifier), ``document_type``, ``periode``, ``file`` (a PDF).
  → 201 ``{"id", "status": "pending"}``; 409 ``duplicate_reference`` (with the existing ``id``,
  counted in ``duplicates``); 404 ``unknown_recipient`` (no safe with that identifier);
  400 ``invalid_deposit`` (missing field, not a PDF).
* ``GET /api/v1/deposits?reference=R`` → ``{"deposits": [...]}`` (how a client finds a deposit
  whose answer it lost).
* ``GET /api/v1/deposits/{id}`` → ``status``: ``pending`` until ``receipt_delay`` seconds have
  passed, then ``delivered`` with a ``receipt`` (id, reference, recipient, sha256, size,
  delivered_at) or ``refused`` with ``code`` ``safe_refused`` and a ``message`` (the agent's safe
  is closed or full).

Deterministic outcomes: a recipient matching ``unknown_pattern`` is unknown, one matching
``refuse_pattern`` has a safe that refuses; ids are UUIDv5 of the reference. Faults (shared
``/_admin/faults``): ``fail_next`` (5xx before doing anything), ``slow_seconds``, ``timeout_next``,
``refuse_next`` (the next N deposits are refused by the safe). ``GET /_admin/deposits`` lists
deposits and counts duplicates. Nothing about the agent but the safe identifier is received, and
nothing is logged.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from connectors.simulators.common import SnapshotWriter, write_json_atomically
from connectors.simulators.faults import FaultConfig, FaultInjector, install_faults

NAMESPACE = uuid.UUID("5f0c1d2e-7a43-4c1b-9a55-c0ffee000001")


class CoffreSimSettings(BaseModel):
    api_key: str = "coffre-dematbus"
    receipt_delay: float = 0.0
    unknown_pattern: str | None = r"^INCONNU"
    refuse_pattern: str | None = r"^FERME"
    refusal_message: str = "Le coffre-fort de l'agent est clos / the agent's safe is closed"
    faults: FaultConfig = FaultConfig()
    state_file: Path | None = None


@dataclass
class Deposit:
    id: str
    reference: str
    recipient: str
    document_type: str
    periode: str
    sha256: str
    size: int
    created_at: float
    refused: bool


@dataclass
class CoffreState:
    deposits: dict[str, Deposit] = field(default_factory=dict)  # by reference
    duplicates: int = 0


class CoffreSimulator:
    def __init__(self, settings: CoffreSimSettings) -> None:
        self.settings = settings
        self.faults = FaultInjector(settings.faults)
        self.state = CoffreState()
        self._snapshots = SnapshotWriter(self._write)
        if settings.state_file and settings.state_file.exists():
            raw = json.loads(settings.state_file.read_text(encoding="utf-8"))
            self.state = CoffreState({r: Deposit(**d) for r, d in raw["deposits"].items()}, raw["duplicates"])

    def _write(self) -> None:
        if self.settings.state_file is not None:
            write_json_atomically(self.settings.state_file, asdict(self.state))

    def flush(self) -> None:
        self._snapshots.flush()

    def deposit(self, reference: str, recipient: str, document_type: str, periode: str, data: bytes) -> Deposit:
        existing = self.state.deposits.get(reference)
        if existing is not None:
            self.state.duplicates += 1
            self._snapshots.request()
            raise SimError(409, "duplicate_reference", "Référence déjà déposée / reference already deposited",
                           {"id": existing.id})
        if self.settings.unknown_pattern and re.search(self.settings.unknown_pattern, recipient):
            raise SimError(404, "unknown_recipient", "Aucun coffre-fort pour ce destinataire / unknown recipient")
        refused = self.faults.take_refusal() or bool(
            self.settings.refuse_pattern and re.search(self.settings.refuse_pattern, recipient))
        deposit = Deposit(id=str(uuid.uuid5(NAMESPACE, reference)), reference=reference, recipient=recipient,
                          document_type=document_type, periode=periode, sha256=hashlib.sha256(data).hexdigest(),
                          size=len(data), created_at=time.time(), refused=refused)
        self.state.deposits[reference] = deposit
        self._snapshots.request()
        return deposit

    def view(self, deposit: Deposit) -> dict[str, Any]:
        body: dict[str, Any] = {"id": deposit.id, "reference": deposit.reference, "periode": deposit.periode,
                                "document_type": deposit.document_type}
        due = deposit.created_at + self.settings.receipt_delay
        if time.time() < due:
            return {**body, "status": "pending"}
        if deposit.refused:
            return {**body, "status": "refused", "code": "safe_refused", "message": self.settings.refusal_message}
        receipt = {"id": f"AR-{deposit.id}", "reference": deposit.reference, "recipient": deposit.recipient,
                   "sha256": deposit.sha256, "size": deposit.size,
                   "delivered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due))}
        return {**body, "status": "delivered", "receipt": receipt}


class SimError(Exception):
    def __init__(self, status: int, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        self.status, self.code, self.message, self.extra = status, code, message, extra or {}


def create_app(settings: CoffreSimSettings) -> FastAPI:
    sim = CoffreSimulator(settings)
    app = FastAPI(title="Coffre-fort numérique (simulateur)")
    app.state.sim = sim
    install_faults(app, sim.faults)

    @app.exception_handler(SimError)
    async def _error(_: Request, exc: SimError) -> JSONResponse:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}, **exc.extra}, status_code=exc.status)

    def authenticate(request: Request) -> None:
        if request.headers.get("x-api-key") != settings.api_key:
            raise SimError(401, "unauthorized", "Clé d'API invalide / invalid API key")

    @app.post("/api/v1/deposits", status_code=201)
    async def deposit(request: Request) -> dict[str, Any]:
        authenticate(request)
        form = await request.form()
        fields = {k: form.get(k) for k in ("reference", "recipient", "document_type", "periode")}
        upload = form.get("file")
        if any(not isinstance(v, str) or not v for v in fields.values()) or upload is None or isinstance(upload, str):
            raise SimError(400, "invalid_deposit", "reference, recipient, document_type, periode et file requis")
        data = await upload.read()
        if not data.startswith(b"%PDF-"):
            raise SimError(400, "invalid_deposit", "Le document doit être un PDF / the document must be a PDF")
        made = sim.deposit(str(fields["reference"]), str(fields["recipient"]), str(fields["document_type"]),
                           str(fields["periode"]), data)
        return {"id": made.id, "status": "pending"}

    @app.get("/api/v1/deposits")
    async def find(request: Request, reference: str) -> dict[str, Any]:
        authenticate(request)
        found = sim.state.deposits.get(reference)
        return {"deposits": [sim.view(found)] if found else []}

    @app.get("/api/v1/deposits/{deposit_id}")
    async def get_deposit(request: Request, deposit_id: str) -> dict[str, Any]:
        authenticate(request)
        found = next((d for d in sim.state.deposits.values() if d.id == deposit_id), None)
        if found is None:
            raise SimError(404, "deposit_not_found", "Dépôt inconnu / unknown deposit")
        return sim.view(found)

    @app.get("/_admin/deposits")
    async def admin_deposits() -> dict[str, Any]:
        views = [sim.view(d) for d in sim.state.deposits.values()]
        by_status: dict[str, int] = {}
        for v in views:
            by_status[v["status"]] = by_status.get(v["status"], 0) + 1
        return {"count": len(views), "duplicates": sim.state.duplicates, "by_status": by_status,
                "references": sorted(d.reference for d in sim.state.deposits.values())}

    return app
