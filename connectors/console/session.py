"""Console login: an API key typed once, then a signed, expiring session cookie.

The cookie holds the key's id (never the key) and a CSRF token the forms echo back; every request
reloads the key, so a revoked key is logged out at once.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from bus.store.apikeys import find_key
from bus.store.db import Store
from bus.store.models import ApiKey

COOKIE = "dematbus_console"
MAX_AGE = 8 * 3600  # one working day


@dataclass(frozen=True)
class Session:
    key: ApiKey
    csrf: str

    def has(self, *roles: str) -> bool:
        return bool(set(roles) & set(self.key.roles))


def load_secret(data_dir: Path) -> str:
    """DEMATBUS_CONSOLE_SECRET, else a secret kept in the data directory (created once, 0600), so
    sessions survive a restart and every API process of one deployment shares it."""
    if env := os.environ.get("DEMATBUS_CONSOLE_SECRET"):
        return env
    path = data_dir / "console-secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        draft = data_dir / f".console-secret.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
        try:
            os.link(draft, path)  # atomic: two processes starting together end up with one secret
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


class Sessions:
    def __init__(self, secret: str) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="dematbus-console-session")

    async def login(self, store: Store, typed_key: str) -> tuple[ApiKey, str] | None:
        """The key and a new session cookie value, or None for an unknown or revoked key."""
        async with store.sessions() as session:
            key = await find_key(session, typed_key.strip())
        if key is None:
            return None
        return key, self._signer.dumps({"k": key.id, "c": secrets.token_urlsafe(16)})

    async def current(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._signer.loads(raw, max_age=MAX_AGE)
        except BadSignature:
            return None
        async with request.app.state.store.sessions() as session:
            key = await session.get(ApiKey, data.get("k"))
        if key is None or key.revoked_at is not None:
            return None
        return Session(key=key, csrf=str(data.get("c", "")))


def set_cookie(response: Response, value: str, secure: bool) -> None:
    response.set_cookie(COOKIE, value, max_age=MAX_AGE, httponly=True, samesite="strict", path="/console",
                        secure=secure)


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/console")


def csrf_ok(session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf, token or "")
