"""`dematbus doctor` says what is wrong with a deployment, and exits 1 when something is."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bus.cli import app
from bus.collectivites import add_collectivite, simulator_connectors
from bus.embedded import free_port
from bus.store.db import Store
from connectors.signature.certificates import make_test_certificate

SIREN = "210600235"


def doctor(data_dir: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["doctor", "--data-dir", str(data_dir)], env={"COLUMNS": "250"})
    return result.exit_code, result.output


async def _deployment(data_dir: Path, url: str) -> None:
    store = Store(url)
    await store.migrate()
    cert_dir = data_dir / "certs" / SIREN
    cert, key = make_test_certificate("Maire", "Commune", cert_dir)
    cert.rename(cert_dir / "cert.pem")
    key.rename(cert_dir / "key.pem")
    async with store.transaction() as session:
        await add_collectivite(session, siren=SIREN, name="Commune", departement="006", arrondissement="2",
                               connectors=simulator_connectors(SIREN, "pades", cert_dir))
    await store.close()


def test_doctor_passes_a_sound_deployment_and_names_each_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    data_dir = tmp_path / "var"
    code, out = doctor(data_dir)
    assert code == 1 and "FAIL migrations" in out and "run `dematbus migrate`" in out

    from bus.config import Settings

    asyncio.run(_deployment(data_dir, Settings(data_dir=data_dir).db_url))
    code, out = doctor(data_dir)
    assert code == 0, out
    for check in ("configuration", "flows", "schemas", "console templates", "blob store", "store", "migrations",
                  "clock", "certificates and keys", "broker"):
        assert f"ok   {check}:" in out, (check, out)

    (data_dir / "certs" / SIREN / "key.pem").unlink()
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")  # nothing listens there
    code, out = doctor(data_dir)
    assert code == 1
    assert "FAIL certificates and keys" in out and f"{SIREN} signature.key_path" in out
    assert "FAIL broker" in out and "2 problem(s)" in out


def test_doctor_names_a_package_without_its_data_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installation built without its package data (a wheel missing the XSDs and flows)."""
    import bus.flows.definition as flows
    import schemas.xml as xml

    monkeypatch.setattr(flows, "FLOWS_DIR", tmp_path / "no-flows")
    monkeypatch.setattr(xml, "XSD_DIR", tmp_path / "no-xsd")
    xml._schema.cache_clear()
    try:
        code, out = doctor(tmp_path / "var")
    finally:
        xml._schema.cache_clear()
    assert code == 1
    assert "FAIL flows: no flow definition" in out and "FAIL schemas" in out and "package data missing" in out
