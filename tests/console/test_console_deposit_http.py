"""The deposit forms over plain HTTP: who gets them, what they show, that a deposit goes through
`bus.deposits` with the API's refusals (each next to its field, the values and files kept) and its
idempotency, and that a document page refreshes itself until its flow says it is done."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from bus.collectivites import add_collectivite, simulator_connectors
from bus.store import journal
from bus.store.apikeys import create_key
from bus.store.models import Document, File
from connectors.signature.pdf import make_pdf
from tests.conftest import SAMPLES, SIREN_A, SIREN_B
from tests.console.console_testlib import FormPage, Seeded, login, submit

SIREN_C = "491011698"  # a collectivité with an i-Parapheur (signature connector)
PDF = make_pdf("Délibération", ["Le conseil municipal décide…"])
ANNEXE = make_pdf("Annexe", ["Plan"])
GOOD = {"nature": "1", "numero_interne": "DELIB_2026_042", "date_decision": "2026-01-12",
        "objet": "Tarifs de la cantine", "classification": "1.1"}
FILES = [("document", ("deliberation.pdf", PDF, "application/pdf")),
         ("annexes", ("annexe-plan.pdf", ANNEXE, "application/pdf"))]


@pytest.fixture
async def key_c(store, keys) -> str:  # type: ignore[no-untyped-def]
    async with store.transaction() as session:
        await add_collectivite(session, siren=SIREN_C, name="CC i-Parapheur", departement="034", arrondissement="3",
                               nature_code="44", connectors=simulator_connectors(SIREN_C, "iparapheur"))
        return await create_key(session, [SIREN_C], ["depositor"], name="Secrétariat C")


@pytest.fixture
async def depositor(client: httpx.AsyncClient, seeded: Seeded) -> httpx.AsyncClient:
    resp = await login(client, seeded.keys["depositor_a"])
    assert resp.status_code == 303 and resp.headers["location"] == "/console/deposer"
    return client


async def documents(store, **where: str) -> list[Document]:  # type: ignore[no-untyped-def]
    async with store.sessions() as session:
        query = select(Document).where(*(getattr(Document, k) == v for k, v in where.items()))
        return list((await session.execute(query)).scalars())


async def deposited(resp: httpx.Response) -> str:
    assert resp.status_code == 303, (resp.status_code, resp.headers.get("x-error-code"), resp.text[-2000:])
    found = re.fullmatch(r"/console/documents/([0-9a-f-]{36})\?depot=(1|deja)", resp.headers["location"])
    assert found, resp.headers["location"]
    return found.group(1)


async def test_a_depositor_lands_on_its_deposit_forms_and_sees_no_operator_page(
        depositor: httpx.AsyncClient, seeded: Seeded) -> None:
    choose = await depositor.get("/console/deposer")
    assert choose.status_code == 200
    links = set(re.findall(r'href="(/console/deposer/[^"]+)"', choose.text))
    assert links == {f"/console/deposer/{SIREN_A}/{flow}" for flow in ("actes", "helios", "pdf-signature")}
    nav = re.search(r"<nav.*?</nav>", choose.text, re.S).group(0)  # type: ignore[union-attr]
    assert "Déposer" in nav and "Documents" in nav and "Erreurs" not in nav and "Tableau de bord" not in nav

    mine = seeded.ids["voirie"]
    for method, path in [("GET", "/console/erreurs"), ("GET", "/console/erreurs/rejouer"),
                         ("POST", "/console/erreurs/rejouer"), ("POST", f"/console/documents/{mine}/rejouer"),
                         ("POST", f"/console/documents/{mine}/annuler"), ("GET", "/console/tableau-de-bord"),
                         ("GET", "/console/rapport")]:
        refused = await depositor.request(method, path)
        assert refused.status_code == 403 and refused.headers["x-error-code"] == "forbidden_role", path

    listing = await depositor.get("/console/documents")
    assert set(re.findall(r'href="/console/documents/([0-9a-f-]{36})"', listing.text)) == {
        seeded.ids[k] for k in ("budget", "voirie", "cantine", "pes")}
    page = await depositor.get(f"/console/documents/{mine}")
    assert page.status_code == 200 and "S2low HTTP 500" in page.text and 'id="replay"' not in page.text
    assert (await depositor.get(f"/console/documents/{seeded.ids['other']}")).status_code == 404
    other = await depositor.get(f"/console/deposer/{SIREN_B}/actes")
    assert other.status_code == 403 and other.headers["x-error-code"] == "siren_out_of_scope"
    posted = await depositor.post(f"/console/deposer/{SIREN_B}/actes", files={"nature": (None, b"1")})
    assert posted.status_code == 403 and await documents_count(depositor) == 5


async def documents_count(client: httpx.AsyncClient) -> int:
    store = client._transport.app.state.store  # type: ignore[attr-defined]
    async with store.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(Document))).scalar_one())


async def test_an_operator_without_the_depositor_role_gets_no_form(client: httpx.AsyncClient, seeded: Seeded) -> None:
    await login(client, seeded.keys["operator_a"])
    for path in ("/console/deposer", f"/console/deposer/{SIREN_A}/actes"):
        refused = await client.get(path)
        assert refused.status_code == 403 and refused.headers["x-error-code"] == "forbidden_role"


@pytest.mark.parametrize(("flow", "labels"), [
    ("actes", ["Nature", "Numéro interne", "Date de décision", "Objet", "Classification", "Document", "Annexes",
               "Signature"]),
    ("helios", ["Fichier PES", "Signature"]),
    ("pdf-signature", ["Libellé", "Document", "Type i-Parapheur (facultatif)", "Sous-type i-Parapheur (facultatif)"]),
])
async def test_every_field_has_its_label(client: httpx.AsyncClient, seeded: Seeded, key_c: str, flow: str,
                                         labels: list[str]) -> None:
    await login(client, key_c)
    page = FormPage((await client.get(f"/console/deposer/{SIREN_C}/{flow}")).text)
    for label in labels:
        assert label in page.labels, (label, sorted(page.labels))
        assert page.labels[label] in page.controls, label
    assert set(page.controls) <= set(page.labels.values())  # no control without its <label for>
    if flow == "actes":
        codes = {m for m in re.findall(r'<option value="([\d.]+)"', (await client.get(
            f"/console/deposer/{SIREN_C}/actes")).text)}
        assert {"1", "6", "1.1", "7.1"} <= codes  # the six natures and the préfecture's classification
    if flow == "pdf-signature":
        assert "Délibération" in (await client.get(f"/console/deposer/{SIREN_C}/{flow}")).text  # the sous-type


async def test_no_signature_box_without_a_signature_connector(depositor: httpx.AsyncClient) -> None:
    for flow in ("actes", "helios"):
        page = FormPage((await depositor.get(f"/console/deposer/{SIREN_A}/{flow}")).text)
        assert "signature" not in page.controls and "Signature" not in page.labels


async def test_an_acte_deposited_through_the_form_is_the_apis_deposit(depositor: httpx.AsyncClient, seeded: Seeded,
                                                                      store) -> None:  # type: ignore[no-untyped-def]
    form = await depositor.get(f"/console/deposer/{SIREN_A}/actes")
    doc_id = await deposited(await submit(depositor, form, GOOD, FILES))
    [doc] = await documents(store, id=doc_id)
    assert doc.state == "deposited" and doc.flow == "actes" and doc.siren == SIREN_A
    assert doc.meta == {"nature": 1, "numero_interne": "DELIB_2026_042", "date_decision": "2026-01-12",
                        "objet": "Tarifs de la cantine", "classification": "1.1", "typologie": ["99_DE", "99_DE"],
                        "signature": False, "publication": False}
    async with store.sessions() as session:
        files = {f.role: f for f in (await session.execute(select(File).where(File.document_id == doc_id))).scalars()}
    assert files["document"].sha256 == hashlib.sha256(PDF).hexdigest() and files["annexe"].name == "annexe-plan.pdf"

    api = httpx.AsyncClient(transport=depositor._transport, base_url="http://test")  # type: ignore[attr-defined]
    view = (await api.get(f"/api/v1/documents/{doc_id}", headers={"Authorization": f"Bearer {seeded.keys['depositor_a']}"})).json()
    assert view["timeline"][0]["event"] == "deposited" and view["timeline"][0]["detail"]["files"] == 2

    page = await depositor.get(f"/console/documents/{doc_id}?depot=1")
    assert page.status_code == 200 and 'id="deposited"' in page.text and "DELIB_2026_042" in page.text


async def test_a_double_click_deposits_once(depositor: httpx.AsyncClient, store) -> None:  # type: ignore[no-untyped-def]
    """A PDF to sign has no business key: only the form's token (the Idempotency-Key) stops a second document."""
    form = await depositor.get(f"/console/deposer/{SIREN_A}/pdf-signature")
    values = {"libelle": "Convention de partenariat"}
    files = [("document", ("convention.pdf", PDF, "application/pdf"))]
    first, second = await asyncio.gather(submit(depositor, form, values, files), submit(depositor, form, values, files))
    assert await deposited(first) == await deposited(second)
    assert {first.headers["location"][-4:], second.headers["location"][-4:]} == {"ot=1", "deja"}
    again = await submit(depositor, form, values, files)
    assert await deposited(again) == await deposited(first) and again.headers["location"].endswith("depot=deja")
    assert len(await documents(store, flow="pdf-signature")) == 1
    fresh = await depositor.get(f"/console/deposer/{SIREN_A}/pdf-signature")  # a new form is a new deposit
    assert await deposited(await submit(depositor, fresh, values, files)) != await deposited(first)


