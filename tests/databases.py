"""One fresh PostgreSQL database per test when the suite runs on PostgreSQL.

`make test` runs the suite twice when a PostgreSQL server answers: once on SQLite, once with
`DEMATBUS_TEST_POSTGRES=postgresql+asyncpg://user@host:port` set. Each test (and each module-wide
pipeline) then gets its own database, created empty and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

PG_ENV = "DEMATBUS_TEST_POSTGRES"


def postgres_base() -> str | None:
    return os.environ.get(PG_ENV) or None


def _admin(base: str, sql: str) -> None:
    import asyncpg

    dsn = base.replace("postgresql+asyncpg://", "postgresql://") + "/postgres"

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    # A thread of its own: callers may already be inside a running event loop.
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(errors, lambda: asyncio.run(run())))
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _capture(errors: list[BaseException], fn: object) -> None:
    try:
        fn()  # type: ignore[operator]
    except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
        errors.append(exc)


@contextmanager
def fresh_database() -> Iterator[str | None]:
    """The URL of a new empty database, or None when the suite runs on SQLite."""
    base = postgres_base()
    if base is None:
        yield None
        return
    name = f"dematbus_t_{uuid.uuid4().hex[:16]}"
    _admin(base, f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        _admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_module_databases: list[str] = []


def shared_database() -> str | None:
    """A database for a pipeline that outlives one test (module-scoped fixtures), dropped at the
    end of the session by `drop_shared_databases`; None on SQLite."""
    base = postgres_base()
    if base is None:
        return None
    name = f"dematbus_m_{uuid.uuid4().hex[:16]}"
    _admin(base, f'CREATE DATABASE "{name}"')
    _module_databases.append(name)
    return f"{base}/{name}"


def drop_shared_databases() -> None:
    base = postgres_base()
    while base and _module_databases:
        _admin(base, f'DROP DATABASE IF EXISTS "{_module_databases.pop()}" WITH (FORCE)')


def reachable(base: str) -> bool:
    try:
        _admin(base, "SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means "run on SQLite only"
        return False
    return True


if __name__ == "__main__":  # `python -m tests.databases URL`: exit 0 when PostgreSQL answers
    import sys

    sys.exit(0 if reachable(sys.argv[1]) else 1)
