"""Shared fixtures: a store on a temporary SQLite file, demo-like collectivités and keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bus.collectivites import add_collectivite
from bus.config import Settings
from bus.store.apikeys import create_key
from bus.store.db import Store
from tests.databases import drop_shared_databases, fresh_database

# Real messages (public TdT and Pastell test fixtures, see docs/protocols.md), copied so the suite runs from any clone.
SAMPLES = Path(__file__).resolve().parent / "data" / "samples"
SIREN_A = "210600235"  # dépt 006
SIREN_B = "214400152"  # dépt 044


@pytest.fixture(scope="session", autouse=True)
def _shared_databases() -> Iterator[None]:
    yield
    drop_shared_databases()


@pytest.fixture(autouse=True)
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    """On the PostgreSQL pass, every test gets its own empty database (children inherit it)."""
    with fresh_database() as url:
        if url:
            monkeypatch.setenv("DEMATBUS_DATABASE_URL", url)
        yield url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var")


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    store = Store(settings.db_url)
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
async def keys(store: Store) -> dict[str, str]:
    async with store.transaction() as session:
        await add_collectivite(session, siren=SIREN_A, name="Commune A", departement="006", arrondissement="2")
        await add_collectivite(session, siren=SIREN_B, name="Commune B", departement="044", arrondissement="1")
        return {
            "a": await create_key(session, [SIREN_A], ["depositor"]),
            "b": await create_key(session, [SIREN_B], ["depositor"]),
            "reporter_a": await create_key(session, [SIREN_A], ["reporter"]),
            "admin": await create_key(session, ["*"], ["admin"]),
        }
