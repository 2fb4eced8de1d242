"""Demo collectivités for `dematbus up --demo`: three authorities with keys, certificates, their
préfecture classification, registered at the simulators, and a few actes deposited."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import httpx

from bus.collectivites import add_collectivite, simulator_connectors
from bus.publication import configure as configure_publication
from bus.store.apikeys import create_key
from bus.store.db import Store
from bus.store.entites import ensure_ids
from connectors.signature.certificates import make_test_certificate
from connectors.signature.pdf import make_pdf
from schemas.actes.publication import PublicationSettings


@dataclass
class DemoCollectivite:
    siren: str
    name: str
    departement: str
    arrondissement: str
    nature_code: str
    signature: str | None
    siret: str | None = None  # set: the collectivité publishes its actes (its registry: /publication/<SIREN>)
    api_key: str = ""
    id_e: int = 0  # Pastell API entité id


DEMO = [
    DemoCollectivite("210600235", "Commune de Démo-les-Pins", "006", "2", "31", "pades"),
    DemoCollectivite("491011698", "Communauté de communes du Val de Démo", "034", "3", "44", "iparapheur"),
    DemoCollectivite("214400152", "Commune de Démo-sur-Loire", "044", "1", "31", None, siret="21440015200017"),
]


async def ensure_demo(store: Store, data_dir: Path) -> list[DemoCollectivite]:
    """Create (once) the demo collectivités and their keys; later runs reuse them."""
    keys_file = data_dir / "demo-keys.json"
    known: dict[str, str] = json.loads(keys_file.read_text()) if keys_file.exists() else {}
    result = []
    async with store.transaction() as session:
        for demo in DEMO:
            cert_dir = data_dir / "certs" / demo.siren
            if not (cert_dir / "cert.pem").exists():
                cert_dir.mkdir(parents=True, exist_ok=True)
                cert, key = make_test_certificate(f"Maire de {demo.name}", demo.name, cert_dir)
                cert.rename(cert_dir / "cert.pem")
                key.rename(cert_dir / "key.pem")
            await add_collectivite(
                session, siren=demo.siren, name=demo.name, departement=demo.departement,
                arrondissement=demo.arrondissement, nature_code=demo.nature_code,
                connectors=simulator_connectors(demo.siren, demo.signature, cert_dir),
            )
            if demo.siret:
                await configure_publication(session, demo.siren, PublicationSettings(siret=demo.siret))
            if demo.siren not in known:
                known[demo.siren] = await create_key(session, [demo.siren], ["depositor", "operator", "reporter"],
                                                     name=f"demo {demo.name}")
            result.append(DemoCollectivite(**{**asdict(demo), "api_key": known[demo.siren]}))
        ids = await ensure_ids(session)
        for entry in result:
            entry.id_e = ids[entry.siren]
    keys_file.write_text(json.dumps(known, indent=2))
    keys_file.chmod(0o600)
    return result


def register_at_simulators(simulators_url: str, collectivites: list[tuple[str, str, str, str, str]]) -> None:
    """Tell the S²low simulator who each login is (SIREN, département, arrondissement, nature)."""
    with httpx.Client(base_url=simulators_url, timeout=10) as client:
        for siren, name, departement, arrondissement, nature in collectivites:
            client.put(f"/s2low/_admin/authorities/{siren}", json={
                "login": siren, "password": f"s2low-{siren}", "departement": departement,
                "arrondissement": arrondissement, "nature": nature, "name": name,
            }).raise_for_status()


def deposit_demo_actes(api_url: str, demos: list[DemoCollectivite]) -> list[str]:
    ids = []
    today = date.today()
    with httpx.Client(base_url=api_url, timeout=30) as client:
        for i, demo in enumerate(demos, start=1):
            meta = {
                "nature": 1, "numero_interne": f"DEMO{today:%Y%m%d}_{i}", "date_decision": today.isoformat(),
                "objet": f"Délibération de démonstration n°{i} — {demo.name}", "classification": "1.1",
                "signature": demo.signature is not None,
            }
            if demo.siret:  # published on its registry: the author is then required
                meta |= {"publication": True, "auteur_prenom": "Camille", "auteur_nom": "Martin",
                         "auteur_qualite": "Maire"}
            pdf = make_pdf(meta["objet"], [f"Le conseil, après en avoir délibéré, décide ({demo.name})."])
            resp = client.post(
                "/api/v1/documents",
                headers={"Authorization": f"Bearer {demo.api_key}", "Idempotency-Key": f"demo-{meta['numero_interne']}"},
                data={"flow": "actes", "siren": demo.siren, "metadata": json.dumps(meta)},
                files={"document": ("deliberation.pdf", pdf, "application/pdf")},
            )
            resp.raise_for_status()
            ids.append(resp.json()["id"])
    return ids


async def prepare_stack(store: Store, data_dir: Path, simulators_url: str, demo: bool) -> tuple[list[DemoCollectivite], bool]:
    """What `dematbus up` does once its processes answer: create the demo collectivités if asked,
    register every collectivité at the S²low simulator. Returns the demo ones and whether the
    store already holds documents (a second run deposits no demo actes again)."""
    from sqlalchemy import func, select

    from bus.store.models import Collectivite, Document

    demos = await ensure_demo(store, data_dir) if demo else []
    async with store.sessions() as session:
        rows = (await session.execute(select(Collectivite))).scalars().all()
        has_documents = (await session.execute(select(func.count()).select_from(Document))).scalar_one() > 0
    register_at_simulators(simulators_url, [(c.siren, c.name, c.departement, c.arrondissement, c.nature_code)
                                            for c in rows])
    return demos, has_documents
