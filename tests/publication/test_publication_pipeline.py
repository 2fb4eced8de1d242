"""Publication over the real pipeline: deposited with publication, an acte goes through the
`publication` stage after the préfecture's AR and before the SAE, reaches `archived`, and the three
registry forms list it; the published PDF carries the mentions; a signed acte still verifies; an
acte deposited without publication is not listed; a withdrawal is journaled and shown."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import date, datetime
from urllib.parse import quote_from_bytes
from zoneinfo import ZoneInfo

import httpx
import pypdf
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from bus.webhooks import sign
from connectors.signature.pdf import make_pdf
from tests.integration.test_actes_pipeline import states
from tests.publication.conftest import NO_SIGNATURE, PADES, SIRET, WEBHOOK_SECRET, Published

pytestmark = pytest.mark.integration


def public(p: Published, path: str):  # type: ignore[no-untyped-def]
    """A citizen's request: no key."""
    return p.bus.api.get(path, headers={})


def test_published_actes_go_through_the_stage_and_reach_the_archive(published: Published) -> None:
    for label in ("budget", "arrete", "retrait", "signe"):
        doc = published.docs[label]
        assert doc["state"] == "archived", doc
        path = states(doc)
        assert path[path.index("acknowledged"):] == ["acknowledged", "publishing", "published", "archiving", "archived"]
        replies = doc["replies"]
        assert replies["date_publication"] and replies["executoire_le"] >= replies["date_reception"]
        assert replies["executoire_le"] == max(replies["date_publication"], replies["date_reception"])
        assert replies["publication_url"].endswith(f"/publication/{doc['siren']}/actes/{replies['id_acte']}.pdf")
        roles = {f["role"]: f for f in doc["files"]}
        pdf = roles["published_document"]
        assert pdf["name"] == f"{replies['id_acte']}.pdf" and len(pdf["sha256"]) == 64
        # The archived package holds the published PDF.
        seda = published.bus.file(doc["siren"], doc["id"], roles["seda_transfer"]["name"]).decode()
        assert pdf["name"] in seda
    unpublished = published.docs["prive"]
    assert unpublished["state"] == "archived" and "publishing" not in states(unpublished)
    assert unpublished["metadata"]["publication"] is False
    assert published.docs["arrete"]["metadata"]["publication"] is True  # the collectivité's default for nature 2
    assert published.bus.s2low_duplicates() == 0


def test_the_registry_lists_them_in_three_forms_and_serves_the_stamped_pdf(published: Published) -> None:
    docs = published.docs
    html = public(published, f"/publication/{NO_SIGNATURE}")
    assert html.status_code == 200 and '<html lang="fr">' in html.text
    for label in ("budget", "arrete"):
        assert docs[label]["metadata"]["objet"] in html.text
    assert "Délibération non publiée" not in html.text

    listing = public(published, f"/publication/{NO_SIGNATURE}/actes.json").json()
    by_numero = {a["numero"]: a for a in listing["actes"]}
    assert {"PUB_BUDGET", "PUB_ARRETE", "PUB_RETRAIT"} <= set(by_numero) and "PUB_PRIVE" not in by_numero
    budget = by_numero["PUB_BUDGET"]
    replies = docs["budget"]["replies"]
    assert budget["id_acte"] == replies["id_acte"] and budget["date_publication"] == replies["date_publication"]
    assert budget["url_pdf"] == replies["publication_url"] and len(budget["annexes"]) == 1

    scdl = public(published, f"/publication/{NO_SIGNATURE}/deliberations.csv")
    rows = {r["DELIB_ID"]: r for r in csv.DictReader(io.StringIO(scdl.text), delimiter=";")}
    assert "PUB_BUDGET" in rows and "PUB_ARRETE" not in rows and "PUB_PRIVE" not in rows  # délibérations only
    row = rows["PUB_BUDGET"]
    assert row["COLL_SIRET"] == SIRET and row["DELIB_URL"] == replies["publication_url"]
    assert row["PREF_ID"] == "PREF044" and row["PREF_DATE"] == replies["date_reception"]
    assert (row["VOTE_EFFECTIF"], row["VOTE_POUR"], row["VOTE_ABSTENTION"]) == ("29", "24", "1")

    pdf = public(published, budget["url_pdf"].removeprefix(published.bus.stack.api_url))
    assert pdf.status_code == 200
    stored = next(f for f in docs["budget"]["files"] if f["role"] == "published_document")
    assert pdf.headers["x-content-sha256"] == stored["sha256"]
    text = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    published_on = datetime.fromisoformat(replies["date_publication"])
    received_on = datetime.fromisoformat(replies["date_reception"])
    for mention in (f"Publié le {published_on:%d/%m/%Y}", f"Reçu en préfecture le {received_on:%d/%m/%Y}",
                    f"ID : {replies['id_acte']}", "Auteur : Jeanne Dupont", "Qualité : Maire"):
        assert mention in text
    assert public(published, f"/publication/{NO_SIGNATURE}/actes/{docs['prive']['replies']['id_acte']}.pdf"
                  ).status_code == 404


def test_a_signed_acte_still_verifies_after_stamping(published: Published) -> None:
    doc = published.docs["signe"]
    pdf = public(published, doc["replies"]["publication_url"].removeprefix(published.bus.stack.api_url)).content
    signed = next(f for f in doc["files"] if f["role"] == "signed_document")
    assert pdf.startswith(published.bus.file(PADES, doc["id"], signed["name"]))  # an incremental update
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    assert reader.embedded_signatures
    for sig in reader.embedded_signatures:
        status = validate_pdf_signature(sig, ValidationContext(trust_roots=[sig.signer_cert], allow_fetching=False))
        assert status.intact and status.valid and status.bottom_line, status.pretty_print_details()
        assert "Commune PAdES" in status.signing_cert.subject.human_friendly
    field = next(a.get_object() for a in pypdf.PdfReader(io.BytesIO(pdf)).pages[0]["/Annots"]
                 if a.get_object().get("/T") == "Publication")
    assert f"ID : {doc['replies']['id_acte']}" in field["/TU"] and "Qualité : Maire de la commune" in field["/TU"]


