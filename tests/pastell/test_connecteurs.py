"""Pastell connectors and entité–flux associations on a collectivité's connector configuration."""

from __future__ import annotations

import httpx

from bus.store.db import Store
from bus.store.models import Collectivite
from tests.conftest import SIREN_A, SIREN_B
from tests.pastell.conftest import basic, id_e_of


async def configuration(store: Store, siren: str) -> dict:  # type: ignore[type-arg]
    async with store.sessions() as session:
        coll = await session.get(Collectivite, siren)
        assert coll is not None
        return dict(coll.connectors)


async def by_slot(http: httpx.AsyncClient, key: str, id_e: int) -> dict[str, dict]:  # type: ignore[type-arg]
    rows = (await http.get(f"/api/v2/entite/{id_e}/connecteur", headers=basic(key))).json()
    return {r["libelle"].split(" ")[0]: r for r in rows}


async def test_connector_detail_shows_the_real_configuration_with_secrets_masked(http: httpx.AsyncClient, keys, store) -> None:  # type: ignore[no-untyped-def]
    id_e = await id_e_of(http, keys["a"], SIREN_A)
    tdt = (await by_slot(http, keys["a"], id_e))["tdt"]
    assert (tdt["id_connecteur"], tdt["type"], tdt["id_e"]) == ("s2low", "TdT", str(id_e))
    detail = (await http.get(f"/api/v2/entite/{id_e}/connecteur/{tdt['id_ce']}", headers=basic(keys["a"]))).json()
    real = (await configuration(store, SIREN_A))["tdt"]
    assert detail["content"] == detail["data"] == {"url": real["url"], "login": real["login"], "password": "********"}
    assert detail["action_possible"] == detail["action-possible"] == ["test-configuration"]
    other = await id_e_of(http, keys["b"], SIREN_B)  # another collectivité's connector: Pastell's error, no data
    denied = await http.get(f"/api/v2/entite/{other}/connecteur/{tdt['id_ce']}", headers=basic(keys["a"]))
    assert denied.status_code == 403 and set(denied.json()) == {"status", "error-message"}
    missing = await http.get(f"/api/v2/entite/{id_e}/connecteur/9999", headers=basic(keys["a"]))
    assert missing.status_code == 404 and missing.json()["status"] == "error"


async def test_create_configure_associate_then_dissociate_a_tdt_connector(http: httpx.AsyncClient, keys, admin_a, store) -> None:  # type: ignore[no-untyped-def]
    """pastell-admin / Mégalis provisioning: create, `content`, associate with the flux (§1.8, §1.9)."""
    id_e = await id_e_of(http, admin_a, SIREN_A)
    before = await by_slot(http, admin_a, id_e)
    created = await http.post(f"/api/v2/entite/{id_e}/connecteur/", headers=basic(admin_a),
                              data={"id_e": str(id_e), "libelle": "S²low de production", "id_connecteur": "s2low",
                                    "type": "TdT", "id_verrou": ""})
    assert created.status_code == 201, created.text
    id_ce = created.json()["id_ce"]
    assert created.json()["content"] == {}
    patched = await http.patch(f"/api/v2/entite/{id_e}/connecteur/{id_ce}/content/", headers=basic(admin_a), data={
        "url": "https://s2low.example.org", "login": "mairie-a", "password": "s3cret", "ignored": "x"})
    assert patched.status_code == 200 and patched.json()["result"] == "ok"
    assert patched.json()["content"] == {"url": "https://s2low.example.org", "login": "mairie-a", "password": "********"}
    assert (await configuration(store, SIREN_A))["tdt"]["url"] == "sim://s2low"  # not in use before associated

    associated = await http.post(f"/api/v2/entite/{id_e}/flux/actes-generique/connecteur/{id_ce}/",
                                 headers=basic(admin_a), data={"type": "TdT"})
    assert associated.status_code == 201 and set(associated.json()) == {"id_fe"}
    # The ACTES flow now transmits through it, with its real password.
    assert (await configuration(store, SIREN_A))["tdt"] == {
        "kind": "s2low", "url": "https://s2low.example.org", "login": "mairie-a", "password": "s3cret"}
    rows = (await http.get(f"/api/v2/entite/{id_e}/flux?type=TdT", headers=basic(admin_a))).json()
    assert {(r["flux"], r["id_ce"]) for r in rows if r["id_ce"] == id_ce} == {
        ("actes-generique", id_ce), ("actes-automatique", id_ce)}  # both flux read the same slot
    id_fe = next(r["id_fe"] for r in rows if r["flux"] == "actes-generique")
    assert id_fe == associated.json()["id_fe"]

    # A masked secret sent back unchanged keeps its value; the former connector was set aside.
    await http.patch(f"/api/v2/entite/{id_e}/connecteur/{id_ce}/content", headers=basic(admin_a),
                     data={"password": "********", "login": "mairie-a2"})
    assert (await configuration(store, SIREN_A))["tdt"]["password"] == "s3cret"
    former = before["tdt"]["id_ce"]
    assert (await http.get(f"/api/v2/entite/{id_e}/connecteur/{former}", headers=basic(admin_a))).json()["content"][
        "url"] == "sim://s2low"
    in_use = await http.delete(f"/api/v2/entite/{id_e}/connecteur/{id_ce}", headers=basic(admin_a))
    assert in_use.status_code == 409 and in_use.json()["status"] == "error"
    assert (await http.delete(f"/api/v2/entite/{id_e}/connecteur/{former}", headers=basic(admin_a))).json() == {
        "result": "ok"}

    dissociated = await http.request("DELETE", f"/api/v2/entite/{id_e}/flux?id_fe={id_fe}", headers=basic(admin_a))
    assert dissociated.status_code == 200 and dissociated.json() == {"result": "ok"}
    assert "tdt" not in await configuration(store, SIREN_A)
    assert not [r for r in (await http.get(f"/api/v2/entite/{id_e}/flux", headers=basic(admin_a))).json()
                if r["type"] == "TdT" and r["flux"].startswith("actes")]
    again = await http.delete(f"/api/v2/entite/{id_e}/flux/{id_fe}", headers=basic(admin_a))
    assert again.status_code == 404 and again.json()["status"] == "error"


