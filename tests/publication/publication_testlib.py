"""Published actes written into the store as the pipeline leaves them: the real ARActe builder,
the real publication connector (stamp, replies), blobs and journal; for the registry's HTTP tests
(the pipeline itself is tests/publication/test_publication_pipeline.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from bus.blobs import BlobStore
from bus.store import journal
from bus.store.db import Store
from bus.store.models import Document, File
from connectors.base import Collectivite, InputFile, StageJob
from connectors.publication.connector import PublicationConnector
from connectors.signature.pdf import make_pdf
from schemas.actes.archive import build_acte_xml
from schemas.actes.messages import build_aracte
from schemas.actes.metadata import parse_metadata
from schemas.actes.naming import id_acte

BASE_URL = "https://actes.example.test"
AUTEUR = {"auteur_prenom": "Jeanne", "auteur_nom": "Dupont", "auteur_qualite": "Maire"}


@dataclass
class Seeded:
    document_id: str
    id_acte: str
    published: bytes  # the published PDF
    annexes: list[bytes]


async def seed_acte(store: Store, blobs: BlobStore, siren: str, departement: str, numero: str, *,
                    objet: str = "Délibération de test", nature: int = 1, decided: date | None = None,
                    publish: bool = True, annexes: int = 0, votes: dict[str, int] | None = None) -> Seeded:
    decided = decided or date.today() - timedelta(days=2)
    meta: dict[str, Any] = {"nature": nature, "numero_interne": numero, "date_decision": decided.isoformat(),
                            "objet": objet, "classification": "7.1", "publication": publish,
                            **(AUTEUR if publish else {}), **(votes or {})}
    parsed = parse_metadata(meta)
    ida = id_acte(departement, siren, decided, numero, nature)
    document = make_pdf(objet, [f"Acte {numero}."])
    annex_data = [make_pdf(f"Annexe {i} de {numero}") for i in range(1, annexes + 1)]
    aracte = build_aracte(build_acte_xml(parsed, date(2019, 3, 1), "acte.pdf", [f"annexe{i}.pdf" for i in range(1, annexes + 1)]),
                          id_acte=ida, date_reception=decided + timedelta(days=1), classification_date=date(2019, 3, 1))
    replies: dict[str, Any] = {"id_acte": ida, "date_reception": (decided + timedelta(days=1)).isoformat()}
    files: list[tuple[str, str, bytes, str]] = [("acte.pdf", "document", document, "application/pdf"),
                                               *((f"annexe{i}.pdf", "annexe", d, "application/pdf")
                                                 for i, d in enumerate(annex_data, start=1)),
                                               (f"{ida}.xml", "aracte", aracte, "application/xml")]
    published = b""
    if publish:
        job = StageJob(document_id="seed", reference="seed", flow="actes", stage="publication",
                       collectivite=Collectivite(siren=siren, name="", departement=departement, arrondissement="1",
                                                 nature_code="31"),
                       metadata=meta, files=[InputFile("acte.pdf", "document", document),
                                             InputFile(f"{ida}.xml", "aracte", aracte, "application/xml")])
        connector = PublicationConnector(BASE_URL)
        remote_id, [out] = await connector.submit(job)
        replies.update((await connector.poll(job, remote_id)).fields)
        published = out.data
        files.append((out.name, out.role, out.data, out.media_type))
    doc_id = str(uuid.uuid4())
    async with store.transaction() as session:
        session.add(Document(id=doc_id, flow="actes", siren=siren, state="archived", stage="sae", meta=meta,
                             replies=replies, business_key=numero))
        await session.flush()
        for name, role, data, media_type in files:
            ref = blobs.put(data)
            session.add(File(document_id=doc_id, role=role, name=name, size=ref.size, sha256=ref.sha256,
                             media_type=media_type))
        await journal.append(session, doc_id, "deposited", "deposited", {})
        await journal.append(session, doc_id, "stage.done", "archived", {"stage": "sae"})
    return Seeded(doc_id, ida, published, annex_data)