async def test_a_refusal_puts_each_error_next_to_its_field_and_keeps_values_and_files(
        depositor: httpx.AsyncClient, store) -> None:  # type: ignore[no-untyped-def]
    form = await depositor.get(f"/console/deposer/{SIREN_A}/actes")
    bad = {**GOOD, "numero_interne": "délib 42", "classification": "9.9"}
    refused = await submit(depositor, form, bad, FILES)
    assert refused.status_code == 422 and refused.headers["x-error-code"] == "invalid_numero_interne"
    page = FormPage(refused.text)
    assert page.errors == {"numero_interne-error": "invalid_numero_interne",
                           "classification-error": "unknown_classification"}
    for field in ("numero_interne", "classification"):
        assert f"{field}-error" in page.described_by(field)
        assert page.controls[field].get("aria-invalid") == "true"
    assert "objet-error" not in page.ids and page.controls["objet"]["value"] == "Tarifs de la cantine"
    assert page.controls["numero_interne"]["value"] == "délib 42" and page.controls["date_decision"]["value"] == "2026-01-12"
    assert page.selected == {"nature": "1", "classification": "9.9"}  # and the annexe's typologie: the default
    assert 'data-error-code="invalid_numero_interne"' in refused.text  # the summary carries the first code
    assert await documents(store, siren=SIREN_A, flow="actes", state="deposited") == []
    assert "deliberation.pdf" in refused.text and "annexe-plan.pdf" in refused.text  # files received, kept

    fixed = await submit(depositor, refused, {**GOOD, "numero_interne": "DELIB_2026_043"})  # no file chosen again
    [doc] = await documents(store, id=await deposited(fixed))
    async with store.sessions() as session:
        files = {f.role: f.sha256 for f in (await session.execute(select(File).where(File.document_id == doc.id))).scalars()}
    assert files == {"document": hashlib.sha256(PDF).hexdigest(), "annexe": hashlib.sha256(ANNEXE).hexdigest()}