async def test_association_refusals(http: httpx.AsyncClient, keys, admin_a) -> None:  # type: ignore[no-untyped-def]
    id_e = await id_e_of(http, admin_a, SIREN_A)
    slots = await by_slot(http, admin_a, id_e)
    tdt, sae = slots["tdt"]["id_ce"], slots["sae"]["id_ce"]
    cases = [
        (f"helios-generique/connecteur/{tdt}", {"type": "TdT"}, 409),  # already the ACTES one: one use per connector
        (f"actes-generique/connecteur/{sae}", {"type": "TdT"}, 400),  # an SAE is no TdT
        (f"flux-inconnu/connecteur/{tdt}", {"type": "TdT"}, 400),
        (f"actes-generique/connecteur/9999", {"type": "TdT"}, 404),
    ]
    for path, data, status in cases:
        resp = await http.post(f"/api/v2/entite/{id_e}/flux/{path}", headers=basic(admin_a), data=data)
        assert resp.status_code == status, (path, resp.text)
        assert resp.json()["status"] == "error"


async def test_connector_administration_needs_an_admin_of_that_collectivite(http: httpx.AsyncClient, keys, admin_a) -> None:  # type: ignore[no-untyped-def]
    id_e_a = await id_e_of(http, admin_a, SIREN_A)
    id_e_b = await id_e_of(http, keys["b"], SIREN_B)
    tdt = (await by_slot(http, admin_a, id_e_a))["tdt"]["id_ce"]
    attempts = [
        (keys["a"], "POST", f"/api/v2/entite/{id_e_a}/connecteur", {"id_connecteur": "s2low", "libelle": "x"}),
        (keys["a"], "PATCH", f"/api/v2/entite/{id_e_a}/connecteur/{tdt}/content", {"url": "https://evil.example"}),
        (keys["a"], "POST", f"/api/v2/entite/{id_e_a}/flux/actes-generique/connecteur/{tdt}", {"type": "TdT"}),
        (admin_a, "POST", f"/api/v2/entite/{id_e_b}/connecteur", {"id_connecteur": "s2low", "libelle": "x"}),
        (admin_a, "GET", f"/api/v2/entite/{id_e_b}/flux", {}),
    ]
    for key, method, path, data in attempts:
        resp = await http.request(method, path, headers=basic(key), data=data or None)
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.json()["status"] == "error"
    unknown = await http.post(f"/api/v2/entite/{id_e_a}/connecteur", headers=basic(admin_a),
                              data={"id_connecteur": "depot-pastell", "libelle": "GED"})
    assert unknown.status_code == 400 and unknown.json()["error-message"] == "Aucun connecteur du type « depot-pastell »"
    cert = await http.post(f"/api/v2/entite/{id_e_a}/connecteur", headers=basic(admin_a),
                           data={"id_connecteur": "signature-locale", "libelle": "Certificat"})
    path_field = await http.patch(f"/api/v2/entite/{id_e_a}/connecteur/{cert.json()['id_ce']}/content",
                                  headers=basic(admin_a), data={"key_path": "/etc/shadow"})
    assert path_field.status_code == 400  # server files are set with the command line only


