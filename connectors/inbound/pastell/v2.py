"""`/api/v2/` routes of the version, entite, flux, document and journal tags.

Path ids arrive as text and are read by `integer`, so a malformed id answers Pastell's error,
not FastAPI's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bus.store.models import ApiKey
from connectors.inbound.pastell.catalog import VERSION
from connectors.inbound.pastell.context import Pastell, file_response, int_param
from connectors.inbound.pastell.params import Params, integer

V2 = "/api/v2"


def filters(params: Params) -> dict[str, str]:
    return {k: params.get(k) or "" for k in params.raw}


def build_router(p: Pastell) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    docs, catalog = p.documents, p.catalog

    def e(id_e: str) -> int:
        return integer(id_e, "id_e")

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
    async def entite(request: Request, id_e: str) -> Response:
        return await p.call(request, lambda k, q: catalog.entite(k, e(id_e)))

    @router.get(f"{V2}/flux")
    async def flux(request: Request) -> Response:
        return await p.call(request, lambda k, q: _const(catalog.flux_list()))

    @router.get(f"{V2}/flux/{{flux_id}}")
    async def flux_detail(request: Request, flux_id: str) -> Response:
        return await p.call(request, lambda k, q: _call(catalog.flux_detail, flux_id))

    @router.get(f"{V2}/flux/{{flux_id}}/action")
    async def flux_actions(request: Request, flux_id: str) -> Response:
        return await p.call(request, lambda k, q: _call(catalog.flux_actions, flux_id))

    # -- documents --------------------------------------------------------------------------

    @router.post(f"{V2}/entite/{{id_e}}/document")
    async def create(request: Request, id_e: str) -> Response:
        idem = request.headers.get("idempotency-key")
        return await p.call(request, lambda k, q: docs.create(k, e(id_e), q.get("type"), idem), status=201)

    @router.get(f"{V2}/entite/{{id_e}}/document")
    async def list_documents(request: Request, id_e: str) -> Response:
        async def run(key: ApiKey, q: Params) -> Any:
            several = q.get_list("id_d")
            if several:
                return {id_d: await docs.detail(key, e(id_e), id_d) for id_d in several}
            return await catalog.list_documents(key, e(id_e), filters(q))
        return await p.call(request, run)

    @router.get(f"{V2}/entite/{{id_e}}/document/count")
    async def count_in(request: Request, id_e: str) -> Response:
        return await p.call(request, lambda k, q: catalog.count_in(k, e(id_e), filters(q)))

    @router.get(f"{V2}/entite/{{id_e}}/document/{{id_d}}")
    async def detail(request: Request, id_e: str, id_d: str) -> Response:
        return await p.call(request, lambda k, q: docs.detail(k, e(id_e), id_d))

    @router.patch(f"{V2}/entite/{{id_e}}/document/{{id_d}}")
    async def modify(request: Request, id_e: str, id_d: str) -> Response:
        return await p.call(request, lambda k, q: docs.modify(k, e(id_e), id_d, q.text_fields(), q.files))

    @router.delete(f"{V2}/entite/{{id_e}}/document/{{id_d}}")
    async def delete(request: Request, id_e: str, id_d: str) -> Response:
        async def run(key: ApiKey, _: Params) -> Any:
            await docs.action(key, e(id_e), id_d, "supression")
            return Response(status_code=204)
        return await p.call(request, run)

    @router.post(f"{V2}/entite/{{id_e}}/document/{{id_d}}")
    async def put_file_by_query(request: Request, id_e: str, id_d: str) -> Response:
        """The OpenAPI description's upload: the field in `?field=`."""
        return await p.call(request, lambda k, q: docs.put_file(
            k, e(id_e), id_d, q.get("field") or "", 0, q.file_bytes("file_content"), q.get("file_name")), status=201)

    @router.post(f"{V2}/entite/{{id_e}}/document/{{id_d}}/file/{{field}}")
    @router.post(f"{V2}/entite/{{id_e}}/document/{{id_d}}/file/{{field}}/{{num}}")
    async def put_file(request: Request, id_e: str, id_d: str, field: str, num: str = "0") -> Response:
        return await p.call(request, lambda k, q: docs.put_file(
            k, e(id_e), id_d, field, integer(num, "num"), q.file_bytes("file_content"), q.get("file_name")),
            status=201)

    @router.get(f"{V2}/entite/{{id_e}}/document/{{id_d}}/file/{{field}}")
    @router.get(f"{V2}/entite/{{id_e}}/document/{{id_d}}/file/{{field}}/{{num}}")
    async def get_file(request: Request, id_e: str, id_d: str, field: str, num: str = "0") -> Response:
        async def run(key: ApiKey, q: Params) -> Any:
            receive = (q.get("receive") or "").lower() in {"1", "true"}
            return file_response(await docs.download(key, e(id_e), id_d, field, integer(num, "num")), receive)
        return await p.call(request, run)

    @router.delete(f"{V2}/entite/{{id_e}}/document/{{id_d}}/file/{{field}}")
    @router.delete(f"{V2}/entite/{{id_e}}/document/{{id_d}}/file/{{field}}/{{num}}")
    async def delete_file(request: Request, id_e: str, id_d: str, field: str, num: str = "0") -> Response:
        return await p.call(request, lambda k, q: docs.delete_file(k, e(id_e), id_d, field, integer(num, "num")))

    @router.post(f"{V2}/entite/{{id_e}}/document/{{id_d}}/action/{{action}}")
    async def action(request: Request, id_e: str, id_d: str, action: str) -> Response:
        return await p.call(request, lambda k, q: docs.action(k, e(id_e), id_d, action), status=201)

    @router.get(f"{V2}/entite/{{id_e}}/document/{{id_d}}/externalData/{{field}}")
    async def external(request: Request, id_e: str, id_d: str, field: str) -> Response:
        return await p.call(request, lambda k, q: docs.external_data(k, e(id_e), id_d, field))

    @router.patch(f"{V2}/entite/{{id_e}}/document/{{id_d}}/externalData/{{field}}")
    async def set_external(request: Request, id_e: str, id_d: str, field: str) -> Response:
        return await p.call(request, lambda k, q: docs.set_external_data(
            k, e(id_e), id_d, field, q.text_fields(), {name: q.get_list(name) for name in q.raw}))

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

    @router.get(f"{V2}/journal/{{id_j}}")
    async def journal_entry(request: Request, id_j: str) -> Response:
        return await p.call(request, lambda k, q: catalog.journal_entry(k, integer(id_j, "id_j")))

    return router


async def _const(value: Any) -> Any:
    return value


async def _call(fn: Any, *args: Any) -> Any:
    return fn(*args)
