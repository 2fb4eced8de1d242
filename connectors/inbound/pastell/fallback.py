"""What no Pastell route answers, answered in Pastell's shape: the operations of Pastell's API
dematbus does not serve (with the reason), unknown resources (404) and known resources asked
with another method (405). Registered last."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from bus.store.models import ApiKey
from connectors.inbound.pastell.context import Pastell
from connectors.inbound.pastell.errors import PastellError
from connectors.inbound.pastell.params import Params

V2 = "/api/v2"
FILES = ("Les fichiers d'un connecteur dematbus (certificats, clés) sont des chemins du serveur, réglés avec la "
         "commande dematbus collectivite")
TOKENS = "Un jeton dematbus est une clé d'API : dematbus apikey create, DELETE /utilisateur/{id_u} la révoque"
TIMING = ("Les délais se règlent dans la configuration de dematbus (DEMATBUS_POLL_INTERVAL, DEMATBUS_RETRY_BACKOFF, "
          "DEMATBUS_MAX_ATTEMPTS)")
EXTENSIONS = "dematbus ne charge pas d'extension : ses flux sont les fichiers du paquet"
NOT_SERVED: list[tuple[str, str, str]] = [
    ("POST", "/entite/{id_e}/activate", "dematbus n'a pas d'état actif ou inactif d'une collectivité"),
    ("POST", "/entite/{id_e}/deactivate", "dematbus n'a pas d'état actif ou inactif d'une collectivité"),
    ("POST", "/entite/{id_e}/connecteur/{id_ce}", FILES),
    ("POST", "/entite/{id_e}/connecteur/{id_ce}/file/{field}", FILES),
    ("POST", "/entite/{id_e}/connecteur/{id_ce}/file/{field}/{num}", FILES),
    ("GET", "/entite/{id_e}/connecteur/{id_ce}/file/{field}/{num}", FILES),
    ("DELETE", "/entite/{id_e}/connecteur/{id_ce}/file/{field}/{num}", FILES),
    ("POST", "/entite/{id_e}/connecteur/{id_ce}/chunk", FILES),
    ("POST", "/entite/{id_e}/document/{id_d}/chunk",
     "Pas d'envoi par morceaux : un fichier va en une requête, jusqu'à la taille que son flux admet"),
    ("POST", "/utilisateur/token", TOKENS),
    ("POST", "/utilisateur/{id_u}/token", TOKENS),
    ("POST", "/utilisateur/token/{token_id}/renew", TOKENS),
    ("POST", "/utilisateur/{id_u}/token/{token_id}/renew", TOKENS),
    ("DELETE", "/utilisateur/token/{token_id}", TOKENS),
    ("DELETE", "/utilisateur/{id_u}/token/{token_id}", TOKENS),
    ("POST", "/utilisateur/{id_u}/activate", "Une clé révoquée ne revient pas : créez-en une autre"),
    ("POST", "/utilisateur/{id_u}/deactivate", "DELETE /utilisateur/{id_u} révoque la clé (définitivement)"),
    ("POST", "/extension", EXTENSIONS),
    ("PATCH", "/extension/{id_extension}", EXTENSIONS),
    ("DELETE", "/extension/{id_extension}", EXTENSIONS),
    ("GET", "/journal/{id_j}/jeton",
     "Le journal dematbus est chaîné par empreintes (dematbus journal verify), sans jeton d'horodatage RFC 3161"),
    ("POST", "/frequenceConnecteur", TIMING),
    ("PATCH", "/frequenceConnecteur/{id_cf}", TIMING),
    ("DELETE", "/frequenceConnecteur/{id_cf}", TIMING),
]
PASTELL_METHODS = {"GET", "POST", "PATCH", "DELETE"}


def build_router(p: Pastell) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def refuse(reason: str) -> Any:
        async def endpoint(request: Request) -> Response:
            async def run(key: ApiKey, _: Params) -> Any:
                raise PastellError(405, f"dematbus ne sert pas cette opération : {reason}")
            return await p.call(request, run)
        return endpoint

    for method, path, reason in NOT_SERVED:
        router.add_api_route(f"{V2}{path}", refuse(reason), methods=[method])

    @router.api_route(f"{V2}/{{rest:path}}", methods=["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"])
    async def unknown(request: Request, rest: str) -> Response:
        async def run(key: ApiKey, _: Params) -> Any:
            if request.method not in PASTELL_METHODS:
                raise PastellError(405, "Cette méthode n'est pas utilisable sur l'API Pastell")
            if any(route.matches(request.scope)[0] == Match.PARTIAL for route in request.app.router.routes):
                raise PastellError(405, f"La méthode {request.method.lower()} n'existe pas pour cette ressource")
            raise PastellError(404, f"La ressource {rest.split('/')[0]} n'a pas été trouvée")
        return await p.call(request, run)

    return router
