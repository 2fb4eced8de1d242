"""Pastell's error body everywhere, and every operation of Pastell's OpenAPI description either
routed to a handler or refused on purpose with the reason."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import SIREN_A
from tests.pastell.conftest import basic, id_e_of

# The operations of Pastell 4.1.18's OpenAPI description (method, path, tag), restated.
OPERATIONS = [
    ("GET", "/version", "version"), ("GET", "/version/allo", "version"),
    ("GET", "/entite", "entite"), ("POST", "/entite", "entite"), ("GET", "/entite/{id_e}", "entite"),
    ("PATCH", "/entite/{id_e}", "entite"), ("DELETE", "/entite/{id_e}", "entite"),
    ("POST", "/entite/{id_e}/activate", "entite"), ("POST", "/entite/{id_e}/deactivate", "entite"),
    ("GET", "/entite/{id_e}/connecteur", "connecteur"), ("POST", "/entite/{id_e}/connecteur", "connecteur"),
    ("GET", "/entite/all/connecteur", "connecteur"), ("GET", "/entite/all/connecteur/{id_connecteur}", "connecteur"),
    ("GET", "/entite/{id_e}/connecteur/{id_ce}", "connecteur"), ("POST", "/entite/{id_e}/connecteur/{id_ce}", "connecteur"),
    ("PATCH", "/entite/{id_e}/connecteur/{id_ce}", "connecteur"),
    ("DELETE", "/entite/{id_e}/connecteur/{id_ce}", "connecteur"),
    ("PATCH", "/entite/{id_e}/connecteur/{id_ce}/content", "connecteur"),
    ("POST", "/entite/{id_e}/connecteur/{id_ce}/chunk", "connecteur"),
    ("POST", "/entite/{id_e}/connecteur/{id_ce}/action/{action_name}", "connecteur"),
    ("GET", "/entite/{id_e}/connecteur/{id_ce}/file/{field}/{num}", "connecteur"),
    ("DELETE", "/entite/{id_e}/connecteur/{id_ce}/file/{field}/{num}", "connecteur"),
    ("GET", "/entite/{id_e}/connecteur/{id_ce}/externalData/{field}", "connecteur"),
    ("PATCH", "/entite/{id_e}/connecteur/{id_ce}/externalData/{field}", "connecteur"),
    ("GET", "/entite/{id_e}/document", "document"), ("POST", "/entite/{id_e}/document", "document"),
    ("GET", "/entite/{id_e}/document/count", "document"), ("GET", "/entite/{id_e}/document/{id_d}", "document"),
    ("POST", "/entite/{id_e}/document/{id_d}", "document"), ("PATCH", "/entite/{id_e}/document/{id_d}", "document"),
    ("DELETE", "/entite/{id_e}/document/{id_d}", "document"),
    ("POST", "/entite/{id_e}/document/{id_d}/action/{action_name}", "document"),
    ("POST", "/entite/{id_e}/document/{id_d}/chunk", "document"),
    ("GET", "/entite/{id_e}/document/{id_d}/externalData/{field}", "document"),
    ("PATCH", "/entite/{id_e}/document/{id_d}/externalData/{field}", "document"),
    ("GET", "/entite/{id_e}/document/{id_d}/file/{field}/{num}", "document"),
    ("DELETE", "/entite/{id_e}/document/{id_d}/file/{field}/{num}", "document"),
    ("GET", "/flux", "flux"), ("GET", "/flux/{id_flux}", "flux"), ("GET", "/flux/{id_flux}/action", "flux"),
    ("GET", "/utilisateur", "utilisateur"), ("POST", "/utilisateur", "utilisateur"),
    ("GET", "/utilisateur/token", "utilisateur"), ("POST", "/utilisateur/token", "utilisateur"),
    ("GET", "/utilisateur/{id_u}", "utilisateur"), ("PATCH", "/utilisateur/{id_u}", "utilisateur"),
    ("DELETE", "/utilisateur/{id_u}", "utilisateur"), ("POST", "/utilisateur/{id_u}/activate", "utilisateur"),
    ("POST", "/utilisateur/{id_u}/deactivate", "utilisateur"), ("POST", "/utilisateur/{id_u}/token", "utilisateur"),
    ("POST", "/utilisateur/token/{token_id}/renew", "utilisateur"),
    ("POST", "/utilisateur/{id_u}/token/{token_id}/renew", "utilisateur"),
    ("DELETE", "/utilisateur/token/{token_id}", "utilisateur"),
    ("DELETE", "/utilisateur/{id_u}/token/{token_id}", "utilisateur"),
    ("GET", "/utilisateur/{id_u}/role", "role"), ("POST", "/utilisateur/{id_u}/role", "role"),
    ("DELETE", "/utilisateur/{id_u}/role", "role"), ("POST", "/utilisateur/{id_u}/role/add", "role"),
    ("POST", "/utilisateur/{id_u}/role/delete", "role"), ("GET", "/role", "role"),
    ("GET", "/extension", "extension"), ("POST", "/extension", "extension"),
    ("GET", "/extension/{id_extension}", "extension"), ("PATCH", "/extension/{id_extension}", "extension"),
    ("DELETE", "/extension/{id_extension}", "extension"),
    ("GET", "/journal", "journal"), ("GET", "/journal/{id_j}", "journal"), ("GET", "/journal/{id_j}/jeton", "journal"),
    ("GET", "/entite/{id_e}/flux", "entite-flux"), ("POST", "/entite/{id_e}/flux/{flux}/connecteur/{id_ce}", "entite-flux"),
    ("POST", "/entite/{id_e}/flux/{flux}/action", "entite-flux"), ("DELETE", "/entite/{id_e}/flux/{id_fe}", "entite-flux"),
    ("GET", "/familleConnecteur", "familleConnecteur"), ("GET", "/familleConnecteur/{famille}", "familleConnecteur"),
    ("GET", "/familleConnecteur/{famille}/{id_connecteur}", "familleConnecteur"),
    ("GET", "/frequenceConnecteur", "frequenceConnecteur"), ("POST", "/frequenceConnecteur", "frequenceConnecteur"),
    ("GET", "/frequenceConnecteur/{id_cf}", "frequenceConnecteur"),
    ("PATCH", "/frequenceConnecteur/{id_cf}", "frequenceConnecteur"),
    ("DELETE", "/frequenceConnecteur/{id_cf}", "frequenceConnecteur"),
]
NOT_SERVED = {  # on purpose, each with its reason in the answer (connectors/inbound/pastell/fallback.py)
    ("POST", "/entite/{id_e}/activate"), ("POST", "/entite/{id_e}/deactivate"),
    ("POST", "/entite/{id_e}/connecteur/{id_ce}"), ("POST", "/entite/{id_e}/connecteur/{id_ce}/chunk"),
    ("GET", "/entite/{id_e}/connecteur/{id_ce}/file/{field}/{num}"),
    ("DELETE", "/entite/{id_e}/connecteur/{id_ce}/file/{field}/{num}"),
    ("POST", "/entite/{id_e}/document/{id_d}/chunk"),
    ("POST", "/utilisateur/token"), ("POST", "/utilisateur/{id_u}/activate"), ("POST", "/utilisateur/{id_u}/deactivate"),
    ("POST", "/utilisateur/{id_u}/token"), ("POST", "/utilisateur/token/{token_id}/renew"),
    ("POST", "/utilisateur/{id_u}/token/{token_id}/renew"), ("DELETE", "/utilisateur/token/{token_id}"),
    ("DELETE", "/utilisateur/{id_u}/token/{token_id}"),
    ("POST", "/extension"), ("PATCH", "/extension/{id_extension}"), ("DELETE", "/extension/{id_extension}"),
    ("GET", "/journal/{id_j}/jeton"),
    ("POST", "/frequenceConnecteur"), ("PATCH", "/frequenceConnecteur/{id_cf}"), ("DELETE", "/frequenceConnecteur/{id_cf}"),
}
# Ids nobody has: every routed handler answers (403, 404, 400…) without changing anything.
IDS = {"id_e": "999", "id_ce": "999", "id_d": "nope", "id_u": "999", "id_j": "999", "id_fe": "999", "id_cf": "9",
       "token_id": "abc", "id_extension": "1", "id_connecteur": "s2low", "action_name": "verif-tdt", "field": "arrete",
       "num": "0", "id_flux": "actes-generique", "flux": "actes-generique", "famille": "TdT"}


def pastell_error(resp: httpx.Response) -> dict[str, str]:
    body = resp.json()
    assert set(body) == {"status", "error-message"} and body["status"] == "error" and body["error-message"], resp.text
    return body  # type: ignore[no-any-return]


def test_the_description_has_80_operations_and_22_are_refused_on_purpose() -> None:
    assert len(OPERATIONS) == len(set(OPERATIONS)) == 80
    assert NOT_SERVED <= {(m, p) for m, p, _ in OPERATIONS} and len(NOT_SERVED) == 22


async def test_every_operation_is_routed_or_refused_with_its_reason(http: httpx.AsyncClient, root) -> None:  # type: ignore[no-untyped-def]
    for method, path, _tag in OPERATIONS:
        url = "/api/v2" + re.sub(r"\{(\w+)\}", lambda m: IDS[m[1]], path)
        resp = await http.request(method, url, headers=basic(root))
        assert resp.headers["content-type"].startswith("application/json"), (method, path)
        if (method, path) in NOT_SERVED:
            assert resp.status_code == 405, (method, path, resp.text)
            assert pastell_error(resp)["error-message"].startswith("dematbus ne sert pas cette opération : ")
        elif resp.status_code >= 400:
            message = pastell_error(resp)["error-message"]
            assert resp.status_code != 405 and "n'a pas été trouvée" not in message, (method, path, resp.text)


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/api/v2/nimporte/quoi", 404),
    ("GET", "/api/v2/entite/1/inconnu", 404),
    ("PATCH", "/api/v2/version", 405),  # a known resource, another method
    ("PUT", "/api/v2/entite", 405),  # no PUT anywhere in Pastell's API
    ("GET", "/api/v2/entite/abc", 400),  # malformed ids (FastAPI's 422 before)
    ("GET", "/api/v2/entite/abc/document", 400),
    ("GET", "/api/v2/entite/1/document/x/file/arrete/deux", 400),
    ("GET", "/api/v2/entite/1/connecteur/x", 400),
    ("GET", "/api/v2/utilisateur/x", 400),
    ("GET", "/api/v2/document/count?id_e=abc", 400),
    ("GET", "/api/v2/entite/1/document?offset=dix", 400),
    ("GET", "/api/v2/journal?limit=-1", 400),
    ("GET", "/api/inconnu.php", 404),
])
async def test_every_refusal_has_pastell_body(http: httpx.AsyncClient, keys, method: str, path: str, status: int) -> None:  # type: ignore[no-untyped-def]
    await id_e_of(http, keys["a"], SIREN_A)  # numbers the entités: id_e 1 is the key's own
    resp = await http.request(method, path, headers=basic(keys["a"]))
    assert resp.status_code == status, resp.text
    pastell_error(resp)


async def test_no_credentials_or_a_wrong_key_answer_401_in_pastell_shape(http: httpx.AsyncClient, keys) -> None:  # type: ignore[no-untyped-def]
    for path in ("/api/v2/nimporte/quoi", "/api/v2/entite/abc", "/api/version.php"):  # 9 failures: under the limit
        for headers in ({}, basic("dmb_wrong"), {"Authorization": "Bearer nope"}):
            resp = await http.get(path, headers=headers)
            assert resp.status_code == 401, (path, resp.text)
            assert resp.headers["www-authenticate"].startswith("Basic")
            pastell_error(resp)
