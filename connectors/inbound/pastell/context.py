"""What every Pastell route needs: documents, catalogue, login throttle, and the answer helpers."""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bus.store.models import ApiKey
from bus.store.throttle import Throttle
from connectors.inbound.pastell.auth import authenticate
from connectors.inbound.pastell.catalog import Catalog
from connectors.inbound.pastell.connecteur_admin import Connecteurs
from connectors.inbound.pastell.documents import Documents, Download
from connectors.inbound.pastell.entite_admin import Entites
from connectors.inbound.pastell.errors import PastellError
from connectors.inbound.pastell.params import Params, integer, read_params
from connectors.inbound.pastell.utilisateurs import Utilisateurs

log = logging.getLogger(__name__)


def stringify(value: Any) -> Any:
    """V1 answers carry every scalar as a string, as PHP's V1 layer did (`true` -> "1")."""
    if isinstance(value, dict):
        return {k: stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [stringify(v) for v in value]
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, (int, float)):
        return str(value)
    return value


@dataclass
class Pastell:
    documents: Documents
    catalog: Catalog
    throttle: Throttle
    connecteurs: Connecteurs
    utilisateurs: Utilisateurs
    entites: Entites

    async def call(self, request: Request, handler: Callable[[ApiKey, Params], Awaitable[Any]], *,
                   v1: bool = False, status: int = 200) -> Response:
        """Authenticate, read the parameters, run the handler and answer the Pastell way: v2 errors
        keep their status; V1 generic errors (400) answer 200, V1 values are strings."""
        try:
            key = await authenticate(request, self.throttle)
            params = await read_params(request, latin1=v1)
            result = await handler(key, params)
        except PastellError as exc:
            return error_response(exc, v1=v1)
        except Exception:  # noqa: BLE001 - even a bug answers in Pastell's shape, and is logged
            log.exception("Pastell API: %s %s failed", request.method, request.url.path)
            return error_response(PastellError(500, "Erreur interne de dematbus"), v1=v1)
        if isinstance(result, Response):
            return result
        return JSONResponse(stringify(result) if v1 else result, status_code=200 if v1 else status)


def error_response(exc: PastellError, *, v1: bool = False) -> Response:
    code = 200 if v1 and exc.status == 400 else exc.status
    return JSONResponse(exc.body(), status_code=code, headers=exc.headers)


def file_response(download: Download, receive: bool) -> Response:
    if receive:
        try:
            return JSONResponse({"file_name": download.name, "file_content": download.data.decode("utf-8")})
        except UnicodeDecodeError:
            return JSONResponse({"file_name": download.name, "encoding": "base64",
                                 "file_content": base64.b64encode(download.data).decode()})
    fallback = download.name.encode("ascii", "replace").decode().replace("?", "_")
    return Response(download.data, media_type=download.media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(download.name)}"})


def int_param(params: Params, name: str, default: int | None = None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        if default is None:
            raise PastellError(400, f"Le paramètre {name} est obligatoire")
        return default
    return integer(raw, name)