async def _api_code(client: httpx.AsyncClient, key: str, meta: dict[str, object], files: list) -> tuple[int, str]:  # type: ignore[type-arg]
    resp = await client.post("/api/v1/documents", headers={"Authorization": f"Bearer {key}"},
                             data={"flow": "actes", "siren": SIREN_A, "metadata": json.dumps(meta)}, files=files)
    return resp.status_code, resp.json()["error"]["code"]


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.mark.parametrize(("change", "files", "field"), [
    ({"numero_interne": "DELIB_"}, FILES, "numero_interne"),
    ({"date_decision": (date.today() + timedelta(days=30)).isoformat()}, FILES, "date_decision"),
    ({"objet": "x" * 501}, FILES, "objet"),
    ({"classification": "1"}, FILES, "classification"),
    ({}, [("document", ("deliberation.png", PNG, "image/png"))], "document"),
    ({}, [FILES[0], ("annexes", ("plan.exe", b"MZ\x90\0" * 10, "application/octet-stream"))], "annexes"),
    ({"numero_interne": "BUDGET_2026"}, FILES, "numero_interne"),  # deposited once already: duplicate
])
async def test_the_form_refuses_what_the_api_refuses_with_the_same_code(
        depositor: httpx.AsyncClient, seeded: Seeded, change: dict[str, str], files: list, field: str) -> None:  # type: ignore[type-arg]
    key = seeded.keys["depositor_a"]
    first = {**GOOD, "numero_interne": "BUDGET_2026"}
    form = await depositor.get(f"/console/deposer/{SIREN_A}/actes")
    await deposited(await submit(depositor, form, first, FILES[:1]))

    meta = {**GOOD, "nature": 1, **change}
    api_status, api_code = await _api_code(depositor, key, meta, files)
    form = await depositor.get(f"/console/deposer/{SIREN_A}/actes")
    refused = await submit(depositor, form, {**GOOD, **change}, files)
    assert refused.status_code == api_status and refused.headers["x-error-code"] == api_code
    assert FormPage(refused.text).errors == {f"{field}-error": api_code}


