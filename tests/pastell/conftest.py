"""In-process Pastell API: the ASGI app on a real store, HTTP Basic with dematbus keys."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest

from bus.store.apikeys import ROLES, create_key
from bus.store.db import Store
from connectors.inbound.api import create_app
from connectors.signature.pdf import make_pdf
from tests.conftest import SIREN_A

PDF = make_pdf("Arrêté", ["Le maire arrête."])


def basic(key: str, login: str = "apikey") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{key}".encode()).decode()}


@pytest.fixture
async def admin_a(store: Store, keys: dict[str, str]) -> str:
    """An admin key of collectivité A only (the `keys` admin reaches every collectivité)."""
    async with store.transaction() as session:
        return await create_key(session, [SIREN_A], ["admin", "depositor"], name="admin A")


@pytest.fixture
async def root(store: Store, keys: dict[str, str]) -> str:
    """An administrator of every collectivité holding every role (it may hand any of them out)."""
    async with store.transaction() as session:
        return await create_key(session, ["*"], list(ROLES), name="root")


@pytest.fixture
async def http(settings, store, keys) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """No credentials by default: each call says whose key it uses (`headers=basic(key)`)."""
    app = create_app(settings, store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def deposit_acte(http: httpx.AsyncClient, key: str, siren: str, numero: str, *, annexes: int = 0) -> str:
    """A native deposit, as business software does it through `/api/v1`."""
    meta = {"nature": 1, "numero_interne": numero, "date_decision": date.today().isoformat(),
            "objet": f"Délibération {numero}", "classification": "1.1"}
    files = [("document", ("deliberation.pdf", make_pdf(numero, ["Le conseil décide."]), "application/pdf"))]
    files += [("annexes", (f"annexe{i}.pdf", make_pdf(f"Annexe {i}"), "application/pdf")) for i in range(annexes)]
    resp = await http.post("/api/v1/documents", headers={"Authorization": f"Bearer {key}"},
                           data={"flow": "actes", "siren": siren, "metadata": json.dumps(meta)}, files=files)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def id_e_of(http: httpx.AsyncClient, key: str, siren: str) -> int:
    entites = (await http.get("/api/v2/entite", headers=basic(key))).json()
    return int(next(e["id_e"] for e in entites if e["siren"] == siren))


async def new_acte(api: httpx.AsyncClient, id_e: int, **fields: str) -> str:
    """A complete actes-generique draft made through the Pastell API (the client carries its key)."""
    id_d = (await api.post(f"/api/v2/entite/{id_e}/document?type=actes-generique")).json()["id_d"]
    body = {"acte_nature": "3", "objet": "Arrêté de voirie", "numero_de_lacte": "ARR_2026_001",
            "date_de_lacte": date.today().isoformat(), "classification": "2.1", "envoi_tdt": "on", **fields}
    assert (await api.patch(f"/api/v2/entite/{id_e}/document/{id_d}", data=body)).status_code == 200
    sent = await api.post(f"/api/v2/entite/{id_e}/document/{id_d}/file/arrete",
                          data={"file_name": "arrete.pdf"}, files={"file_content": ("arrete.pdf", PDF)})
    assert sent.status_code == 201
    return str(id_d)
