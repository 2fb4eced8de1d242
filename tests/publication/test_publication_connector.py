"""The publication stage's connector behind connectors/base.py's interface, on a real ARActe."""

from __future__ import annotations

import io
from datetime import date

import pypdf
import pytest

from connectors.base import Collectivite, InputFile, PermanentConnectorError, StageJob
from connectors.registry import ConnectorRegistry
from connectors.signature.pdf import make_pdf
from schemas.actes.metadata import today_paris
from tests.conftest import SAMPLES

ARACTE = (SAMPLES / "actes_ARActe__006-210600235-20180522-684-AI-1-2_5279__stela.xml").read_bytes()
ID_ACTE = "006-210600235-20180522-684-AI"
META = {"nature": 3, "numero_interne": "684", "auteur_prenom": "Jeanne", "auteur_nom": "Dupont",
        "auteur_qualite": "Maire", "publication": True}


def job(files: list[InputFile]) -> StageJob:
    return StageJob(document_id="d", reference="dmb-d-publication-g1", flow="actes", stage="publication",
                    collectivite=Collectivite(siren="210600235", name="Commune", departement="006",
                                              arrondissement="2", nature_code="31"),
                    metadata=META, files=files)


async def test_submit_stamps_and_poll_gives_the_replies() -> None:
    connector = ConnectorRegistry("http://sims", public_url="https://actes.example.test/").get(
        "publication", {"publication": {"kind": "registre", "url": "public://"}})
    stage = job([InputFile("acte.pdf", "document", make_pdf("Arrêté n° 684")),
                 InputFile("ar.xml", "aracte", ARACTE, "application/xml")])
    assert await connector.lookup(stage) is None  # nothing public before the stage is done
    remote_id, [published] = await connector.submit(stage)
    assert published.role == "published_document" and published.name == f"{ID_ACTE}.pdf"
    text = pypdf.PdfReader(io.BytesIO(published.data)).pages[0].extract_text()
    today = today_paris()
    assert f"Publié le {today:%d/%m/%Y}" in text and "Reçu en préfecture le 28/05/2018" in text
    assert f"ID : {ID_ACTE}" in text and "Auteur : Jeanne Dupont" in text and "Qualité : Maire" in text
    result = await connector.poll(job([]), remote_id)  # a poll reads no file
    assert result.status == "done"
    assert result.fields == {
        "date_publication": today.isoformat(),
        "publication_url": f"https://actes.example.test/publication/210600235/actes/{ID_ACTE}.pdf",
        "executoire_le": max(today, date(2018, 5, 28)).isoformat(),
    }


async def test_a_signed_acte_is_stamped_from_its_signed_version() -> None:
    connector = ConnectorRegistry("http://sims", public_url="https://x.test").get(
        "publication", {"publication": {"kind": "registre", "url": "public://"}})
    signed_marker = make_pdf("Version signée")
    stage = job([InputFile("acte.pdf", "document", make_pdf("Version déposée")),
                 InputFile("acte-signe.pdf", "signed_document", signed_marker),
                 InputFile("ar.xml", "aracte", ARACTE, "application/xml")])
    _, [published] = await connector.submit(stage)
    assert published.data.startswith(signed_marker)


async def test_without_the_prefecture_acknowledgement_nothing_is_published() -> None:
    connector = ConnectorRegistry("http://sims", public_url="https://x.test").get(
        "publication", {"publication": {"kind": "registre", "url": "public://"}})
    with pytest.raises(PermanentConnectorError, match="ARActe"):
        await connector.submit(job([InputFile("acte.pdf", "document", make_pdf("Acte"))]))
    with pytest.raises(PermanentConnectorError, match="DEMATBUS_PUBLIC_URL"):
        ConnectorRegistry("http://sims").get("publication", {"publication": {"kind": "registre", "url": "public://"}})