async def test_annexes_are_typed_once_received(depositor: httpx.AsyncClient, store) -> None:  # type: ignore[no-untyped-def]
    form = await depositor.get(f"/console/deposer/{SIREN_A}/actes")
    received = await submit(depositor, form, {**GOOD, "action": "typologies"}, FILES)
    assert received.status_code == 200 and "x-error-code" not in received.headers
    page = FormPage(received.text)
    assert page.labels["Typologie de l'annexe 1 (annexe-plan.pdf)"] == "annexes-0-typologie"
    offered = set(re.findall(r'<option value="(\d\d_[A-Z]{2})"', received.text))
    assert "21_EP" in offered and "99_AI" not in offered  # only the délibérations' typologies
    refused = await submit(depositor, received, {**GOOD, "annexes-0-typologie": "99_AI"})
    assert FormPage(refused.text).errors == {"annexes-error": "unknown_typologie"}
    doc_id = await deposited(await submit(depositor, refused, {**GOOD, "annexes-0-typologie": "21_EP"}))
    [doc] = await documents(store, id=doc_id)
    assert doc.meta["typologie"] == ["99_DE", "21_EP"]


async def test_a_removed_annexe_is_not_deposited(depositor: httpx.AsyncClient, store) -> None:  # type: ignore[no-untyped-def]
    form = await depositor.get(f"/console/deposer/{SIREN_A}/actes")
    received = await submit(depositor, form, {**GOOD, "action": "typologies"}, FILES)
    doc_id = await deposited(await submit(depositor, received, {**GOOD, "annexes-0-retirer": "on"}))
    async with store.sessions() as session:
        roles = [f.role for f in (await session.execute(select(File).where(File.document_id == doc_id))).scalars()]
    assert roles == ["document"]


async def test_kept_files_serve_only_the_key_that_sent_them(client: httpx.AsyncClient, seeded: Seeded, key_c: str) -> None:
    await login(client, seeded.keys["depositor_a"])
    refused = await submit(client, await client.get(f"/console/deposer/{SIREN_A}/pdf-signature"), {"libelle": ""},
                           [("document", ("convention.pdf", PDF, "application/pdf"))])
    kept = dict(FormPage(refused.text).hidden)["document-garde"]
    await login(client, key_c)
    form = await client.get(f"/console/deposer/{SIREN_C}/pdf-signature")
    for token in (kept, kept[:-4] + "AAAA"):
        other = await submit(client, form, {"libelle": "Convention", "document-garde": token})
        assert FormPage(other.text).errors == {"document-error": "missing_file"}


