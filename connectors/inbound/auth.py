"""Who is calling: API keys (Bearer), roles, and the error answer every refusal uses.

Wrong or revoked keys count as failed authentications of the `api` face (bus/store/throttle.py):
a client past the limit gets 429 `too_many_failed_logins` with `Retry-After`, whatever key it
sends. A request without any key is refused (401) without counting.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse

from bus.scope import in_scope
from bus.store.apikeys import find_key
from bus.store.models import ApiKey

SUPPLEMENTARY_ROLES = {"rh"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def client_address(request: Request) -> str:
    """The address failed logins are counted against (behind a proxy: run uvicorn with
    `--proxy-headers --forwarded-allow-ips` so this is the real client's)."""
    return request.client.host if request.client else "?"


def locked_out(retry_after: int) -> ApiError:
    return ApiError(429, "too_many_failed_logins",
                    "Trop d'authentifications échouées, réessayez plus tard / too many failed authentications, "
                    f"retry in {retry_after} s", {"Retry-After": str(retry_after)})


async def api_key(request: Request, authorization: Annotated[str | None, Header()] = None) -> ApiKey:
    throttle = request.app.state.throttle
    client = client_address(request)
    if (wait := await throttle.retry_after("api", client)) is not None:
        raise locked_out(wait)
    if not authorization:
        raise ApiError(401, "missing_api_key", "Clé d'API absente / missing API key (Authorization: Bearer <key>)")
    scheme, _, token = authorization.partition(" ")
    key = None
    if scheme.lower() == "bearer" and token.strip():
        async with request.app.state.store.sessions() as session:
            key = await find_key(session, token.strip())
    if key is None:
        await throttle.failed("api", client)
        raise ApiError(401, "invalid_api_key", "Clé d'API invalide / invalid API key")
    if only_supplementary_roles(key):
        raise ApiError(403, "forbidden_role", "Le rôle rh s'ajoute à un autre rôle / the rh role only adds to "
                                              "another role (depositor, operator, reporter, admin)")
    return key


def only_supplementary_roles(key: ApiKey) -> bool:
    """`rh` opens the personal data of the RH flows to a key that has another role; alone it opens nothing."""
    return bool(key.roles) and not set(key.roles) - SUPPLEMENTARY_ROLES  # a key with no role reaches nothing anyway


Key = Annotated[ApiKey, Depends(api_key)]


def require_role(key: ApiKey, *roles: str) -> None:
    if not set(roles) & set(key.roles):
        raise ApiError(403, "forbidden_role", f"Rôle requis / this needs one of the roles: {', '.join(roles)}")


def require_scope(key: ApiKey, siren: str) -> None:
    if not in_scope(key, siren):
        raise ApiError(403, "siren_out_of_scope",
                       f"Cette clé n'est pas autorisée pour le SIREN {siren} / key not allowed for this collectivité")
