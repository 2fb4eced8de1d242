"""Who calls the Pastell API: HTTP Basic whose password is a dematbus API key (login: the key's
name, its id, or `apikey`), or `Authorization: Bearer <key>` like Pastell 4. Failed logins are
rate-limited per client IP (429 with `Retry-After`, as Pastell 4 does)."""

from __future__ import annotations

import base64
import binascii
import time
from collections import deque

from starlette.requests import Request

from bus.store.apikeys import find_key
from bus.store.models import ApiKey
from connectors.inbound.pastell.errors import PastellError

REALM = {"WWW-Authenticate": 'Basic realm="API Pastell"'}


class LoginThrottle:
    """At most `limit` failed logins per client IP within `window` seconds."""

    def __init__(self, limit: int = 10, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, ip: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(ip, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def check(self, ip: str) -> None:
        failures = self._recent(ip, time.monotonic())
        if len(failures) >= self.limit:
            retry = max(1, int(failures[0] + self.window - time.monotonic()) + 1)
            raise PastellError(429, "Trop de tentatives de connexion échouées, réessayez plus tard",
                               {"Retry-After": str(retry)})

    def failed(self, ip: str) -> None:
        self._recent(ip, time.monotonic()).append(time.monotonic())
        if len(self._failures) > 100_000:  # bound memory under a spray of addresses
            self._failures.clear()


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


async def authenticate(request: Request, throttle: LoginThrottle) -> ApiKey:
    ip = request.client.host if request.client else "?"
    throttle.check(ip)
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
        throttle.failed(ip)
        raise PastellError(401, "Identifiant ou clé d'API incorrect", REALM)
    return key
