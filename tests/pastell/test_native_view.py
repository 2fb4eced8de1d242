"""One view of the entité: documents deposited natively appear through the Pastell API under
the flux of their flow, in lists, details and counts, once."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from bus.store.models import Document
from connectors.inbound.pastell.flux import native_flux
from tests.conftest import SIREN_A, SIREN_B
from tests.pastell.conftest import basic, deposit_acte, id_e_of, new_acte


def test_each_native_flow_has_one_flux() -> None:
    assert {flow: flux.id for flow, flux in native_flux().items()} == {
        "actes": "actes-generique", "helios": "helios-generique", "pdf-signature": "document-a-signer"}


async def test_a_native_acte_is_listed_detailed_and_counted_once(http: httpx.AsyncClient, keys) -> None:  # type: ignore[no-untyped-def]
    a = basic(keys["a"])
    id_e = await id_e_of(http, keys["a"], SIREN_A)
    native = await deposit_acte(http, keys["a"], SIREN_A, "NAT_1", annexes=1)
    # A Pastell draft sent to the préfecture is also a dematbus document: it must not count twice.
    http.headers.update(a)
    sent = await new_acte(http, id_e, numero_de_lacte="PAS_1")
    assert (await http.post(f"/api/v2/entite/{id_e}/document/{sent}/action/send-tdt")).status_code == 201
    draft = await new_acte(http, id_e, numero_de_lacte="PAS_2")  # a draft stays a draft

    rows = (await http.get(f"/api/v2/entite/{id_e}/document")).json()
    assert sorted(r["id_d"] for r in rows) == sorted([native, sent, draft])
    row = next(r for r in rows if r["id_d"] == native)
    assert (row["type"], row["titre"], row["last_action"], row["siren"]) == (
        "actes-generique", "Délibération NAT_1", "send-tdt", SIREN_A)
    assert next(r for r in rows if r["id_d"] == draft)["last_action"] == "modification"
    assert [r["id_d"] for r in (await http.get(f"/api/v2/entite/{id_e}/document?numero_de_lacte=NAT_1")).json()] == [native]

    detail = (await http.get(f"/api/v2/entite/{id_e}/document/{native}")).json()
    assert detail["info"]["type"] == "actes-generique"
    assert {k: detail["data"][k] for k in ("acte_nature", "numero_de_lacte", "objet", "classification")} == {
        "acte_nature": "1", "numero_de_lacte": "NAT_1", "objet": "Délibération NAT_1", "classification": "1.1"}
    assert detail["data"]["arrete"] == ["deliberation.pdf"] and detail["data"]["autre_document_attache"] == ["annexe0.pdf"]
    assert detail["last_action"]["action"] == "send-tdt"
    pdf = await http.get(f"/api/v2/entite/{id_e}/document/{native}/file/arrete")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    several = (await http.get(f"/api/v2/entite/{id_e}/document?id_d[]={native}&id_d[]={draft}")).json()
    assert set(several) == {native, draft}

    counts = (await http.get(f"/api/v2/document/count?id_e={id_e}&type=actes-generique")).json()
    assert counts[str(id_e)]["flux"] == {"actes-generique": {"send-tdt": 2, "modification": 1}}
    assert counts[str(id_e)]["info"]["is_active"] == "1"
    assert (await http.get(f"/api/v2/entite/{id_e}/document/count")).json() == "3"
    assert (await http.get(f"/api/v2/entite/{id_e}/document/count?lastetat=send-tdt")).json() == "2"
    everything = (await http.get("/api/v2/document/count")).json()
    assert list(everything) == [str(id_e)]  # only the key's collectivité
    journal = (await http.get(f"/api/v2/journal?id_e={id_e}&id_d={native}")).json()
    assert journal and {j["id_d"] for j in journal} == {native} and journal[0]["document_type"] == "actes-generique"


async def test_native_documents_follow_their_state_and_can_leave_the_pastell_view(http: httpx.AsyncClient, keys, store) -> None:  # type: ignore[no-untyped-def]
    a = basic(keys["a"])
    id_e = await id_e_of(http, keys["a"], SIREN_A)
    native = await deposit_acte(http, keys["a"], SIREN_A, "NAT_2")
    async with store.transaction() as session:  # as the worker would, once the SAE accepted it
        await session.execute(update(Document).where(Document.id == native).values(state="archived", stage="sae"))
    detail = (await http.get(f"/api/v2/entite/{id_e}/document/{native}", headers=a)).json()
    assert detail["last_action"]["action"] == "accepter-sae" and detail["action_possible"] == ["supression"]
    gone = await http.post(f"/api/v2/entite/{id_e}/document/{native}/action/supression", headers=a)
    assert gone.status_code == 201 and gone.json()["result"] is True
    assert (await http.get(f"/api/v2/entite/{id_e}/document", headers=a)).json() == []
    assert (await http.get(f"/api/v2/entite/{id_e}/document/{native}", headers=a)).status_code == 404
    kept = await http.get(f"/api/v1/documents/{native}", headers={"Authorization": f"Bearer {keys['a']}"})
    assert kept.status_code == 200 and kept.json()["state"] == "archived"  # the document and its journal stay


async def test_another_collectivites_native_document_is_never_shown(http: httpx.AsyncClient, keys) -> None:  # type: ignore[no-untyped-def]
    theirs = await deposit_acte(http, keys["b"], SIREN_B, "NAT_B")
    id_e_a = await id_e_of(http, keys["a"], SIREN_A)
    id_e_b = await id_e_of(http, keys["b"], SIREN_B)
    a = basic(keys["a"])
    assert (await http.get(f"/api/v2/entite/{id_e_a}/document", headers=a)).json() == []
    same_id = await http.get(f"/api/v2/entite/{id_e_a}/document/{theirs}", headers=a)
    assert same_id.status_code == 404 and same_id.json() == {
        "status": "error", "error-message": f"Le document {theirs} n'appartient pas à l'entité {id_e_a}"}
    for path in (f"/api/v2/entite/{id_e_b}/document", f"/api/v2/entite/{id_e_b}/document/{theirs}",
                 f"/api/v2/entite/{id_e_b}/document/{theirs}/file/arrete", f"/api/v2/document/count?id_e={id_e_b}",
                 f"/api/v2/entite/{id_e_b}/document/count", f"/api/v2/journal?id_e={id_e_b}"):
        resp = await http.get(path, headers=a)
        assert resp.status_code == 403 and set(resp.json()) == {"status", "error-message"}, path
    journal_b = (await http.get(f"/api/v2/journal?id_e={id_e_b}", headers=basic(keys["b"]))).json()
    entry = await http.get(f"/api/v2/journal/{journal_b[0]['id_j']}", headers=a)
    assert entry.status_code == 404 and entry.json()["status"] == "error"
