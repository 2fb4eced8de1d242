"""Tenant isolation matrix: every route of the API process × own key, another collectivité's key,
a key with the wrong role, no key, a revoked key.

The routes come from the app itself: its OpenAPI description (`app.openapi()`), plus every route
the app serves outside it (console, Pastell v2 and V1 scripts, metrics…), found by walking
`app.routes`. A new route is thus in the matrix the day it is added; one whose path holds a new
parameter, or a new public route, fails here until it is given a value or declared public.

Collectivité A owns a document, a Pastell draft, a webhook, a group and a payslip batch, each
carrying MARKER. For every route:
* no key, revoked key: 401 (the console: back to its login page), nothing of A in the answer;
* B's key (every role): never A's data; a route that names one of A's resources is refused (4xx);
* A's keys with the wrong role: `rh` alone (a role that only adds to another) is refused
  everywhere; `reporter` (figures only) changes nothing;
* A's own key: answered, never 401 nor a 5xx.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bus.store.apikeys import ROLES, create_key, hash_key
from bus.store.models import ApiKey, utcnow
from connectors.inbound.api import create_app
from connectors.signature.pdf import make_pdf
from tests.conftest import SIREN_A, SIREN_B

MARKER = "MARQUEUR-SECRET-A"
PUBLIC = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/health", "/healthz", "/readyz", "/metrics",
          "/console/login", "/console/logout", "/console/static/console.css",
          # The public registry of published actes (issue 15): A's document is not published, so
          # every key and no key alike get the same 404 (tests/publication/test_registry_api.py).
          "/publication/{siren}", "/publication/{siren}/actes.json", "/publication/{siren}/deliberations.csv",
          "/publication/{siren}/actes/{filename}", "/publication/{siren}/actes/{id_acte}/annexes/{number}"}
# Pastell V1 scripts that take no entité or document: B's key may call them (and sees nothing of A).
GLOBAL_V1 = {"version", "list-entite", "document-type", "document-type-info", "document-type-action", "journal"}
V1_SCRIPTS = ["version", "list-entite", "detail-entite", "document-type", "document-type-info", "document-type-action",
              "create-document", "detail-document", "detail-several-document", "modif-document", "list-document",
              "recherche-document", "action", "external-data", "recuperation-fichier", "receive-file", "send-file",
              "journal", "list-connecteur-entite"]
V1_WRITES = {"create-document", "modif-document", "action", "send-file"}  # V1 ignores the HTTP verb
# Path parameters that name one of A's resources: B's key must be refused on those routes.
A_RESOURCES = {"document_id", "id_d", "batch_id", "webhook_id", "id_e", "id_ce", "id_u", "id_j", "id_fe", "siren"}


def walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        if hasattr(route, "original_router"):  # an included router (FastAPI resolves them lazily)
            yield from walk(route.original_router.routes, prefix + route.include_context.prefix)
        elif hasattr(route, "routes") and not hasattr(route, "methods"):  # a Mount
            yield from walk(route.routes, prefix + route.path)
        else:
            for method in sorted((getattr(route, "methods", None) or {"GET"}) - {"HEAD"}):
                yield method, prefix + route.path


def all_routes(app: Any) -> list[tuple[str, str]]:
    served = sorted(set(walk(app.routes)))
    described = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert described <= set(served), described - set(served)
    return served


@dataclass
class World:
    keys: dict[str, str]
    values: dict[str, str]


async def _seed(client: httpx.AsyncClient, store: Any, keys: dict[str, str]) -> World:
    async with store.transaction() as session:
        own = await create_key(session, [SIREN_A], list(ROLES), name="own A")
        other = await create_key(session, [SIREN_B], list(ROLES), name="other B")
        wrong = await create_key(session, [SIREN_A], ["rh"], name="rh only")
        reporter = await create_key(session, [SIREN_A], ["reporter"], name="reporter A")
        revoked = await create_key(session, [SIREN_A], list(ROLES), name="revoked A")
    bearer = {"Authorization": f"Bearer {own}"}
    pdf = make_pdf(MARKER, [MARKER])
    meta = {"nature": 1, "numero_interne": "SECRET_A_1", "date_decision": "2026-01-05", "objet": MARKER,
            "classification": "7.1"}
    doc = await client.post("/api/v1/documents", headers=bearer, files=[("document", ("secret-a.pdf", pdf, "application/pdf"))],
                            data={"flow": "actes", "siren": SIREN_A, "metadata": json.dumps(meta)})
    assert doc.status_code == 201, doc.text
    manifest = f"matricule;nom;prénom;fichier;coffre\nA1;{MARKER};Camille;b1.pdf;CFN-1\n".encode()
    batch = await client.post("/api/v1/documents", headers=bearer, data={"flow": "rh-bulletin", "siren": SIREN_A,
                              "metadata": json.dumps({"periode": "2026-10"})},
                              files=[("manifest", ("m.csv", manifest, "text/csv")), ("payslips", ("b1.pdf", pdf, "application/pdf"))])
    assert batch.status_code == 201, batch.text
    hook = await client.post("/api/v1/webhooks", headers=bearer, json={"siren": SIREN_A, "url": f"https://a.example/{MARKER}"})
    assert hook.status_code in (200, 201), hook.text
    group = await client.put("/api/v1/groups/grp-a", headers=bearer, json={"label": MARKER, "members": [SIREN_A]})
    assert group.status_code == 200, group.text
    basic = {"Authorization": "Basic " + base64.b64encode(f"apikey:{own}".encode()).decode()}
    id_e = (await client.get("/api/v2/entite", headers=basic)).json()[0]["id_e"]
    id_d = (await client.post(f"/api/v2/entite/{id_e}/document?type=actes-generique", headers=basic)).json()["id_d"]
    await client.patch(f"/api/v2/entite/{id_e}/document/{id_d}", headers=basic, data={"objet": MARKER})
    await client.post(f"/api/v2/entite/{id_e}/document/{id_d}/file/arrete", headers=basic,
                      files={"file_content": ("secret-a.pdf", pdf)})
    connecteurs = (await client.get(f"/api/v2/entite/{id_e}/connecteur", headers=basic)).json()
    id_u = (await client.get("/api/v2/utilisateur", headers=basic)).json()[0]["id_u"]
    journal = (await client.get("/api/v2/journal", params={"id_e": id_e}, headers=basic)).json()
    associations = (await client.get(f"/api/v2/entite/{id_e}/flux", headers=basic)).json()
    async with store.transaction() as session:
        row = (await session.execute(select(ApiKey).where(ApiKey.key_hash == hash_key(revoked)))).scalar_one()
        row.revoked_at = utcnow()
    return World(
        keys={"own": own, "other": other, "wrong_role": wrong, "reporter": reporter, "revoked": revoked},
        values={"document_id": doc.json()["id"], "name": "secret-a.pdf", "batch_id": batch.json()["batch_id"],
                "webhook_id": str(hook.json()["id"]), "group": "grp-a", "id_e": str(id_e), "id_d": id_d,
                "id_ce": str(connecteurs[0]["id_ce"]), "id_connecteur": str(connecteurs[0]["id_connecteur"]),
                "field": "arrete", "num": "0", "action": "send-tdt", "flux_id": "actes-generique",
                "id_u": str(id_u), "id_j": str(journal[0]["id_j"]) if journal else "1",
                "id_fe": str(associations[0]["id_fe"]) if associations else "1", "siren": SIREN_A, "flow": "actes",
                "flux": "actes-generique", "famille": "TdT", "id_extension": "1", "id_cf": "1", "token_id": "1",
                "filename": "acte.pdf", "id_acte": "044-214400152-20260105-SECRET_A_1-DE", "number": "1",
                "rest:path": "inconnu", "message_id": "1"},
    )


def fill(path: str, world: World) -> list[str]:
    """Concrete URLs for a route template (the V1 route: one per script)."""
    if "{script}" in path:
        return [path.replace("{script}", script) for script in V1_SCRIPTS]
    url = path
    for name in [p.strip("{}") for p in path.split("/") if p.startswith("{")]:
        value = world.values["group"] if name == "name" and "/groups/" in path else world.values.get(name)
        assert value is not None, f"{path}: no value for {{{name}}}; add one to the isolation matrix"
        url = url.replace("{" + name + "}", value)
    return [url]


def query(world: World) -> dict[str, str]:
    return {"siren": SIREN_A, "id_e": world.values["id_e"], "id_d": world.values["id_d"], "type": "actes-generique",
            "field": "arrete", "field_name": "arrete"}


def names_a_resource(path: str, url: str) -> bool:
    if url.startswith("/api/") and url.endswith(".php"):
        return url.rsplit("/", 1)[1][:-4] not in GLOBAL_V1
    return any("{" + p + "}" in path for p in A_RESOURCES) or "/groups/{name}" in path


async def request(client: httpx.AsyncClient, method: str, url: str, world: World, credential: str | None,
                  console_cookie: str | None) -> httpx.Response:
    headers: dict[str, str] = {}
    if url.startswith("/console"):
        client.cookies.clear()
        if console_cookie:
            client.cookies.set("dematbus_console", console_cookie, path="/console")
    elif credential:
        if url.startswith("/api/v1"):
            headers["Authorization"] = f"Bearer {credential}"
        else:
            headers["Authorization"] = "Basic " + base64.b64encode(f"apikey:{credential}".encode()).decode()
    body: dict[str, Any] = {"json": {}} if url.startswith("/api/v1") and method != "GET" else {}
    return await client.request(method, url, params=query(world), headers=headers, **body)


def writes(method: str, url: str) -> bool:
    if url.startswith("/api/") and url.endswith(".php"):
        return url.rsplit("/", 1)[1][:-4] in V1_WRITES
    return method != "GET"


def refused(resp: httpx.Response) -> bool:
    if resp.status_code >= 400:
        return True
    if resp.status_code in (302, 303) and "/console/login" in resp.headers.get("location", ""):
        return True
    try:
        return resp.json().get("status") == "error"  # Pastell V1: errors with HTTP 200
    except (ValueError, AttributeError):
        return False


@pytest.fixture
async def world_client(settings, store, keys):  # type: ignore[no-untyped-def]
    app = create_app(settings.model_copy(update={"auth_fail_limit": 100_000}), store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        world = await _seed(client, store, keys)
        yield app, client, world


async def _console_cookie(client: httpx.AsyncClient, key: str) -> str | None:
    client.cookies.clear()
    resp = await client.post("/console/login", data={"key": key, "next": ""})
    return resp.cookies.get("dematbus_console") if resp.status_code == 303 else None


async def test_every_route_keeps_each_collectivite_to_itself(world_client) -> None:  # type: ignore[no-untyped-def]
    app, client, world = world_client
    routes = all_routes(app)
    assert len(routes) >= 60
    cookies = {who: await _console_cookie(client, key) for who, key in world.keys.items()}
    assert cookies["own"] and cookies["other"] and cookies["reporter"]
    assert not cookies["wrong_role"] and not cookies["revoked"]
    problems: list[str] = []
    ordered = sorted(routes, key=lambda r: r[0] == "DELETE")  # deletions last: the others see A's resources
    for method, path in ordered:
        for url in fill(path, world):
            public = path in PUBLIC
            for who in ("none", "revoked", "wrong_role", "reporter", "other", "own"):
                key = world.keys.get(who)
                resp = await request(client, method, url, world, key, cookies.get(who))
                where = f"{method} {url} [{who}] -> {resp.status_code}"
                # /readyz answers 503 by design when a dependency is missing (no broker here).
                if resp.status_code >= 500 and not (path == "/readyz" and resp.status_code == 503):
                    problems.append(f"{where}: server error")
                    continue
                if who not in ("own", "reporter") and MARKER in resp.text:
                    problems.append(f"{where}: shows A's data")
                if who in ("none", "revoked") and not public and not refused(resp):
                    problems.append(f"{where}: answered without a valid key")
                if who in ("none", "revoked") and not public and url.startswith("/api") and resp.status_code not in (401, 429):
                    problems.append(f"{where}: expected 401")
                if who == "other" and not public and names_a_resource(path, url) and not refused(resp):
                    problems.append(f"{where}: B's key reached one of A's resources")
                if who == "wrong_role" and not public and not refused(resp):
                    problems.append(f"{where}: a key with the rh role alone was answered")
                if who == "reporter" and writes(method, url) and not public and not refused(resp):
                    problems.append(f"{where}: a reporter key changed something")
                if who == "own" and not public and resp.status_code == 401:
                    problems.append(f"{where}: own key refused")
    assert not problems, "\n".join(problems)


async def test_b_key_cannot_change_or_delete_a_group_of_a(world_client) -> None:  # type: ignore[no-untyped-def]
    _, client, world = world_client
    other = {"Authorization": f"Bearer {world.keys['other']}"}
    renamed = await client.put("/api/v1/groups/grp-a", headers=other, json={"label": "pris", "members": []})
    assert renamed.status_code == 403 and renamed.json()["error"]["code"] == "group_out_of_scope"
    removed = await client.delete("/api/v1/groups/grp-a", headers=other)
    assert removed.status_code == 403 and removed.json()["error"]["code"] == "group_out_of_scope"
    still = await client.get("/api/v1/groups/grp-a", headers={"Authorization": f"Bearer {world.keys['own']}"})
    assert still.json()["members"] == [SIREN_A]