def test_a_withdrawal_is_journaled_and_shown(published: Published) -> None:
    doc = published.docs["retrait"]
    reason = "Publiée par erreur avant la séance"
    resp = published.bus.api.request("DELETE", f"/api/v1/documents/{doc['id']}/publication",
                                     headers=published.op(), json={"reason": reason})
    assert resp.status_code == 200, resp.text
    after = published.bus.get(NO_SIGNATURE, doc["id"])
    entry = after["timeline"][-1]
    assert entry["event"] == "publication.withdrawn" and entry["detail"]["by"] == "Opératrice Camille"
    assert entry["detail"]["reason"] == reason and after["state"] == "archived"
    page = public(published, f"/publication/{NO_SIGNATURE}").text
    assert "Délibération publiée par erreur" in page and "Retiré le" in page and reason in page
    gone = public(published, doc["replies"]["publication_url"].removeprefix(published.bus.stack.api_url))
    assert gone.status_code == 410 and reason in gone.text
    listed = {a["numero"]: a for a in public(published, f"/publication/{NO_SIGNATURE}/actes.json").json()["actes"]}
    assert listed["PUB_RETRAIT"]["statut"] == "retire"
    assert wait_for_webhook(published, doc["id"], "event", "publication.withdrawn")  # business software is told


def wait_for_webhook(published: Published, document_id: str, key: str, value: str) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(json.loads(b)["document_id"] == document_id and json.loads(b)[key] == value
               for _, b in published.receiver.calls):
            return True
        time.sleep(0.3)
    return False


def test_publications_are_counted_and_announced(published: Published) -> None:
    bus, op = published.bus, published.op()
    year = datetime.now(ZoneInfo("Europe/Paris")).year
    report = bus.api.get("/api/v1/reports/volumes", params={"year": year, "siren": NO_SIGNATURE}, headers=op).json()
    [totals] = [t for t in report["totals"]["collectivites"] if t["flow"] == "actes"]
    assert totals["published"] >= 3 and totals["archived"] >= 4  # the prive acte is archived, not published

    def live() -> int | None:
        got = bus.api.get("/api/v1/counters", params={"siren": NO_SIGNATURE, "flow": "actes"}, headers=op).json()
        return next((t["counts"].get("published") for t in got["totals"]["collectivites"]), None)

    deadline = time.monotonic() + 30
    while live() != totals["published"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert live() == totals["published"]  # the live counters agree with the journal's report

    for label in ("budget", "arrete", "retrait"):  # a webhook event at publication
        assert wait_for_webhook(published, published.docs[label]["id"], "state", "published"), label
    for headers, body in published.receiver.calls:
        assert headers["x-dematbus-signature"] == sign(WEBHOOK_SECRET, body)


def test_a_pastell_client_asks_for_publication(published: Published) -> None:
    """actes-generique's `publication_open_data` (Mégalis's field) and the author fields; the
    publication date comes back as `acte_publication_date` (ls-actes's field)."""
    bus = published.bus
    with httpx.Client(base_url=bus.stack.api_url + "/api/v2", auth=("apikey", bus.keys[NO_SIGNATURE]),
                      timeout=30) as api:
        id_e = next(e["id_e"] for e in api.get("/entite").json() if e["siren"] == NO_SIGNATURE)
        id_d = api.post(f"/entite/{id_e}/document", params={"type": "actes-generique"}).json()["id_d"]
        fields = {"acte_nature": "1", "numero_de_lacte": "PUB_PASTELL", "objet": "Délibération par Pastell",
                  "date_de_lacte": date.today().isoformat(), "classification": "7.1", "envoi_tdt": "on",
                  "publication_open_data": "1"}
        assert api.patch(f"/entite/{id_e}/document/{id_d}", data=fields).status_code == 200
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        body = b"file_name=deliberation.pdf&file_content=" + quote_from_bytes(make_pdf("Délibération")).encode()
        assert api.post(f"/entite/{id_e}/document/{id_d}/file/arrete", content=body, headers=form).status_code == 201
        refused = api.post(f"/entite/{id_e}/document/{id_d}/action/send-tdt")
        assert refused.status_code == 400 and "auteur" in refused.text  # the author is required to publish
        author = {"auteur_prenom": "Paul", "auteur_nom": "Martin", "auteur_qualite": "Premier adjoint"}
        assert api.patch(f"/entite/{id_e}/document/{id_d}", data=author).status_code == 200
        assert api.post(f"/entite/{id_e}/document/{id_d}/action/send-tdt").status_code == 201
        doc = bus.wait(NO_SIGNATURE, id_d, timeout=120)
        assert doc["state"] == "archived" and "published" in states(doc)
        detail = api.get(f"/entite/{id_e}/document/{id_d}").json()
        assert detail["data"]["acte_publication_date"] == doc["replies"]["date_publication"]
    listed = {a["numero"]: a for a in public(published, f"/publication/{NO_SIGNATURE}/actes.json").json()["actes"]}
    assert listed["PUB_PASTELL"]["auteur"] == "Paul Martin" and listed["PUB_PASTELL"]["qualite"] == "Premier adjoint"
