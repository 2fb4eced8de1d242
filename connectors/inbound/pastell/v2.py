"""`/api/v2/` routes used by the real clients (pastell-clients.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bus.store.models import ApiKey
from connectors.inbound.pastell.catalog import VERSION
from connectors.inbound.pastell.context import Pastell, file_response, int_param
from connectors.inbound.pastell.errors import PastellError
from connectors.inbound.pastell.external import iparapheur_types
from connectors.inbound.pastell.params import Params

V2 = "/api/v2"


def filters(params: Params) -> dict[str, str]:
    return {k: params.get(k) or "" for k in params.raw}


def build_router(p: Pastell) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    docs, catalog = p.documents, p.catalog

    @router.get(f"{V2}/version")
    async def version(request: Request) -> Response:
        return await p.call(request, lambda k, q: _const(VERSION))

    @router.get(f"{V2}/version/allo")
    async def allo(request: Request) -> Response:
        return await p.call(request, lambda k, q: _const({"produit": "Pastell", "version": VERSION["version"]}))

    @router.get(f"{V2}/entite")
    async def entites(request: Request) -> Response:
        return await p.call(request, lambda k, q: catalog.entites(k))

    @router.get(f"{V2}/entite/{{id_e}}")
    async def entite(request: Request, id_e: int) -> Response:
        return await p.call(request, lambda k, q: catalog.entite(k, id_e))

    @router.get(f"{V2}/flux")
    async def flux(request: Request) -> Response:
        return await p.call(request, lambda k, q: _const(catalog.flux_list()))

    @router.get(f"{V2}/flux/{{flux_id}}")
    async def flux_detail(request: Request, flux_id: str) -> Response:
        return await p.call(request, lambda k, q: _call(catalog.flux_detail, flux_id))

    @router.get(f"{V2}/flux/{{flux_id}}/action")
    async def flux_actions(request: Request, flux_id: str) -> Response:
        return await p.call(request, lambda k, q: _call(catalog.flux_actions, flux_id))

    @router.get(f"{V2}/entite/{{id_e}}/connecteur")
    async def connecteurs(request: Request, id_e: int) -> Response:
        return await p.call(request, lambda k, q: catalog.connecteurs(k, id_e))

    @router.get(f"{V2}/entite/{{id_e}}/connecteur/{{id_ce}}")
    async def connecteur(request: Request, id_e: int, id_ce: int) -> Response:
        async def run(key: ApiKey, _: Params) -> Any:
            row, _coll = await catalog.connecteur(key, id_e, id_ce)
            return {**row, "data": {}, "action-possible": []}
        return await p.call(request, run)

    @router.get(f"{V2}/entite/{{id_e}}/connecteur/{{id_ce}}/externalData/{{field}}")
    async def connecteur_external(request: Request, id_e: int, id_ce: int, field: str) -> Response:
        async def run(key: ApiKey, _: Params) -> Any:
            _row, coll = await catalog.connecteur(key, id_e, id_ce)
            if field != "iparapheur_type":
                raise PastellError(400, f"Le champ {field} n'est pas une donnée externe de ce connecteur")
            return iparapheur_types(coll)
        return await p.call(request, run)

    @router.get(f"{V2}/connecteur/all")
    @router.get(f"{V2}/connecteur/all/{{id_connecteur}}")
    async def connecteurs_all(request: Request, id_connecteur: str | None = None) -> Response:
        async def run(key: ApiKey, _: Params) -> Any:
            out = []
            for entite in await catalog.entites(key):
                out += [c for c in await catalog.connecteurs(key, entite["id_e"])
                        if id_connecteur is None or c["id_connecteur"] == id_connecteur]
            return out
        return await p.call(request, run)

    # -- documents --------------------------------------------------------------------------

    @router.post(f"{V2}/entite/{{id_e}}/document")
    async def create(request: Request, id_e: int) -> Response:
        idem = request.headers.get("idempotency-key")
        return await p.call(request, lambda k, q: docs.create(k, id_e, q.get("type"), idem), status=201)

    @router.get(f"{V2}/entite/{{id_e}}/document")
    async def list_documents(request: Request, id_e: int) -> Response:
        async def run(key: ApiKey, q: Params) -> Any:
            several = q.get_list("id_d")
            if several:
                return {id_d: await docs.detail(key, id_e, id_d) for id_d in several}
            return await catalog.list_documents(key, id_e, filters(q))
        return await p.call(request, run)

    @router.get(f"{V2}/entite/{{id_e}}/document/{{id_d}}")
    async def detail(request: Request, id_e: int, id_d: str) -> Response:
        return await p.call(request, lambda k, q: docs.detail(k, id_e, id_d))

    @router.patch(f"{V2}/entite/{{id_e}}/document/{{id_d}}")
    async def modify(request: Request, id_e: int, id_d: str) -> Response:
        return await p.call(request, lambda k, q: docs.modify(k, id_e, id_d, q.text_fields(), q.files))

    @router.delete(f"{V2}/entite/{{id_e}}/document/{{id_d}}")
    async def delete(request: Request, id_e: int, id_d: str) -> Response:
        async def run(key: ApiKey, _: Params) -> Any:
            await docs.action(key, id_e, id_d, "supression")
            return Response(status_code=204)
        return await p.call(request, run)

    @router.post(f"{V2}/entite/{{id_e}}/document/{{id_d}}/file/{{field}}")
    @router.post(f"{V2}/entite/{{id_e}}/document/{{id_d}}/file/{{field}}/{{num}}")
    async def put_file(request: Request, id_e: int, id_d: str, field: str, num: int = 0) -> Response:
        return await p.call(request, lambda k, q: docs.put_file(
            k, id_e, id_d, field, num, q.file_bytes("file_content"), q.get("file_name")), status=201)

    @router.get(f"{V2}/entite/{{id_e}}/document/{{id_d}}/file/{{field}}")
    @router.get(f"{V2}/entite/{{id_e}}/document/{{id_d}}/file/{{field}}/{{num}}")
    async def get_file(request: Request, id_e: int, id_d: str, field: str, num: int = 0) -> Response:
        async def run(key: ApiKey, q: Params) -> Any:
            receive = (q.get("receive") or "").lower() in {"1", "true"}
            return file_response(await docs.download(key, id_e, id_d, field, num), receive)
        return await p.call(request, run)

    @router.delete(f"{V2}/entite/{{id_e}}/document/{{id_d}}/file/{{field}}")
    @router.delete(f"{V2}/entite/{{id_e}}/document/{{id_d}}/file/{{field}}/{{num}}")
    async def delete_file(request: Request, id_e: int, id_d: str, field: str, num: int = 0) -> Response:
        return await p.call(request, lambda k, q: docs.delete_file(k, id_e, id_d, field, num))

    @router.post(f"{V2}/entite/{{id_e}}/document/{{id_d}}/action/{{action}}")
    async def action(request: Request, id_e: int, id_d: str, action: str) -> Response:
        return await p.call(request, lambda k, q: docs.action(k, id_e, id_d, action), status=201)

    @router.get(f"{V2}/entite/{{id_e}}/document/{{id_d}}/externalData/{{field}}")
    async def external(request: Request, id_e: int, id_d: str, field: str) -> Response:
        return await p.call(request, lambda k, q: docs.external_data(k, id_e, id_d, field))

    @router.patch(f"{V2}/entite/{{id_e}}/document/{{id_d}}/externalData/{{field}}")
    async def set_external(request: Request, id_e: int, id_d: str, field: str) -> Response:
        return await p.call(request, lambda k, q: docs.set_external_data(
            k, id_e, id_d, field, q.text_fields(), {name: q.get_list(name) for name in q.raw}))

    @router.get(f"{V2}/document")
    async def list_by_query(request: Request) -> Response:  # Pastell 2's `document?id_e=` (Pléiade)
        return await p.call(request, lambda k, q: catalog.list_documents(k, int_param(q, "id_e"), filters(q)))

    @router.get(f"{V2}/document/count")
    async def count(request: Request) -> Response:
        async def run(key: ApiKey, q: Params) -> Any:
            id_e = int_param(q, "id_e") if q.get("id_e") else None
            return await catalog.count(key, id_e, q.get("type") or None)
        return await p.call(request, run)

    @router.get(f"{V2}/journal")
    async def journal(request: Request) -> Response:
        return await p.call(request, lambda k, q: catalog.journal(k, filters(q)))

    return router


async def _const(value: Any) -> Any:
    return value


async def _call(fn: Any, *args: Any) -> Any:
    return fn(*args)

