"""Engine, sessions and migrations of the durable store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bus import process_stats

MIGRATIONS = Path(__file__).parent / "migrations"
OUTBOX_WRITTEN = "dematbus.outbox_written"  # session.info flag set by bus.store.outbox


def make_engine(url: str) -> AsyncEngine:
    engine = _engine(url)
    if process_stats.enabled():  # the bench's stack: count the statements
        process_stats.count_statements(engine)
    return engine


def _engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: a failed statement's values (personal data of RH flows) stay out of logs.
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL lets the API and the worker (two processes) read while the other writes.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # Sized to a worker's concurrency (16 engine lanes, the runners' slots, the timers); no
    # pre-ping, which costs a round trip per checkout: a connection the server dropped fails its
    # statement, SQLAlchemy then empties the pool, and the retry gets a fresh connection.
    return create_async_engine(url, pool_size=20, max_overflow=20, pool_recycle=1800, hide_parameters=True)


class Store:
    """Holds the engine and hands out sessions; one per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time and makes the others wait by sleeping and retrying:
        # under load, coroutines of one process queue on this lock instead, which is much faster.
        self._write_lock = asyncio.Lock() if url.startswith("sqlite") else None
        self._outbox_written: asyncio.Event | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._write_lock or contextlib.nullcontext(), self.sessions() as session:
            async with session.begin():
                yield session
            if session.info.get(OUTBOX_WRITTEN):
                self._wake_relay()

    def _wake_relay(self) -> None:
        if self._outbox_written is not None:
            self._outbox_written.set()

    async def wait_outbox(self, timeout: float) -> None:
        """Return when a transaction of this process committed outbox rows (bus.store.outbox),
        or after `timeout`: rows written by other processes are found by the relay's next look."""
        if self._outbox_written is None:
            self._outbox_written = asyncio.Event()
        try:
            await asyncio.wait_for(self._outbox_written.wait(), timeout)
        except TimeoutError:
            pass
        self._outbox_written.clear()

    async def migrate(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade(connection) -> None:  # type: ignore[no-untyped-def]
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "heads")  # one branch per capability is allowed
