"""Legacy `/api/*.php` scripts (Webdelib, S²low, Pléiade) with their V1 semantics: the HTTP verb
is ignored, parameters come from the query string and/or the body, text is ISO-8859-1, every
scalar of the answer is a string and generic errors answer HTTP 200."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bus.store.models import ApiKey
from connectors.inbound.pastell.catalog import VERSION
from connectors.inbound.pastell.context import Pastell, file_response, int_param
from connectors.inbound.pastell.errors import PastellError
from connectors.inbound.pastell.params import Params

Handler = Callable[[ApiKey, Params], Awaitable[Any]]
CONTROL = {"id_e", "id_d", "type", "action", "field", "num", "field_name", "file_number", "file_name",
           "file_content", "api_function"}


def build_router(p: Pastell) -> APIRouter:
    docs, catalog = p.documents, p.catalog

    def ids(q: Params) -> tuple[int, str]:
        id_d = q.get("id_d")
        if not id_d:
            raise PastellError(400, "Le paramètre id_d est obligatoire")
        return int_param(q, "id_e"), id_d

    async def version(k: ApiKey, q: Params) -> Any:
        return VERSION

    async def list_entite(k: ApiKey, q: Params) -> Any:
        return await catalog.entites(k)

    async def detail_entite(k: ApiKey, q: Params) -> Any:
        return await catalog.entite(k, int_param(q, "id_e"))

    async def document_type(k: ApiKey, q: Params) -> Any:
        return catalog.flux_list()

    async def document_type_info(k: ApiKey, q: Params) -> Any:
        return catalog.flux_detail(q.get("type") or "")

    async def document_type_action(k: ApiKey, q: Params) -> Any:
        return catalog.flux_actions(q.get("type") or "")

    async def create_document(k: ApiKey, q: Params) -> Any:
        return await docs.create(k, int_param(q, "id_e"), q.get("type"), None)

    async def detail_document(k: ApiKey, q: Params) -> Any:
        return await docs.detail(k, *ids(q))

    async def detail_several(k: ApiKey, q: Params) -> Any:
        id_e = int_param(q, "id_e")
        return {id_d: await docs.detail(k, id_e, id_d) for id_d in dict.fromkeys(q.get_list("id_d"))}

    async def modif_document(k: ApiKey, q: Params) -> Any:
        fields = {name: value for name, value in q.text_fields().items() if name not in CONTROL}
        return await docs.modify(k, *ids(q), fields, q.files, append=True)

    async def list_document(k: ApiKey, q: Params) -> Any:
        filters = {name: q.get(name) or "" for name in q.raw}
        return await catalog.list_documents(k, int_param(q, "id_e"), filters)

    async def action(k: ApiKey, q: Params) -> Any:
        result = await docs.action(k, *ids(q), q.get("action") or "")
        return {**result, "result": "1" if result["result"] else ""}

    async def external_data(k: ApiKey, q: Params) -> Any:
        return await docs.external_data(k, *ids(q), q.get("field") or "")

    async def recuperation_fichier(k: ApiKey, q: Params) -> Any:
        return file_response(await docs.download(k, *ids(q), q.get("field") or "", int_param(q, "num", 0)), False)

    async def receive_file(k: ApiKey, q: Params) -> Any:
        download = await docs.download(k, *ids(q), q.get("field_name") or "", int_param(q, "file_number", 0))
        return file_response(download, True)

    async def send_file(k: ApiKey, q: Params) -> Any:
        field = q.get("field_name") or q.get("field") or ""
        num = int_param(q, "file_number", int_param(q, "num", 0))
        return await docs.put_file(k, *ids(q), field, num, q.file_bytes("file_content"), q.get("file_name"))

    async def journal(k: ApiKey, q: Params) -> Any:
        return await catalog.journal(k, {name: q.get(name) or "" for name in q.raw})

    async def list_connecteur_entite(k: ApiKey, q: Params) -> Any:
        return await p.connecteurs.list(k, int_param(q, "id_e"))

    scripts: dict[str, Handler] = {
        "version": version, "list-entite": list_entite, "detail-entite": detail_entite,
        "document-type": document_type, "document-type-info": document_type_info,
        "document-type-action": document_type_action, "create-document": create_document,
        "detail-document": detail_document, "detail-several-document": detail_several,
        "modif-document": modif_document, "list-document": list_document, "recherche-document": list_document,
        "action": action, "external-data": external_data, "recuperation-fichier": recuperation_fichier,
        "receive-file": receive_file, "send-file": send_file, "journal": journal,
        "list-connecteur-entite": list_connecteur_entite,
    }
    router = APIRouter(include_in_schema=False)

    @router.api_route("/api/{script}.php", methods=["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"])
    async def legacy(request: Request, script: str) -> Response:
        handler = scripts.get(script)
        if handler is None:
            return await p.call(request, _unknown(script), v1=True)
        return await p.call(request, handler, v1=True)

    return router


def _unknown(script: str) -> Handler:
    async def run(k: ApiKey, q: Params) -> Any:
        raise PastellError(404, f"Le script {script}.php n'est pas pris en charge par dematbus")
    return run
