"""Secrets never reach a log: a whole run of the real pipeline (broker, simulators, API, worker)
signs a PES with a PKCS#12 keystore whose password comes from the environment, signs an acte in
PAdES with a PEM key, goes through the i-Parapheur, delivers webhooks signed with a secret (one
retried past a failing receiver), takes failed logins on every face; then every log of the run is
searched for the keystore password, the private keys, the webhook secret and every API key
(the ones used and the ones guessed)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import signal
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, load_pem_private_key, pkcs12

from bus.store.db import Store
from bus.store.models import Collectivite
from connectors.signature.pdf import make_pdf
from tests.integration.conftest import Bus, start_bus
from tests.integration.test_helios_pipeline import PES_SIREN, deposit_pes, unsigned_sample
from tests.webhook_receiver import Receiver

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bool(os.environ.get("DEMATBUS_TEST_POSTGRES")), reason="one whole run, on the SQLite pass"),
]

P12_PASSWORD = "p12-" + secrets.token_urlsafe(18)
WEBHOOK_SECRET = "whsec-" + secrets.token_urlsafe(18)
GUESSED_KEY = f"dmb_{secrets.token_hex(6)}_{secrets.token_urlsafe(24)}"
PASSWORD_ENV = "DEMATBUS_SECRET_TEST_P12_PASSWORD"


async def _use_keystore(bus: Bus) -> Path:
    """The PES collectivité signs with a PKCS#12 keystore; its password is only in the environment."""
    cert_dir = bus.stack.data_dir / "certs" / PES_SIREN
    key = load_pem_private_key((cert_dir / "key.pem").read_bytes(), None)
    cert = x509.load_pem_x509_certificate((cert_dir / "cert.pem").read_bytes())
    p12 = cert_dir / "ordonnateur.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(b"ord", key, cert, None,  # type: ignore[arg-type]
                                                          BestAvailableEncryption(P12_PASSWORD.encode())))
    store = Store(bus.stack.settings.db_url)
    async with store.transaction() as session:
        coll = await session.get(Collectivite, PES_SIREN)
        assert coll is not None
        coll.connectors = {**coll.connectors, "signature_helios": {
            "kind": "xades", "role": "Ordonnateur", "cert_path": str(p12), "key_path": str(p12),
            "password_env": PASSWORD_ENV}}
    await store.close()
    return p12


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    bus = start_bus(tmp_path_factory.mktemp("secrets"), env={PASSWORD_ENV: P12_PASSWORD})
    receiver = Receiver(failures=1)
    try:
        asyncio.run(_use_keystore(bus))
        # The worker logs at INFO (what an operator runs; the default is WARNING): more to search.
        bus.stack.kill("worker", signal.SIGTERM)
        bus.stack.spawn("worker", "worker", "--loglevel", "info")
        bus.stack.wait_workers(1, timeout=90)
        operator = {"Authorization": f"Bearer {bus.keys['operator']}"}
        hook = bus.api.post("/api/v1/webhooks", headers=operator,
                            json={"siren": PES_SIREN, "url": receiver.url, "secret": WEBHOOK_SECRET})
        assert hook.status_code == 201, hook.text
        # failed logins on every face, with a key-shaped guess
        bus.api.get("/api/v1/documents", headers={"Authorization": f"Bearer {GUESSED_KEY}"})
        bus.api.get("/api/v2/entite", auth=("apikey", GUESSED_KEY))
        bus.api.post("/console/login", data={"key": GUESSED_KEY, "next": ""})

        pes = deposit_pes(bus, unsigned_sample("SECRET_PES_1"))
        actes = []
        for siren, signature in (("210600235", True), ("491011698", True), ("214400152", False)):
            meta = {"nature": 1, "numero_interne": f"SECRET_{siren[:3]}", "date_decision": date.today().isoformat(),
                    "objet": "Délibération", "classification": "1.1", "signature": signature}
            resp = bus.api.post("/api/v1/documents", headers={"Authorization": f"Bearer {bus.keys[siren]}"},
                                data={"flow": "actes", "siren": siren, "metadata": json.dumps(meta)},
                                files=[("document", ("deliberation.pdf", make_pdf("Délibération"), "application/pdf"))])
            assert resp.status_code == 201, resp.text
            actes.append((siren, resp.json()["id"]))
        assert bus.wait(PES_SIREN, pes["id"], timeout=120)["state"] == "archived"
        for siren, doc_id in actes:
            assert bus.wait(siren, doc_id, timeout=120)["state"] == "archived"
        deadline = time.monotonic() + 60
        while len(receiver.calls) < 3 and time.monotonic() < deadline:  # one failed, then delivered
            time.sleep(0.3)
        assert len(receiver.calls) >= 3
        yield bus
    finally:
        receiver.close()
        bus.close()
        bus.stack.stop()


def _pem_body_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("-----")]


def test_no_secret_in_any_log_of_a_whole_run(run: Bus) -> None:
    data_dir = run.stack.data_dir
    logs = sorted(p for p in data_dir.rglob("*.log") if p.is_file())
    assert {"api.log", "worker.log", "simulators.log"} <= {p.name for p in logs}
    text = {p.name: p.read_text(errors="replace") for p in logs}
    assert len(text["worker.log"].splitlines()) > 20, text["worker.log"][-2000:]  # the search has something to read

    secrets_: dict[str, str] = {"keystore password": P12_PASSWORD, "webhook secret": WEBHOOK_SECRET,
                                "guessed key": GUESSED_KEY}
    secrets_ |= {f"API key of {who}": key for who, key in run.keys.items()}
    # dmb_<id>_<secret>: the secret may itself hold "_", so split from the left
    secrets_ |= {f"API key secret of {who}": key.split("_", 2)[2] for who, key in run.keys.items()}
    secrets_["webhook secret (base64)"] = base64.b64encode(WEBHOOK_SECRET.encode()).decode()
    for key_file in data_dir.glob("certs/*/key.pem"):
        for i, line in enumerate(_pem_body_lines(key_file)[1:-1]):  # every full line of the key
            secrets_[f"{key_file.parent.name} private key line {i}"] = line
    found = [f"{what} in {name}" for name, body in text.items() for what, value in secrets_.items() if value in body]
    found += [f"a private key in {name}" for name, body in text.items() if re.search(r"PRIVATE KEY", body)]
    assert not found, found
