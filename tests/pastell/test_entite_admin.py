"""Pastell entité administration on dematbus collectivités."""

from __future__ import annotations

import httpx

from tests.conftest import SIREN_A, SIREN_B
from tests.pastell.conftest import basic, deposit_acte, id_e_of

NEW = "491011698"


async def test_a_root_admin_creates_edits_and_deletes_a_collectivite(http: httpx.AsyncClient, keys) -> None:  # type: ignore[no-untyped-def]
    root = basic(keys["admin"])
    created = await http.post("/api/v2/entite", headers=root, data={
        "denomination": "CC du Val", "siren": NEW, "type": "collectivite", "entite_mere": "0", "departement": "034",
        "arrondissement": "3", "nature": "44"})
    assert created.status_code == 201, created.text
    entite = created.json()
    assert (entite["denomination"], entite["siren"], entite["entite_fille"]) == ("CC du Val", NEW, [])
    id_e = entite["id_e"]
    assert NEW in [e["siren"] for e in (await http.get("/api/v2/entite", headers=root)).json()]
    # No connector until one is created and associated through the connector routes.
    assert (await http.get(f"/api/v2/entite/{id_e}/connecteur", headers=root)).json() == []

    patched = await http.patch(f"/api/v2/entite/{id_e}", headers=root, data={"denomination": "CC du Val de Démo"})
    assert patched.status_code == 200 and patched.json()["result"] == "ok"
    assert (await http.get(f"/api/v2/entite/{id_e}", headers=root)).json()["denomination"] == "CC du Val de Démo"

    assert (await http.delete(f"/api/v2/entite/{id_e}", headers=root)).json() == {"result": "ok"}
    gone = await http.get(f"/api/v2/entite/{id_e}", headers=root)
    assert gone.status_code == 403 and gone.json()["status"] == "error"


async def test_entite_refusals(http: httpx.AsyncClient, keys, admin_a) -> None:  # type: ignore[no-untyped-def]
    root = basic(keys["admin"])
    base = {"denomination": "X", "siren": NEW, "departement": "034"}
    cases = [
        (admin_a, base, 403),  # a collectivité's admin does not create collectivités
        (keys["admin"], {**base, "departement": ""}, 400),  # the préfecture needs it
        (keys["admin"], {**base, "siren": "123456789"}, 400),  # Luhn
        (keys["admin"], {**base, "siren": SIREN_A}, 409),
        (keys["admin"], {**base, "type": "service", "entite_mere": "1"}, 400),  # no tree in dematbus
        (keys["admin"], {**base, "denomination": ""}, 400),
    ]
    for key, data, status in cases:
        resp = await http.post("/api/v2/entite", headers=basic(key), data=data)
        assert resp.status_code == status, (data, resp.text)
        assert resp.json()["status"] == "error"
    id_e_a = await id_e_of(http, admin_a, SIREN_A)
    id_e_b = await id_e_of(http, keys["admin"], SIREN_B)
    assert (await http.patch(f"/api/v2/entite/{id_e_a}", headers=basic(admin_a), data={"denomination": "A"})).status_code == 200
    assert (await http.patch(f"/api/v2/entite/{id_e_b}", headers=basic(admin_a), data={"denomination": "B"})).status_code == 403
    assert (await http.patch(f"/api/v2/entite/{id_e_a}", headers=basic(keys["a"]), data={"denomination": "A"})).status_code == 403
    assert (await http.patch(f"/api/v2/entite/{id_e_a}", headers=basic(admin_a), data={"siren": SIREN_B})).status_code == 400
    # A collectivité with documents keeps them, and stays.
    await deposit_acte(http, keys["a"], SIREN_A, "KEEP_1")
    kept = await http.delete(f"/api/v2/entite/{id_e_a}", headers=root)
    assert kept.status_code == 409 and kept.json()["status"] == "error"
    assert (await http.delete(f"/api/v2/entite/{id_e_b}", headers=basic(admin_a))).status_code == 403
