"""Who is calling: API keys (Bearer), roles, and the error answer every refusal uses."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse

from bus.scope import in_scope
from bus.store.apikeys import find_key
from bus.store.models import ApiKey


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def api_key(request: Request, authorization: Annotated[str | None, Header()] = None) -> ApiKey:
    if not authorization:
        raise ApiError(401, "missing_api_key", "Clé d'API absente / missing API key (Authorization: Bearer <key>)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "invalid_api_key", "Clé d'API invalide / invalid API key")
    async with request.app.state.store.sessions() as session:
        key = await find_key(session, token.strip())
    if key is None:
        raise ApiError(401, "invalid_api_key", "Clé d'API invalide / invalid API key")
    return key


Key = Annotated[ApiKey, Depends(api_key)]


def require_role(key: ApiKey, *roles: str) -> None:
    if not set(roles) & set(key.roles):
        raise ApiError(403, "forbidden_role", f"Rôle requis / this needs one of the roles: {', '.join(roles)}")


def require_scope(key: ApiKey, siren: str) -> None:
    if not in_scope(key, siren):
        raise ApiError(403, "siren_out_of_scope",
                       f"Cette clé n'est pas autorisée pour le SIREN {siren} / key not allowed for this collectivité")
