"""`/api/v2/` administration routes: utilisateur, role, entité administration, connecteur,
entite-flux, familleConnecteur, frequenceConnecteur, extension."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bus.config import Settings
from bus.retry import PollSchedule, RetryPolicy
from bus.store.models import ApiKey
from connectors.inbound.pastell import connecteurs as cfg
from connectors.inbound.pastell.context import Pastell
from connectors.inbound.pastell.errors import PastellError
from connectors.inbound.pastell.external import iparapheur_types
from connectors.inbound.pastell.params import Params, integer
from connectors.inbound.pastell.utilisateurs import role_list

V2 = "/api/v2"


def frequences(settings: Settings) -> list[dict[str, Any]]:
    """dematbus has two timing rules for every connector, set in its configuration: how pending
    remote effects are asked again, and how failed calls are retried."""
    polls, retry = PollSchedule.from_settings(settings), RetryPolicy.from_settings(settings)
    common = {"type_connecteur": "", "famille_connecteur": "", "id_connecteur": "", "id_ce": "0",
              "action_type": "", "type_document": "", "action": "", "id_verrou": ""}
    return [
        {**common, "id_cf": "1", "nom": "Interrogation des effets en attente (verif-*)",
         "frequence_en_minute": f"{polls.initial_interval / 60:g}",
         "expression": f"{polls.initial_interval:g} s, puis {polls.backoff_coefficient - 1:g} fois l'attente "
                       f"écoulée, au plus {polls.maximum_interval:g} s"},
        {**common, "id_cf": "2", "nom": "Reprise d'un appel en échec",
         "frequence_en_minute": f"{retry.initial_interval / 60:g}",
         "expression": f"{retry.initial_interval:g} s, multiplié par {retry.backoff_coefficient:g} à chaque essai "
                       f"(au plus {retry.maximum_interval:g} s), {retry.maximum_attempts} essais puis erreur"},
    ]


def build_router(p: Pastell) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    users, conn, entites = p.utilisateurs, p.connecteurs, p.entites

    def n(raw: str, name: str) -> int:
        return integer(raw, name)

    # -- utilisateur ------------------------------------------------------------------------------

    @router.get(f"{V2}/utilisateur")
    async def list_users(request: Request) -> Response:
        return await p.call(request, lambda k, q: users.list(k, n(q.get("id_e") or "0", "id_e") or None))

    @router.post(f"{V2}/utilisateur")
    async def create_user(request: Request) -> Response:
        return await p.call(request, lambda k, q: users.create(k, q.text_fields()), status=201)

    @router.get(f"{V2}/utilisateur/token")
    async def tokens(request: Request) -> Response:
        return await p.call(request, lambda k, q: users.tokens(k))

    @router.get(f"{V2}/utilisateur/{{id_u}}")
    async def user(request: Request, id_u: str) -> Response:
        return await p.call(request, lambda k, q: users.detail(k, n(id_u, "id_u")))

    @router.patch(f"{V2}/utilisateur/{{id_u}}")
    async def modify_user(request: Request, id_u: str) -> Response:
        return await p.call(request, lambda k, q: users.modify(k, n(id_u, "id_u"), q.text_fields()))

    @router.delete(f"{V2}/utilisateur/{{id_u}}")
    async def delete_user(request: Request, id_u: str) -> Response:
        return await p.call(request, lambda k, q: users.delete(k, n(id_u, "id_u")))

    # -- role -------------------------------------------------------------------------------------

    @router.get(f"{V2}/role")
    async def roles(request: Request) -> Response:
        return await p.call(request, lambda k, q: _const(role_list()))

    @router.get(f"{V2}/utilisateur/{{id_u}}/role")
    async def user_roles(request: Request, id_u: str) -> Response:
        return await p.call(request, lambda k, q: users.roles(k, n(id_u, "id_u")))

    async def change(key: ApiKey, q: Params, id_u: str, add: bool) -> Any:
        for role in q.get_list("role") or [""]:
            await users.change_role(key, n(id_u, "id_u"), role, q.get("id_e"), add=add)
        return {"result": "ok"}

    @router.post(f"{V2}/utilisateur/{{id_u}}/role")
    @router.post(f"{V2}/utilisateur/{{id_u}}/role/add")
    async def add_role(request: Request, id_u: str) -> Response:
        return await p.call(request, lambda k, q: change(k, q, id_u, True), status=201)

    @router.delete(f"{V2}/utilisateur/{{id_u}}/role")
    async def remove_role(request: Request, id_u: str) -> Response:
        return await p.call(request, lambda k, q: change(k, q, id_u, False))

    @router.post(f"{V2}/utilisateur/{{id_u}}/role/delete")
    async def remove_roles(request: Request, id_u: str) -> Response:
        return await p.call(request, lambda k, q: change(k, q, id_u, False), status=201)

    # -- entité administration --------------------------------------------------------------------

    @router.post(f"{V2}/entite")
    async def create_entite(request: Request) -> Response:
        return await p.call(request, lambda k, q: entites.create(k, q.text_fields()), status=201)

    @router.patch(f"{V2}/entite/{{id_e}}")
    async def modify_entite(request: Request, id_e: str) -> Response:
        return await p.call(request, lambda k, q: entites.modify(k, n(id_e, "id_e"), q.text_fields()))

    @router.delete(f"{V2}/entite/{{id_e}}")
    async def delete_entite(request: Request, id_e: str) -> Response:
        return await p.call(request, lambda k, q: entites.delete(k, n(id_e, "id_e")))

    # -- connecteur -------------------------------------------------------------------------------

    @router.get(f"{V2}/connecteur/all")
    @router.get(f"{V2}/connecteur/all/{{id_connecteur}}")
    @router.get(f"{V2}/entite/all/connecteur")
    @router.get(f"{V2}/entite/all/connecteur/{{id_connecteur}}")
    async def all_connecteurs(request: Request, id_connecteur: str | None = None) -> Response:
        return await p.call(request, lambda k, q: conn.all(k, id_connecteur))

    @router.get(f"{V2}/entite/{{id_e}}/connecteur")
    async def connecteurs(request: Request, id_e: str) -> Response:
        return await p.call(request, lambda k, q: conn.list(k, n(id_e, "id_e")))

    @router.post(f"{V2}/entite/{{id_e}}/connecteur")
    async def create_connecteur(request: Request, id_e: str) -> Response:
        return await p.call(request, lambda k, q: conn.create(
            k, n(id_e, "id_e"), q.get("id_connecteur") or "", q.get("libelle") or ""), status=201)

    @router.get(f"{V2}/entite/{{id_e}}/connecteur/{{id_ce}}")
    async def connecteur(request: Request, id_e: str, id_ce: str) -> Response:
        return await p.call(request, lambda k, q: conn.detail(k, n(id_e, "id_e"), n(id_ce, "id_ce")))

    @router.patch(f"{V2}/entite/{{id_e}}/connecteur/{{id_ce}}")
    async def edit_connecteur(request: Request, id_e: str, id_ce: str) -> Response:
        return await p.call(request, lambda k, q: conn.edit(k, n(id_e, "id_e"), n(id_ce, "id_ce"), q.get("libelle") or ""))

    @router.patch(f"{V2}/entite/{{id_e}}/connecteur/{{id_ce}}/content")
    async def edit_content(request: Request, id_e: str, id_ce: str) -> Response:
        return await p.call(request, lambda k, q: conn.edit_content(
            k, n(id_e, "id_e"), n(id_ce, "id_ce"), q.text_fields(), {name: q.get_list(name) for name in q.raw}))

    @router.delete(f"{V2}/entite/{{id_e}}/connecteur/{{id_ce}}")
    async def delete_connecteur(request: Request, id_e: str, id_ce: str) -> Response:
        return await p.call(request, lambda k, q: conn.delete(k, n(id_e, "id_e"), n(id_ce, "id_ce")))

    @router.post(f"{V2}/entite/{{id_e}}/connecteur/{{id_ce}}/action/{{action}}")
    async def connecteur_action(request: Request, id_e: str, id_ce: str, action: str) -> Response:
        return await p.call(request, lambda k, q: conn.action(k, n(id_e, "id_e"), n(id_ce, "id_ce"), action), status=201)

    @router.get(f"{V2}/entite/{{id_e}}/connecteur/{{id_ce}}/externalData/{{field}}")
    async def connecteur_external(request: Request, id_e: str, id_ce: str, field: str) -> Response:
        async def run(key: ApiKey, _: Params) -> Any:
            return _choices(await conn.options(key, n(id_e, "id_e"), n(id_ce, "id_ce")), field)
        return await p.call(request, run)

    @router.patch(f"{V2}/entite/{{id_e}}/connecteur/{{id_ce}}/externalData/{{field}}")
    async def connecteur_choose(request: Request, id_e: str, id_ce: str, field: str) -> Response:
        async def run(key: ApiKey, q: Params) -> Any:
            choice = q.get(field) or ""
            if choice not in _choices(await conn.options(key, n(id_e, "id_e"), n(id_ce, "id_ce")), field):
                raise PastellError(400, f"La valeur « {choice} » n'est pas un choix de {field}")
            return await conn.edit_content(key, n(id_e, "id_e"), n(id_ce, "id_ce"), {"type": choice}, {})
        return await p.call(request, run)

    # -- entite-flux ------------------------------------------------------------------------------

    @router.get(f"{V2}/entite/{{id_e}}/flux")
    async def associations(request: Request, id_e: str) -> Response:
        return await p.call(request, lambda k, q: conn.associations(k, n(id_e, "id_e"), q.get("flux"), q.get("type")))

    @router.post(f"{V2}/entite/{{id_e}}/flux/{{flux}}/connecteur/{{id_ce}}")
    async def associate(request: Request, id_e: str, flux: str, id_ce: str) -> Response:
        return await p.call(request, lambda k, q: conn.associate(
            k, n(id_e, "id_e"), flux, n(id_ce, "id_ce"), q.get("type")), status=201)

    @router.delete(f"{V2}/entite/{{id_e}}/flux")
    async def dissociate(request: Request, id_e: str) -> Response:
        return await p.call(request, lambda k, q: conn.dissociate(k, n(id_e, "id_e"), n(q.get("id_fe") or "", "id_fe")))

    @router.delete(f"{V2}/entite/{{id_e}}/flux/{{id_fe}}")
    async def dissociate_by_path(request: Request, id_e: str, id_fe: str) -> Response:
        return await p.call(request, lambda k, q: conn.dissociate(k, n(id_e, "id_e"), n(id_fe, "id_fe")))

    @router.post(f"{V2}/entite/{{id_e}}/flux/{{flux}}/action")
    async def flux_action(request: Request, id_e: str, flux: str) -> Response:
        return await p.call(request, lambda k, q: conn.flux_action(
            k, n(id_e, "id_e"), flux, q.get("type") or "", q.get("action") or ""), status=201)

    # -- familleConnecteur, frequenceConnecteur, extension ---------------------------------------

    @router.get(f"{V2}/familleConnecteur")
    async def familles(request: Request) -> Response:
        return await p.call(request, lambda k, q: _const([] if q.get("global") else cfg.families()))

    @router.get(f"{V2}/familleConnecteur/{{famille}}")
    async def famille(request: Request, famille: str) -> Response:
        return await p.call(request, lambda k, q: _const(
            [] if q.get("global") else [i.id_connecteur for i in cfg.IMPLEMENTATIONS if i.family == famille]))

    @router.get(f"{V2}/familleConnecteur/{{famille}}/{{id_connecteur}}")
    async def famille_connecteur(request: Request, famille: str, id_connecteur: str) -> Response:
        impl = cfg.BY_ID.get(id_connecteur)
        found = impl.describe() if impl and impl.family == famille else []  # Pastell: [] when unknown
        return await p.call(request, lambda k, q: _const(found))

    @router.get(f"{V2}/frequenceConnecteur")
    async def frequence_list(request: Request) -> Response:
        return await p.call(request, lambda k, q: _const(frequences(p.documents.settings)))

    @router.get(f"{V2}/frequenceConnecteur/{{id_cf}}")
    async def frequence(request: Request, id_cf: str) -> Response:
        async def run(key: ApiKey, _: Params) -> Any:
            for row in frequences(p.documents.settings):
                if row["id_cf"] == id_cf:
                    return row
            raise PastellError(404, "Cette fréquence de connecteur n'existe pas")
        return await p.call(request, run)

    @router.get(f"{V2}/extension")
    async def extensions(request: Request) -> Response:
        return await p.call(request, lambda k, q: _const({"result": []}))  # dematbus loads no extension

    @router.get(f"{V2}/extension/{{id_extension}}")
    async def extension(request: Request, id_extension: str) -> Response:
        async def run(key: ApiKey, _: Params) -> Any:
            raise PastellError(404, f"L'extension #{id_extension} n'existe pas.")
        return await p.call(request, run)

    return router


def _choices(options: dict[str, Any], field: str) -> list[str]:
    """A connector's external data: the i-Parapheur types it offers."""
    if field != "iparapheur_type":
        raise PastellError(400, f"Type {field} introuvable")
    return iparapheur_types(options)


async def _const(value: Any) -> Any:
    return value
