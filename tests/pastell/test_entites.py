"""`id_e`: a stable integer per collectivité, numbered for existing ones by the migration."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from bus.collectivites import add_collectivite
from bus.store.db import Store, alembic_config
from bus.store.entites import ensure_ids
from tests.conftest import SIREN_A, SIREN_B


async def test_migration_numbers_existing_collectivites_and_newcomers_follow(settings) -> None:  # type: ignore[no-untyped-def]
    store = Store(settings.db_url)

    def upgrade_to(revision: str):  # type: ignore[no-untyped-def]
        def run(connection) -> None:  # type: ignore[no-untyped-def]
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
        return run

    async with store.engine.begin() as conn:
        await conn.run_sync(upgrade_to("0001"))
        for siren, name in ((SIREN_B, "Commune B"), (SIREN_A, "Commune A")):
            await conn.execute(text(
                "INSERT INTO collectivites (siren, name, departement, arrondissement, nature_code, connectors, created_at)"
                " VALUES (:s, :n, '044', '1', '31', '{}', CURRENT_TIMESTAMP)"), {"s": siren, "n": name})
    await store.migrate()
    async with store.transaction() as session:
        assert await ensure_ids(session) == {SIREN_A: 1, SIREN_B: 2}
        await add_collectivite(session, siren="491011698", name="CC", departement="034")
        assert (await ensure_ids(session))["491011698"] == 3
    async with store.transaction() as session:  # stable on every later call
        assert await ensure_ids(session) == {SIREN_A: 1, SIREN_B: 2, "491011698": 3}
    await store.close()
