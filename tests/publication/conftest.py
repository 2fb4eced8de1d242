"""The real pipeline once for the package (spawned broker, simulators, API, worker; see
tests/integration/conftest.py) with publication turned on for two collectivités, and the actes
both the pipeline test and the browser test read, deposited and followed to their end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from bus.publication import configure
from bus.store.db import Store
from connectors.signature.pdf import make_pdf
from schemas.actes.publication import PublicationSettings
from tests.console.conftest import browser, page  # noqa: F401  (Debian's Chromium, for test_registry_browser)
from tests.integration.conftest import Bus, start_bus
from tests.webhook_receiver import Receiver

NO_SIGNATURE, PADES = "214400152", "210600235"
SIRET = NO_SIGNATURE + "00017"
AUTEUR = {"auteur_prenom": "Jeanne", "auteur_nom": "Dupont", "auteur_qualite": "Maire"}
WEBHOOK_SECRET = "a-webhook-secret-for-publication"


@dataclass
class Published:
    bus: Bus
    receiver: Receiver
    docs: dict[str, dict[str, Any]]  # label -> the document once terminal

    def op(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bus.keys['operator']}"}


def deposit(bus: Bus, siren: str, meta: dict[str, Any], annexes: int = 0) -> str:
    meta = {"date_decision": date.today().isoformat(), "classification": "7.1", **meta}
    files = [("document", ("acte.pdf", make_pdf(meta["objet"], [f"Acte {meta['numero_interne']}."]), "application/pdf"))]
    files += [("annexes", (f"annexe{i}.pdf", make_pdf(f"Annexe {i}"), "application/pdf")) for i in range(1, annexes + 1)]
    resp = bus.api.post("/api/v1/documents", headers={"Authorization": f"Bearer {bus.keys[siren]}"},
                        data={"flow": "actes", "siren": siren, "metadata": json.dumps(meta)}, files=files)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


async def _turn_publication_on(bus: Bus) -> None:
    store = Store(bus.stack.settings.db_url)
    try:
        async with store.transaction() as session:
            await configure(session, NO_SIGNATURE, PublicationSettings(natures=[2], siret=SIRET))
            await configure(session, PADES, PublicationSettings())
    finally:
        await store.close()


@pytest.fixture(scope="package")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    bus = start_bus(tmp_path_factory.mktemp("publication"))
    receiver = Receiver(failures=0)
    try:
        asyncio.run(_turn_publication_on(bus))
        hook = bus.api.post("/api/v1/webhooks", headers={"Authorization": f"Bearer {bus.keys['operator']}"},
                            json={"siren": NO_SIGNATURE, "url": receiver.url, "secret": WEBHOOK_SECRET})
        assert hook.status_code == 201, hook.text
        votes = {"vote_effectif": 29, "vote_reel": 27, "vote_pour": 24, "vote_contre": 2, "vote_abstention": 1}
        ids = {
            "budget": (NO_SIGNATURE, deposit(bus, NO_SIGNATURE, {
                "nature": 1, "numero_interne": "PUB_BUDGET", "objet": "Vote du budget primitif 2027",
                "publication": True, **AUTEUR, **votes}, annexes=1)),
            "arrete": (NO_SIGNATURE, deposit(bus, NO_SIGNATURE, {  # nature 2: published by default
                "nature": 2, "numero_interne": "PUB_ARRETE", "objet": "Arrêté de stationnement place du marché",
                "classification": "6.1", **AUTEUR})),
            "retrait": (NO_SIGNATURE, deposit(bus, NO_SIGNATURE, {
                "nature": 1, "numero_interne": "PUB_RETRAIT", "objet": "Délibération publiée par erreur",
                "publication": True, **AUTEUR})),
            "prive": (NO_SIGNATURE, deposit(bus, NO_SIGNATURE, {
                "nature": 1, "numero_interne": "PUB_PRIVE", "objet": "Délibération non publiée"})),
            "signe": (PADES, deposit(bus, PADES, {
                "nature": 1, "numero_interne": "PUB_SIGNE", "objet": "Délibération signée et publiée",
                "signature": True, "publication": True, **AUTEUR, "auteur_qualite": "Maire de la commune"})),
        }
        docs = {label: bus.wait(siren, doc_id, timeout=120) for label, (siren, doc_id) in ids.items()}
        yield Published(bus, receiver, docs)
    finally:
        receiver.close()
        bus.close()
        bus.stack.stop()
