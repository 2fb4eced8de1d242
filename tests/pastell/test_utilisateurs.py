"""Pastell users and roles on dematbus API keys (`/utilisateur`, `/role`)."""

from __future__ import annotations

import httpx

from tests.conftest import SIREN_A, SIREN_B
from tests.pastell.conftest import basic, id_e_of


async def me(http: httpx.AsyncClient, key: str) -> dict:  # type: ignore[type-arg]
    tokens = (await http.get("/api/v2/utilisateur/token", headers=basic(key))).json()
    assert len(tokens) == 1 and "token" not in tokens[0]  # the key itself, never its value
    resp = await http.get(f"/api/v2/utilisateur/{tokens[0]['id_u']}", headers=basic(key))
    assert resp.status_code == 200
    return resp.json()


async def test_megacte_login_reads_its_own_user(http: httpx.AsyncClient, keys) -> None:  # type: ignore[no-untyped-def]
    user = await me(http, keys["a"])
    id_e = await id_e_of(http, keys["a"], SIREN_A)
    assert set(user) >= {"id_u", "login", "nom", "prenom", "email", "id_e"}
    assert user["id_e"] == str(id_e) and all(isinstance(user[k], str) for k in ("id_u", "login", "id_e"))
    root = await me(http, keys["admin"])
    assert root["id_e"] == "0"  # a key for every collectivité: the root entité


async def test_who_sees_which_user(http: httpx.AsyncClient, keys, admin_a) -> None:  # type: ignore[no-untyped-def]
    def logins(resp: httpx.Response) -> set[str]:
        assert resp.status_code == 200, resp.text
        return {u["id_u"] for u in resp.json()}

    ids = {name: (await me(http, key))["id_u"] for name, key in {**keys, "admin_a": admin_a}.items()}
    assert logins(await http.get("/api/v2/utilisateur", headers=basic(keys["a"]))) == {ids["a"]}
    assert logins(await http.get("/api/v2/utilisateur", headers=basic(admin_a))) == {
        ids["a"], ids["reporter_a"], ids["admin_a"]}  # the keys within its own scope, not B's nor "*"
    assert logins(await http.get("/api/v2/utilisateur", headers=basic(keys["admin"]))) == set(ids.values())
    id_e_b = await id_e_of(http, keys["admin"], SIREN_B)
    assert logins(await http.get(f"/api/v2/utilisateur?id_e={id_e_b}", headers=basic(keys["admin"]))) == {
        ids["b"], ids["admin"]}
    # Tenancy: another collectivité's user answers like a missing one, and cannot be touched.
    for method in ("GET", "PATCH", "DELETE"):
        resp = await http.request(method, f"/api/v2/utilisateur/{ids['b']}", headers=basic(admin_a))
        assert resp.status_code == 404 and resp.json()["status"] == "error"
    denied = await http.get(f"/api/v2/utilisateur?id_e={id_e_b}", headers=basic(admin_a))
    assert denied.status_code == 403 and denied.json()["status"] == "error"


async def test_an_admin_creates_a_user_gives_it_a_role_then_deletes_it(http: httpx.AsyncClient, keys, admin_a) -> None:  # type: ignore[no-untyped-def]
    id_e = await id_e_of(http, admin_a, SIREN_A)
    created = await http.post("/api/v2/utilisateur", headers=basic(admin_a), data={
        "login": "webdelib", "nom": "Martin", "prenom": "Alix", "email": "alix@mairie.example", "id_e": str(id_e)})
    assert created.status_code == 201, created.text
    user, secret = created.json(), created.json()["api_key"]
    assert (user["login"], user["nom"], user["prenom"], user["email"], user["id_e"]) == (
        "webdelib", "Martin", "Alix", "alix@mairie.example", str(id_e))
    # The new key logs in with its login, but reaches nothing before it has a role.
    assert (await http.get("/api/v2/entite", headers=basic(secret, "webdelib"))).json() == []
    assert (await http.get(f"/api/v2/utilisateur/{user['id_u']}/role", headers=basic(admin_a))).json() == []
    granted = await http.post(f"/api/v2/utilisateur/{user['id_u']}/role", headers=basic(admin_a),
                              data={"role": "depositor", "id_e": str(id_e)})
    assert granted.status_code == 201 and granted.json() == {"result": "ok"}
    roles = (await http.get(f"/api/v2/utilisateur/{user['id_u']}/role", headers=basic(admin_a))).json()
    assert [(r["role"], r["id_e"]) for r in roles] == [("depositor", str(id_e))]
    assert "actes-generique:edition" in roles[0]["droits"]
    assert [e["siren"] for e in (await http.get("/api/v2/entite", headers=basic(secret))).json()] == [SIREN_A]
    made = await http.post(f"/api/v2/entite/{id_e}/document?type=actes-generique", headers=basic(secret))
    assert made.status_code == 201

    patched = await http.patch(f"/api/v2/utilisateur/{user['id_u']}", headers=basic(admin_a),
                               data={"nom": "Martin-Durand", "email": "alix.md@mairie.example"})
    assert patched.status_code == 200 and patched.json()["result"] == "ok"
    assert (await me(http, secret))["nom"] == "Martin-Durand"

    assert (await http.delete(f"/api/v2/utilisateur/{user['id_u']}", headers=basic(admin_a))).json() == {"result": "ok"}
    refused = await http.get("/api/v2/version", headers=basic(secret))
    assert refused.status_code == 401 and refused.json()["status"] == "error"
    assert (await http.get(f"/api/v2/utilisateur/{user['id_u']}", headers=basic(admin_a))).status_code == 404


