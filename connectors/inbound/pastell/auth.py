"""Who calls the Pastell API: HTTP Basic whose password is a dematbus API key (login: the key's
name, its id, or `apikey`), or `Authorization: Bearer <key>` like Pastell 4. Failed logins are
rate-limited per client IP (429 with `Retry-After`, as Pastell 4 does), counted in the store as
the `pastell` face of bus/store/throttle.py so every API process shares the count."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from bus.store.apikeys import find_key
from bus.store.models import ApiKey
from bus.store.throttle import Throttle
from connectors.inbound.auth import client_address, only_supplementary_roles
from connectors.inbound.pastell.errors import PastellError

REALM = {"WWW-Authenticate": 'Basic realm="API Pastell"'}


def _credentials(header: str) -> tuple[str | None, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return None, value.strip()
    if scheme.lower() == "basic":
        try:
            login, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (login, password) if sep else None
    return None


async def authenticate(request: Request, throttle: Throttle) -> ApiKey:
    ip = client_address(request)
    if (wait := await throttle.retry_after("pastell", ip)) is not None:
        raise PastellError(429, "Trop de tentatives de connexion échouées, réessayez plus tard",
                           {"Retry-After": str(wait)})
    header = request.headers.get("authorization")
    if not header:
        raise PastellError(401, "Authentification requise (HTTP Basic : login et clé d'API)", REALM)
    creds = _credentials(header)
    key = None
    if creds is not None:
        login, secret = creds
        async with request.app.state.store.sessions() as session:
            key = await find_key(session, secret)
        if key is not None and login is not None and login not in {"apikey", key.name, key.id}:
            key = None
    if key is None:
        await throttle.failed("pastell", ip)
        raise PastellError(401, "Identifiant ou clé d'API incorrect", REALM)
    if only_supplementary_roles(key):
        raise PastellError(403, "Acces interdit : le rôle rh s'ajoute à un autre rôle")
    return key
