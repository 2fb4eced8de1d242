"""The Pastell API quirks real clients depend on (docs/pastell-clients.md §2.3), in-process."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from urllib.parse import quote_from_bytes

import httpx
import pytest
from sqlalchemy import func, select

from bus.store.models import Document, Effect, OutboxEvent, PastellDocument, utcnow
from bus.topics import EVENTS
from connectors.inbound.api import create_app
from connectors.inbound.pastell.paths import normalise
from tests.conftest import SIREN_A, SIREN_B
from tests.pastell.conftest import PDF, basic, new_acte



@pytest.fixture
async def api(settings, store, keys) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    app = create_app(settings, store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers=basic(keys["a"])) as client:
        yield client


async def id_e_of(api: httpx.AsyncClient) -> int:
    entites = (await api.get("/api/v2/entite")).json()
    assert [e["siren"] for e in entites] == [SIREN_A]  # only the key's collectivité
    return int(entites[0]["id_e"])


@pytest.mark.parametrize(("raw", "expected"), [
    ("/api/v2//entite/34/document/68hpWOt", "/api/v2/entite/34/document/68hpWOt"),
    ("/api//v2/Entite/1/document/x/externalData/type_piece", "/api/v2/entite/1/document/x/externalData/type_piece"),
    ("/api/v2/Flux", "/api/v2/flux"),
    ("/api/v2/Document/count", "/api/v2/document/count"),
    ("/api/v2/entite/1/Document/abc/", "/api/v2/entite/1/document/abc"),
    ("/api/v2/api/v2/entite/1/document/x/action/send-iparapheur", "/api/v2/entite/1/document/x/action/send-iparapheur"),
    ("/api/v2/Utilisateur/3/Role", "/api/v2/utilisateur/3/role"),
    ("/api/v2/familleConnecteur/TdT/s2low", "/api/v2/familleConnecteur/TdT/s2low"),  # names stay as sent
    ("/web/api/version.php", "/api/version.php"),
    ("/api/v1/documents/Abc/", "/api/v1/documents/Abc/"),  # the native API is not touched
    ("/api/v1//documents", "/api/v1//documents"),
    ("//health", "//health"),
])
def test_paths_are_normalised_like_pastell_routes_them(raw: str, expected: str) -> None:
    assert normalise(raw, b"")[0] == expected


def test_php_script_with_ampersand_instead_of_question_mark() -> None:
    assert normalise("//api/create-document.php&id_e=1&type=document-a-signer", b"") == (
        "/api/create-document.php", b"id_e=1&type=document-a-signer")


async def test_creation_type_in_query_or_body_json_body_ignored(api: httpx.AsyncClient) -> None:
    id_e = await id_e_of(api)
    by_query = await api.post(f"/api/v2//Entite/{id_e}/document?type=actes-generique", content=b"[]",
                              headers={"content-type": "application/json"})
    by_form = await api.post(f"/api/v2/entite/{id_e}/document", data={"type": "ls-document-pdf"})
    by_multipart = await api.post(f"/api/v2/entite/{id_e}/document", files={"type": (None, "helios-generique")})
    for answer, flux in ((by_query, "actes-generique"), (by_form, "ls-document-pdf"),
                         (by_multipart, "helios-generique")):
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["info"]["type"] == flux and body["id_d"] == body["info"]["id_d"]
        assert body["data"] is None
        assert body["action_possible"] == body["action-possible"] == ["modification", "supression"]
        assert body["last_action"]["action"] == "creation"


async def test_file_content_as_file_part_plain_part_or_urlencoded_field(api: httpx.AsyncClient) -> None:
    id_e = await id_e_of(api)
    id_d = (await api.post(f"/api/v2/entite/{id_e}/document?type=ls-document-pdf")).json()["id_d"]
    blob = bytes(range(256)) * 4 + PDF  # every byte value, then a PDF
    base = f"/api/v2/entite/{id_e}/document/{id_d}/file/annexe"
    assert (await api.post(f"{base}/0", files={"file_name": (None, "a.bin"),
                                               "file_content": ("a.bin", blob)})).status_code == 201
    assert (await api.post(f"{base}/1", files={"file_name": (None, "b.bin"),
                                               "file_content": (None, blob)})).status_code == 201
    encoded = b"file_name=c.bin&file_content=" + quote_from_bytes(blob).encode()
    third = await api.post(f"{base}/2", content=encoded,
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert third.status_code == 201
    assert third.json()["content"]["data"]["annexe"] == ["a.bin", "b.bin", "c.bin"]
    for n in range(3):
        got = await api.get(f"{base}/{n}")
        assert got.status_code == 200 and got.content == blob
    replaced = await api.post(f"{base}/1", files={"file_content": ("d.pdf", PDF)})
    assert replaced.json()["content"]["data"]["annexe"] == ["a.bin", "d.pdf", "c.bin"]
    received = (await api.get(f"{base}/1?receive=true")).json()
    assert received["file_name"] == "d.pdf"
    assert (await api.get(f"{base}/3")).status_code == 404  # "not there yet" for Pastell-Ponts
    assert (await api.get(f"/api/v2/entite/{id_e}/document/{id_d}/file/document")).status_code == 404


async def test_patch_answers_200_ignores_unknown_fields_and_reports_validity(api: httpx.AsyncClient) -> None:
    id_e = await id_e_of(api)
    id_d = (await api.post(f"/api/v2/entite/{id_e}/document?type=actes-generique")).json()["id_d"]
    answer = await api.patch(f"/api/v2/entite/{id_e}/document/{id_d}",
                             content=b"objet=%C3%A9cole&envoi_tdt=on&champ_inconnu=1&acte_nature=2",
                             headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["result"] == "ok" and body["formulaire_ok"] == 0
    assert body["message"].startswith("Le formulaire est incomplet : le champ «")
    assert body["content"]["data"]["objet"] == "école" and body["content"]["data"]["envoi_tdt"] == "on"
    assert "champ_inconnu" not in body["content"]["data"]
    assert body["content"]["last_action"] == {"action": "modification", "message": "Modification du document [WS]",
                                              "date": body["content"]["last_action"]["date"]}


async def test_v2_refuses_iso_8859_1_and_v1_reads_it(api: httpx.AsyncClient, keys) -> None:  # type: ignore[no-untyped-def]
    id_e = await id_e_of(api)
    id_d = (await api.post(f"/api/v2/entite/{id_e}/document?type=actes-generique")).json()["id_d"]
    latin = await api.patch(f"/api/v2/entite/{id_e}/document/{id_d}", content="objet=école".encode("latin-1"))
    assert latin.status_code == 400
    assert latin.json() == {"status": "error", "error-message": (
        "Impossible d'encoder le résultat en JSON [code 5]: Malformed UTF-8 characters, possibly incorrectly encoded")}
    v1 = await api.post("/api/modif-document.php", files={"id_e": (None, str(id_e)), "id_d": (None, id_d),
                                                          "objet": (None, "école".encode("latin-1"))})
    assert v1.json()["content"]["data"]["objet"] == "école"
    v1_utf8 = await api.post("/api/modif-document.php", data={"id_e": id_e, "id_d": id_d, "objet": "école"})
    assert v1_utf8.json()["content"]["data"]["objet"] == "Ã©cole"  # V1 always decodes ISO-8859-1


async def test_v1_errors_answer_200_and_scalars_are_strings(api: httpx.AsyncClient) -> None:
    id_e = await id_e_of(api)
    created = await api.get(f"http://test//api/create-document.php&id_e={id_e}&type=actes-generique")
    assert created.status_code == 200
    id_d = created.json()["id_d"]
    refused = await api.get(f"/api/action.php?id_e={id_e}&id_d={id_d}&action=send-tdt")
    assert refused.status_code == 200 and refused.json()["status"] == "error"
    assert refused.json()["error-message"].startswith("L'action « send-tdt »  n'est pas permise : ")
    assert (await api.get(f"/api/action.php?id_e={id_e}&id_d={id_d}&action=supression")).json() == {
        "result": "1", "message": "Le document «  » a été supprimé"}
    entites = (await api.get("/api/list-entite.php")).json()
    assert entites[0]["id_e"] == str(id_e) and entites[0]["is_active"] == "1"
    missing = await api.get(f"/api/detail-document.php?id_e={id_e}&id_d=nope")
    assert missing.status_code == 404  # only generic (400) errors are turned into 200


async def test_action_refusal_and_foreign_document_use_pastell_strings(api: httpx.AsyncClient, keys) -> None:  # type: ignore[no-untyped-def]
    id_e = await id_e_of(api)
    id_d = (await api.post(f"/api/v2/entite/{id_e}/document?type=actes-generique")).json()["id_d"]
    refused = await api.post(f"/api/v2/entite/{id_e}/document/{id_d}/action/send-tdt")
    assert refused.status_code == 400
    assert refused.json()["error-message"].startswith("L'action « send-tdt »  n'est pas permise : ")
    other = await api.get(f"/api/v2/entite/{id_e + 1}/document/{id_d}")
    assert other.status_code == 403  # an entité outside the key's scope
    async with httpx.AsyncClient(transport=api._transport, base_url="http://test",
                                 headers=basic(keys["admin"])) as admin:
        moved = await admin.get(f"/api/v2/entite/{id_e + 1}/document/{id_d}")
    assert moved.status_code == 404
    assert moved.json()["error-message"] == f"Le document {id_d} n'appartient pas à l'entité {id_e + 1}"


async def test_idempotency_key_returns_the_same_id_d(api: httpx.AsyncClient, store) -> None:  # type: ignore[no-untyped-def]
    id_e = await id_e_of(api)
    url = f"/api/v2/entite/{id_e}/document?type=actes-generique"
    first = await api.post(url, headers={"Idempotency-Key": "webdelib-42"})
    again = await api.post(url, headers={"Idempotency-Key": "webdelib-42"})
    other = await api.post(url, headers={"Idempotency-Key": "webdelib-43"})
    assert first.json()["id_d"] == again.json()["id_d"] != other.json()["id_d"]
    async with store.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(PastellDocument))).scalar_one() == 2


async def test_bearer_and_basic_logins_and_failed_logins_rate_limited(api: httpx.AsyncClient, keys) -> None:  # type: ignore[no-untyped-def]
    assert (await api.get("/api/v2/entite", headers={"Authorization": f"Bearer {keys['a']}"})).status_code == 200
    wrong_login = await api.get("/api/v2/entite", headers=basic(keys["a"], login="someone"))
    assert wrong_login.status_code == 401 and wrong_login.headers["www-authenticate"].startswith("Basic")
    for _ in range(9):
        assert (await api.get("/api/v2/entite", headers=basic("dmb_wrong"))).status_code == 401
    limited = await api.get("/api/v2/entite", headers=basic("dmb_wrong"))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert (await api.get("/api/v2/entite")).status_code == 429  # even a good key, from that address


async def test_starting_action_deposits_under_the_id_d_or_keeps_the_draft(api: httpx.AsyncClient, store) -> None:  # type: ignore[no-untyped-def]
    id_e = await id_e_of(api)
    bad = await new_acte(api, id_e, classification="99.9")
    refused = await api.post(f"/api/v2/entite/{id_e}/document/{bad}/action/send-tdt")
    assert refused.status_code == 400 and "classification" in refused.json()["error-message"]
    assert (await api.patch(f"/api/v2/entite/{id_e}/document/{bad}", data={"classification": "2.1"})).status_code == 200
    assert (await api.post(f"/api/v2/entite/{id_e}/document/{bad}/action/send-tdt")).status_code == 201
    async with store.sessions() as session:
        doc = await session.get(Document, bad)
        assert doc is not None and doc.flow == "actes" and doc.meta["classification"] == "2.1"
        assert (await session.execute(select(func.count()).select_from(Document))).scalar_one() == 1
    detail = (await api.get(f"/api/v2/entite/{id_e}/document/{bad}")).json()
    assert detail["last_action"]["action"] == "send-tdt" and detail["action_possible"] == []
    again = await api.post(f"/api/v2/entite/{id_e}/document/{bad}/action/send-tdt")
    assert again.status_code == 400  # never transmitted twice
    locked = await api.patch(f"/api/v2/entite/{id_e}/document/{bad}", data={"objet": "autre"})
    assert locked.status_code == 400


async def test_lists_several_details_and_counts(api: httpx.AsyncClient) -> None:
    id_e = await id_e_of(api)
    sent = await new_acte(api, id_e)
    await api.post(f"/api/v2/entite/{id_e}/document/{sent}/action/send-tdt")
    draft = (await api.post(f"/api/v2/entite/{id_e}/document?type=actes-generique")).json()["id_d"]
    several = (await api.get(f"/api/v2/entite/{id_e}/document?id_d[]={sent}&id_d[]={draft}")).json()
    assert set(several) == {sent, draft}
    rows = (await api.get(f"/api/v2/Entite/{id_e}/document?type=actes-generique&lastetat=send-tdt")).json()
    assert [r["id_d"] for r in rows] == [sent]
    assert rows[0]["last_action_display"] == "send-tdt" and rows[0]["siren"] == SIREN_A
    pleiade = (await api.get(f"/api/v2/Document?id_e={id_e}&limit=1&type=actes-generique")).json()
    assert len(pleiade) == 1 and pleiade[0]["last_action_display"] in {"send-tdt", "creation"}
    indexed = (await api.get(f"/api/v2/entite/{id_e}/document?numero_de_lacte=ARR_2026")).json()
    assert [r["id_d"] for r in indexed] == [sent]
    count = (await api.get(f"/api/v2/document/count?id_e={id_e}")).json()
    assert count[str(id_e)]["flux"]["actes-generique"] == {"send-tdt": 1, "creation": 1}
    assert count[str(id_e)]["info"]["is_active"] == "1"


async def test_verif_asks_the_worker_to_poll_now(api: httpx.AsyncClient, store) -> None:  # type: ignore[no-untyped-def]
    id_e = await id_e_of(api)
    id_d = await new_acte(api, id_e)
    await api.post(f"/api/v2/entite/{id_e}/document/{id_d}/action/send-tdt")
    refused = await api.post(f"/api/v2/entite/{id_e}/document/{id_d}/action/verif-tdt")
    assert refused.status_code == 400  # not submitted yet: nothing to ask
    async with store.transaction() as session:
        doc = await session.get(Document, id_d)
        doc.state, doc.stage = "transmitted", "tdt"
        session.add(Effect(document_id=id_d, stage="tdt", generation=1, reference=f"ref-{id_d}",
                           status="submitted", remote_id="42", next_at=utcnow()))
    assert (await api.get(f"/api/v2/entite/{id_e}/document/{id_d}")).json()["action_possible"] == ["verif-tdt"]
    verif = await api.post(f"/api/v2/entite/{id_e}/document/{id_d}/action/verif-tdt")
    assert verif.status_code == 201 and verif.json()["result"] is True
    async with store.sessions() as session:
        events = [row.payload for row in (await session.execute(
            select(OutboxEvent).where(OutboxEvent.topic == EVENTS))).scalars()]
    assert {"type": "poll", "document_id": id_d} in [{k: e[k] for k in ("type", "document_id")} for e in events]
    detail = (await api.get(f"/api/v2/entite/{id_e}/document/{id_d}")).json()
    assert detail["data"]["tedetis_transaction_id"] == "42"


async def test_flux_catalogue_and_external_data(api: httpx.AsyncClient) -> None:
    id_e = await id_e_of(api)
    flux = (await api.get("/api/v2/Flux")).json()
    assert {"actes-generique", "actes-automatique", "helios-generique", "helios-automatique", "ls-document-pdf",
            "document-a-signer", "pdf-generique"} <= set(flux)
    schema = (await api.get("/api/v2/flux/actes-generique")).json()
    assert schema["numero_de_lacte"]["requis"] is True and schema["arrete"]["type"] == "file"
    id_d = (await api.post(f"/api/v2/entite/{id_e}/document?type=actes-generique")).json()["id_d"]
    classification = (await api.get(f"/api/v2/entite/{id_e}/document/{id_d}/externalData/classification")).json()
    assert any(code.startswith("2.1 ") for code in classification)
    chosen = await api.patch(f"/api/v2/entite/{id_e}/document/{id_d}/externalData/classification",
                             data={"classification": "2.1"})
    assert chosen.json()["result"] == "ok" and chosen.json()["data"]["classification"] == "2.1"
    json.dumps(classification)


async def test_other_collectivite_key_sees_nothing(api: httpx.AsyncClient, keys) -> None:  # type: ignore[no-untyped-def]
    id_e = await id_e_of(api)
    id_d = (await api.post(f"/api/v2/entite/{id_e}/document?type=actes-generique")).json()["id_d"]
    foreign = await api.get(f"/api/v2/entite/{id_e}/document/{id_d}", headers=basic(keys["b"]))
    assert foreign.status_code == 403
    entites = (await api.get("/api/v2/entite", headers=basic(keys["b"]))).json()
    assert [e["siren"] for e in entites] == [SIREN_B]


async def test_delete_a_file_slot_and_oversized_files(api: httpx.AsyncClient, settings) -> None:  # type: ignore[no-untyped-def]
    id_e = await id_e_of(api)
    id_d = (await api.post(f"/api/v2/entite/{id_e}/document?type=ls-document-pdf")).json()["id_d"]
    base = f"/api/v2/entite/{id_e}/document/{id_d}/file/annexe"
    for n, name in enumerate(("a.pdf", "b.pdf")):
        await api.post(f"{base}/{n}", files={"file_content": (name, PDF)})
    deleted = await api.delete(f"{base}/0")
    assert deleted.status_code == 200 and deleted.json()["content"]["data"]["annexe"] == ["b.pdf"]
    assert (await api.delete(f"{base}/5")).status_code == 404
    api._transport.app.state.pastell.documents.max_bytes = 1000  # rather than uploading 600 MB
    too_big = await api.post(f"{base}/1", files={"file_content": ("big.pdf", PDF + b"%" * 1000)})
    assert too_big.status_code == 413 and "taille maximale" in too_big.json()["error-message"]


async def test_file_names_are_kept_and_served_safely(api: httpx.AsyncClient) -> None:
    id_e = await id_e_of(api)
    id_d = (await api.post(f"/api/v2/entite/{id_e}/document?type=ls-document-pdf")).json()["id_d"]
    name = 'Délibération n°1 – œuvre "finale".pdf'
    sent = await api.post(f"/api/v2/entite/{id_e}/document/{id_d}/file/document",
                          files={"file_name": (None, name.encode()), "file_content": ("x.pdf", PDF)})
    assert sent.json()["content"]["data"]["document"] == ["Délibération n°1 – œuvre _finale_.pdf"]
    got = await api.get(f"/api/v2/entite/{id_e}/document/{id_d}/file/document")
    assert got.status_code == 200 and got.content == PDF
    assert "filename*=UTF-8''D%C3%A9lib%C3%A9ration" in got.headers["content-disposition"]