async def test_a_pes_refusal_goes_next_to_the_pes_file(depositor: httpx.AsyncClient) -> None:
    form = await depositor.get(f"/console/deposer/{SIREN_A}/helios")
    pes = (SAMPLES / "pes_aller__PESALR2_25060187900027_190328_001__stela.xml").read_bytes()  # another IdColl
    refused = await submit(depositor, form, {}, [("document", ("PES.xml", pes, "application/xml"))])
    code = refused.headers["x-error-code"]
    assert refused.status_code == 422 and code.startswith("pes_")
    assert FormPage(refused.text).errors == {"document-error": code}


async def test_the_form_needs_its_csrf_and_its_token(depositor: httpx.AsyncClient, store) -> None:  # type: ignore[no-untyped-def]
    form = await depositor.get(f"/console/deposer/{SIREN_A}/actes")
    forged = await submit(depositor, form, GOOD, FILES, drop=("csrf",))
    assert forged.status_code == 403 and forged.headers["x-error-code"] == "invalid_csrf_token"
    tokenless = await submit(depositor, form, GOOD, FILES, drop=("jeton",))
    assert tokenless.status_code == 422 and tokenless.headers["x-error-code"] == "invalid_form_token"
    assert await documents(store, flow="actes", state="deposited") == []


async def test_a_document_page_refreshes_until_its_flow_says_it_is_done(depositor: httpx.AsyncClient, seeded: Seeded,
                                                                         store) -> None:  # type: ignore[no-untyped-def]
    """`signed` ends a PDF signature but not an acte: the terminal states are the flow's."""
    ids = {}
    async with store.transaction() as session:
        for flow in ("actes", "pdf-signature"):
            doc = Document(id=str(uuid.uuid4()), flow=flow, siren=SIREN_A, state="signed", meta={"libelle": "x"})
            session.add(doc)
            await session.flush()
            await journal.append(session, doc.id, "deposited", "deposited", {})
            ids[flow] = doc.id
    refresh = re.compile(r'<meta http-equiv="refresh" content="5; url=/console/documents/([0-9a-f-]{36})">')
    acte = await depositor.get(f"/console/documents/{ids['actes']}")
    assert refresh.search(acte.text).group(1) == ids["actes"]  # type: ignore[union-attr]
    assert not refresh.search((await depositor.get(f"/console/documents/{ids['pdf-signature']}")).text)
    assert not refresh.search((await depositor.get(f"/console/documents/{seeded.ids['budget']}")).text)  # archived
    stopped = await depositor.get(f"/console/documents/{ids['actes']}?suivi=0")
    assert not refresh.search(stopped.text) and "Mise à jour automatique arrêtée" in stopped.text


async def test_the_publication_fields_ask_for_the_author_and_refuse_where_the_collectivite_does_not_publish(
        depositor: httpx.AsyncClient, store) -> None:  # type: ignore[no-untyped-def]
    form = await depositor.get(f"/console/deposer/{SIREN_A}/actes")
    page = FormPage(form.text)
    for label in ("Publication (facultatif)", "Prénom de l'auteur (facultatif)", "Nom de l'auteur (facultatif)",
                  "Qualité de l'auteur (facultatif)", "Membres en exercice (facultatif)", "Voix pour (facultatif)"):
        assert label in page.labels, (label, sorted(page.labels))
    wanted = {**GOOD, "numero_interne": "DELIB_PUB_1", "publication": "true"}
    no_author = await submit(depositor, form, {**wanted, "vote_effectif": "29"}, FILES)
    assert no_author.status_code == 422 and no_author.headers["x-error-code"] == "publication_auteur_required"
    refused = FormPage(no_author.text)
    assert refused.errors == {"auteur_nom-error": "publication_auteur_required"}
    assert refused.selected["publication"] == "true" and refused.controls["vote_effectif"]["value"] == "29"
    author = {"auteur_prenom": "Anne", "auteur_nom": "Martin", "auteur_qualite": "Maire"}
    not_enabled = await submit(depositor, no_author, {**wanted, **author})
    assert not_enabled.status_code == 422 and FormPage(not_enabled.text).errors == {
        "publication-error": "publication_not_enabled"}  # commune A has not turned publication on
    assert not [d for d in await documents(store, siren=SIREN_A, flow="actes") if d.business_key == "DELIB_PUB_1"]