async def test_user_creation_refusals(http: httpx.AsyncClient, keys, admin_a) -> None:  # type: ignore[no-untyped-def]
    id_e_a = await id_e_of(http, admin_a, SIREN_A)
    id_e_b = await id_e_of(http, keys["admin"], SIREN_B)
    cases = [
        (keys["a"], {"login": "x", "id_e": str(id_e_a)}, 403),  # a depositor administers nobody
        (admin_a, {"login": "x", "id_e": str(id_e_b)}, 403),  # another collectivité
        (admin_a, {"login": "x", "id_e": "0"}, 403),  # the root needs a key for every collectivité
        (admin_a, {"login": "x", "id_e": str(id_e_a), "password": "secret"}, 400),  # dematbus makes the key
        (admin_a, {"login": "", "id_e": str(id_e_a)}, 400),
        (admin_a, {"login": "x", "id_e": str(id_e_a), "email": "not-an-email"}, 400),
        (admin_a, {"login": "admin A", "id_e": str(id_e_a)}, 409),  # the login of a live key
    ]
    for key, data, status in cases:
        resp = await http.post("/api/v2/utilisateur", headers=basic(key), data=data)
        assert resp.status_code == status, (data, resp.text)
        assert resp.json()["status"] == "error" and resp.json()["error-message"]
    own = await me(http, admin_a)
    for data in ({"password": "x"},):
        assert (await http.patch(f"/api/v2/utilisateur/{own['id_u']}", headers=basic(admin_a), data=data)).status_code == 400
    assert (await http.delete(f"/api/v2/utilisateur/{own['id_u']}", headers=basic(admin_a))).status_code == 400


async def test_roles_follow_the_key_product_and_never_widen(http: httpx.AsyncClient, keys, admin_a, root) -> None:  # type: ignore[no-untyped-def]
    id_e_a = await id_e_of(http, keys["admin"], SIREN_A)
    id_e_b = await id_e_of(http, keys["admin"], SIREN_B)
    catalogue = (await http.get("/api/v2/role", headers=basic(keys["a"]))).json()
    assert [r["role"] for r in catalogue] == ["depositor", "operator", "reporter", "admin", "rh"]
    reporter = (await me(http, keys["reporter_a"]))["id_u"]
    url = f"/api/v2/utilisateur/{reporter}/role"

    async def roles() -> list[tuple[str, str]]:
        return sorted((r["role"], r["id_e"]) for r in (await http.get(url, headers=basic(keys["admin"]))).json())

    # A second role on the same collectivité: fine.
    assert (await http.post(url, headers=basic(admin_a), data={"role": "depositor", "id_e": str(id_e_a)})).status_code == 201
    assert await roles() == [("depositor", str(id_e_a)), ("reporter", str(id_e_a))]
    # B with only one of its two roles cannot be expressed by a key (roles hold on every entité).
    widened = await http.post(url, headers=basic(root), data={"role": "reporter", "id_e": str(id_e_b)})
    assert widened.status_code == 400 and "toutes ses entités" in widened.json()["error-message"]
    assert await roles() == [("depositor", str(id_e_a)), ("reporter", str(id_e_a))]
    # Nobody hands out a role it does not hold, nor reaches beyond its own scope.
    assert (await http.post(url, headers=basic(admin_a), data={"role": "rh", "id_e": str(id_e_a)})).status_code == 403
    assert (await http.post(url, headers=basic(admin_a), data={"role": "reporter", "id_e": str(id_e_b)})).status_code == 403
    assert (await http.post(url, headers=basic(admin_a), data={"role": "pilote", "id_e": str(id_e_a)})).status_code == 404
    # Removing one role of a single-entité key.
    removed = await http.request("DELETE", f"{url}?role=depositor&id_e={id_e_a}", headers=basic(admin_a))
    assert removed.status_code == 200 and removed.json() == {"result": "ok"}
    assert await roles() == [("reporter", str(id_e_a))]
    # A one-role key extends to another collectivité, then ALL_ROLES takes it off again.
    assert (await http.post(url, headers=basic(root), data={"role": "reporter", "id_e": str(id_e_b)})).status_code == 201
    assert await roles() == [("reporter", str(id_e_a)), ("reporter", str(id_e_b))]
    assert (await http.request("DELETE", f"{url}?role=ALL_ROLES&id_e={id_e_b}", headers=basic(root))).status_code == 200
    assert await roles() == [("reporter", str(id_e_a))]
