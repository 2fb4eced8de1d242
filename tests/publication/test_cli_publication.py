"""`dematbus collectivite publication`: what a syndicat's operator types to turn publication on."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from bus.cli import app
from bus.store.db import Store
from bus.store.models import Collectivite

runner = CliRunner()


def connectors(settings, siren: str) -> dict:  # type: ignore[no-untyped-def]
    async def read() -> dict:
        store = Store(settings.db_url)
        try:
            async with store.sessions() as session:
                return (await session.get(Collectivite, siren)).connectors
        finally:
            await store.close()

    return asyncio.run(read())


def test_turning_publication_on_and_off(settings) -> None:  # type: ignore[no-untyped-def]
    data_dir = str(settings.data_dir)
    added = runner.invoke(app, ["collectivite", "add", "--siren", "214400152", "--name", "Commune B",
                                "--departement", "044", "--data-dir", data_dir])
    assert added.exit_code == 0, added.output
    on = runner.invoke(app, ["collectivite", "publication", "214400152", "--natures", "1,2",
                             "--siret", "21440015200017", "--data-dir", data_dir])
    assert on.exit_code == 0, on.output
    assert "/publication/214400152" in on.output
    config = connectors(settings, "214400152")
    assert config["flows"]["actes"]["publication"] == {"natures": [1, 2], "siret": "21440015200017"}
    assert config["publication"]["kind"] == "registre"
    assert config["flows"]["helios"]  # the other flows' options are kept

    bad = runner.invoke(app, ["collectivite", "publication", "214400152", "--siret", "123", "--data-dir", data_dir])
    assert bad.exit_code == 2
    unknown = runner.invoke(app, ["collectivite", "publication", "000000000", "--data-dir", data_dir])
    assert unknown.exit_code == 2 and "unknown_collectivite" in unknown.output

    off = runner.invoke(app, ["collectivite", "publication", "214400152", "--off", "--data-dir", data_dir])
    assert off.exit_code == 0 and "publication" not in connectors(settings, "214400152")["flows"]["actes"]
