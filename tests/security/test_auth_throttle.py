"""Failed authentication is throttled on every face (REST v1 Bearer keys, console login, Pastell),
the count is shared by the API processes through the store, a locked-out client gets 429 with
`Retry-After` (even with a good key), and the lock-out is journaled in `auth_lockouts`.
Every answer carries the security headers."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from sqlalchemy import select

from bus.config import Settings
from bus.store.db import Store
from bus.store.models import AuthLockout
from connectors.inbound.api import create_app

LIMIT = 10  # the default, as Pastell 4 has it


@pytest.fixture
async def two_processes(settings: Settings, store: Store, keys) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:  # type: ignore[no-untyped-def]
    """Two API apps, each with its own store connection pool: what two API processes share is the database."""
    other_store = Store(settings.db_url)
    clients = []
    for s in (store, other_store):
        app = create_app(settings, s)
        clients.append(httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test"))
    yield tuple(clients)
    for client in clients:
        await client.aclose()
    await other_store.close()


def basic(secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"apikey:{secret}".encode()).decode()}


Attempt = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]


async def api_attempt(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await client.get("/api/v1/documents", headers={"Authorization": f"Bearer {secret}"})


async def console_attempt(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await client.post("/console/login", data={"key": secret, "next": ""})


async def pastell_attempt(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await client.get("/api/v2/entite", headers=basic(secret))


def error_code(resp: httpx.Response) -> str | None:
    if resp.headers.get("x-error-code"):
        return resp.headers["x-error-code"]
    body = resp.json()
    return body.get("error", {}).get("code") if isinstance(body.get("error"), dict) else body.get("status")


@pytest.mark.parametrize(("face", "attempt", "good_status"), [
    ("api", api_attempt, 200), ("console", console_attempt, 303), ("pastell", pastell_attempt, 200)])
async def test_failures_spread_over_two_processes_lock_the_client_out(
        two_processes, store, keys, face: str, attempt: Attempt, good_status: int) -> None:  # type: ignore[no-untyped-def]
    first, second = two_processes
    good = keys["admin"]
    assert (await attempt(first, good)).status_code == good_status
    for i in range(LIMIT):  # alternate processes: neither sees 10 failures by itself
        resp = await attempt(first if i % 2 else second, "dmb_wrong_guess")
        assert resp.status_code == 401, (i, resp.text)
    for client in (first, second):
        locked = await attempt(client, good)  # a good key too: a right guess looks like a wrong one
        assert locked.status_code == 429, locked.text
        assert 0 < int(locked.headers["retry-after"]) <= 60
        assert error_code(locked) in ("too_many_failed_logins", "error")
    async with store.sessions() as session:
        lockouts = (await session.execute(select(AuthLockout))).scalars().all()
    assert [(row.face, row.failures) for row in lockouts] == [(face, LIMIT)]  # journaled once
    assert "dmb_wrong_guess" not in repr([vars(row) for row in lockouts])


async def test_faces_count_apart_and_missing_keys_do_not_count(two_processes, keys) -> None:  # type: ignore[no-untyped-def]
    client, _ = two_processes
    for _ in range(3 * LIMIT):
        assert (await client.get("/api/v1/documents")).status_code == 401  # no key at all: not a guess
    for _ in range(LIMIT):
        await api_attempt(client, "dmb_wrong_guess")
    assert (await api_attempt(client, keys["admin"])).status_code == 429
    assert (await pastell_attempt(client, keys["admin"])).status_code == 200
    assert (await console_attempt(client, keys["admin"])).status_code == 303


async def test_revoked_key_counts_as_a_failure(two_processes, store, keys) -> None:  # type: ignore[no-untyped-def]
    from bus.store.apikeys import hash_key
    from bus.store.models import ApiKey, utcnow

    client, _ = two_processes
    async with store.transaction() as session:
        row = (await session.execute(select(ApiKey).where(ApiKey.key_hash == hash_key(keys["a"])))).scalar_one()
        row.revoked_at = utcnow()
    for _ in range(LIMIT):
        assert (await api_attempt(client, keys["a"])).json()["error"]["code"] == "invalid_api_key"
    assert (await api_attempt(client, keys["admin"])).status_code == 429


SECURITY_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY"}


async def test_security_headers_on_every_face(two_processes, keys) -> None:  # type: ignore[no-untyped-def]
    client, _ = two_processes
    answers = [
        await client.get("/health"),
        await api_attempt(client, keys["a"]),
        await client.get("/api/v1/nowhere"),
        await client.get("/api/v1/documents"),
        await pastell_attempt(client, keys["a"]),
        await client.get("/api/version.php", headers=basic(keys["a"])),
        await client.get("/console/login"),
        await console_attempt(client, "dmb_wrong"),
        await client.get("/console/static/console.css"),
        await client.get("/metrics"),
    ]
    for resp in answers:
        for name, value in SECURITY_HEADERS.items():
            assert resp.headers.get(name) == value, (resp.request.url, name, resp.headers)
        assert resp.headers.get("referrer-policy") in ("no-referrer", "same-origin")
        assert "frame-ancestors 'none'" in resp.headers.get("content-security-policy", "")
    console = answers[6].headers["content-security-policy"]
    assert "default-src 'none'" in console  # the console keeps its stricter policy