async def test_connector_action_checks_the_configuration(http: httpx.AsyncClient, admin_a) -> None:  # type: ignore[no-untyped-def]
    id_e = await id_e_of(http, admin_a, SIREN_A)
    tdt = (await by_slot(http, admin_a, id_e))["tdt"]["id_ce"]
    ok = await http.post(f"/api/v2/entite/{id_e}/connecteur/{tdt}/action/test-configuration", headers=basic(admin_a))
    assert ok.status_code == 201 and ok.json()["result"] is True and ok.json()["last_message"]
    parked = (await http.post(f"/api/v2/entite/{id_e}/connecteur", headers=basic(admin_a),
                              data={"id_connecteur": "as@lae-rest", "libelle": "SAE 2"})).json()["id_ce"]
    idle = await http.post(f"/api/v2/entite/{id_e}/connecteur/{parked}/action/test-configuration", headers=basic(admin_a))
    assert idle.status_code == 201 and idle.json()["result"] is False
    unknown = await http.post(f"/api/v2/entite/{id_e}/connecteur/{tdt}/action/recup-classification", headers=basic(admin_a))
    assert unknown.status_code == 404 and unknown.json()["status"] == "error"
    via_flux = await http.post(f"/api/v2/entite/{id_e}/flux/actes-generique/action", headers=basic(admin_a),
                               data={"type": "TdT", "action": "test-configuration"})
    assert via_flux.status_code == 201 and via_flux.json()["result"] is True


async def test_families_and_catalogue(http: httpx.AsyncClient, keys) -> None:  # type: ignore[no-untyped-def]
    families = (await http.get("/api/v2/familleConnecteur", headers=basic(keys["a"]))).json()
    assert {"signature", "TdT", "SAE"} <= set(families)
    assert (await http.get("/api/v2/familleConnecteur/TdT", headers=basic(keys["a"]))).json() == ["s2low"]
    s2low = (await http.get("/api/v2/familleConnecteur/TdT/s2low", headers=basic(keys["a"]))).json()
    assert s2low["type"] == "TdT" and s2low["formulaire"]["password"]["type"] == "password"
    assert (await http.get("/api/v2/familleConnecteur/TdT/inconnu", headers=basic(keys["a"]))).json() == []
    frequences = (await http.get("/api/v2/frequenceConnecteur", headers=basic(keys["a"]))).json()
    assert [f["id_cf"] for f in frequences] == ["1", "2"]
    assert (await http.get("/api/v2/frequenceConnecteur/2", headers=basic(keys["a"]))).json() == frequences[1]
    assert (await http.get("/api/v2/frequenceConnecteur/7", headers=basic(keys["a"]))).status_code == 404
    assert (await http.get("/api/v2/extension", headers=basic(keys["a"]))).json() == {"result": []}


def test_secrets_are_masked_and_a_masked_value_sent_back_keeps_the_secret() -> None:
    from connectors.inbound.pastell import connecteurs as cfg

    local = cfg.BY_ID["signature-locale"]
    config = {"kind": "xades", "cert_path": "/srv/c.pem", "key_path": "/srv/k.pem", "password_env": "KEY_PASSWORD"}
    assert cfg.masked(config, local) == {"cert_path": "/srv/c.pem", "key_path": "/srv/k.pem", "password_env": "KEY_PASSWORD"}
    assert cfg.masked({"kind": "fast", "url": "u", "client_secret": "x"}, None) == {"url": "u", "client_secret": cfg.MASK}
    s2low = cfg.BY_ID["s2low"]
    kept = cfg.edited({"kind": "s2low", "password": "s3cret"}, s2low, {"password": cfg.MASK, "login": "l"}, {})
    assert kept == {"kind": "s2low", "password": "s3cret", "login": "l"}
