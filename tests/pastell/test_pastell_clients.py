"""Real Pastell clients replayed request by request (docs/pastell-clients.md §1) against the real
pipeline: Tansu broker, simulators (S²low, i-Parapheur, As@lae), API and worker processes."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote_from_bytes

import httpx
import pytest
from lxml import etree

from connectors.signature.pdf import make_pdf
from schemas.xml import validate
from tests.integration.conftest import Bus, start_bus, until
from tests.pastell.smoke import NAMES, check, smoke_sequence

NO_SIGNATURE = "214400152"
IPARAPHEUR = "491011698"


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    bus = start_bus(tmp_path_factory.mktemp("pastell"))
    try:
        yield bus
    finally:
        bus.close()
        bus.stack.stop()


class Connector:
    """What a business connector is configured with: a URL, a login and a password (the key).
    Paths are appended to the URL as the client does, double slashes included."""

    def __init__(self, bus: Bus, siren: str, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=bus.stack.api_url, auth=("apikey", bus.keys[siren]), timeout=30)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def __getattr__(self, method: str) -> Callable[..., httpx.Response]:
        return lambda path, **kw: self.http.request(method.upper(), self.url + path, **kw)


def client(bus: Bus, siren: str, url: str) -> Connector:
    return Connector(bus, siren, url)


def numero() -> str:
    return f"TEST_{secrets.token_hex(3).upper()}"


def test_libriciel_example_sends_an_acte_and_gets_the_aractes(bus: Bus) -> None:
    """`send-actes-generique.php` then `retrieve-actes_generique.php` (§1.2): URLs built as
    `{PASTELL_URL}/api/v2/` + `/Entite/…`, i.e. a double slash and a capital E."""
    with client(bus, NO_SIGNATURE, "/api/v2/") as api:
        id_e = api.get("entite").json()[-1]["id_e"]
        created = api.post(f"/Entite/{id_e}/document?type=actes-generique", files={})
        assert created.status_code == 201, created.text
        id_d = created.json()["id_d"]
        assert created.json()["data"] is None
        patched = api.patch(f"/Entite/{id_e}/document/{id_d}", content=(
            f"acte_nature=3&objet=Arr%C3%AAt%C3%A9+de+test&numero_de_lacte={numero()}"
            f"&date_de_lacte={date.today().isoformat()}&envoi_tdt=On&classification=2.1").encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert patched.status_code == 200 and patched.json()["formulaire_ok"] == 0
        acte = make_pdf("Arrêté de test", ["Le maire arrête."])
        for path, name in (("arrete/0", "vide.pdf"), ("autre_document_attache/0", "annexe1.pdf"),
                           ("autre_document_attache/1", "annexe2.pdf")):
            body = acte if path.startswith("arrete") else make_pdf(name)
            sent = api.post(f"/Entite/{id_e}/document/{id_d}/file/{path}", data={"file_name": name},
                            files={"file_content": (name, body, "application/pdf")})
            assert sent.status_code == 201, sent.text
        assert sent.json()["formulaire_ok"] == 1 and "send-tdt" in sent.json()["content"]["action_possible"]
        typology = api.get(f"/Entite/{id_e}/document/{id_d}/externalData/type_piece").json()
        assert typology["pieces"] == ["vide.pdf", "annexe1.pdf", "annexe2.pdf"]
        assert "99_AI" in typology["actes_type_pj_list"]
        typed = api.patch(f"/Entite/{id_e}/document/{id_d}/externalData/type_piece",
                          content=b"type_pj%5B0%5D=99_AI&type_pj%5B1%5D=99_AI&type_pj%5B2%5D=99_AI")
        assert typed.status_code == 200 and typed.json()["result"] == "ok"
        sent = api.post(f"/Entite/{id_e}/document/{id_d}/action/send-tdt")
        assert sent.status_code == 201 and sent.json() == {
            "result": True, "message": "Le document a été envoyé au contrôle de légalité"}

        detail = until(lambda: (d := api.get(f"/Entite/{id_e}/document/{id_d}").json())["data"].get("aractes") and d,
                       "the ARActe")
        assert detail["data"]["tedetis_transaction_id"]
        aractes = api.get(f"/Entite/{id_e}/document/{id_d}/file/aractes/0")
        assert aractes.status_code == 200
        root = etree.fromstring(aractes.content)
        assert etree.QName(root).localname == "ARActe"
        validate("actes", root)
        stamped = api.get(f"/Entite/{id_e}/document/{id_d}/file/acte_tamponne")
        assert stamped.status_code == 200 and stamped.content.startswith(b"%PDF")
        assert api.get(f"/Entite/{id_e}/document/{id_d}/file/reply_sae").status_code in (200, 404)

    # The same document, once, in the native API and in the volume report.
    native = bus.wait(NO_SIGNATURE, id_d, {"acknowledged", "archiving", "archived"})
    assert native["flow"] == "actes" and native["metadata"]["objet"] == "Arrêté de test"
    assert native["metadata"]["typologie"] == ["99_AI", "99_AI", "99_AI"]
    report = bus.api.get("/api/v1/reports/volumes", params={"siren": NO_SIGNATURE, "flow": "actes"},
                         headers={"Authorization": f"Bearer {bus.keys['operator']}"}).json()
    assert report["totals"]["collectivites"][0]["deposited"] == 1
    assert report["totals"]["collectivites"][0]["acknowledged"] == 1


def test_maarch_courrier_signs_a_pdf_through_the_parapheur(bus: Bus) -> None:
    """Maarch Courrier 2301 (§1.3): configuration check, JSON `[]` create, url-encoded raw PDF,
    orientation, then `verif-iparapheur` and the i-Parapheur history until `Signe`."""
    with client(bus, IPARAPHEUR, "/api/v2") as api:
        assert api.get("/version").json()["version"]
        id_e = api.get("/entite").json()[-1]["id_e"]
        connectors = api.get(f"/entite/{id_e}/connecteur").json()
        id_ce = next(c["id_ce"] for c in connectors if c["type"] == "signature")
        assert "ls-document-pdf" in api.get("/flux").json()
        assert "ACTES" in api.get(f"/entite/{id_e}/connecteur/{id_ce}/externalData/iparapheur_type").json()

        created = api.post(f"/entite/{id_e}/document?type=ls-document-pdf", content=b"[]",
                           headers={"content-type": "application/json"})
        assert created.status_code == 201, created.text
        id_d = created.json()["info"]["id_d"]
        subtypes = api.get(f"/entite/{id_e}/document/{id_d}/externalData/iparapheur_sous_type").json()
        assert "Arrêté" in subtypes or "Délibération" in subtypes
        patched = api.patch(f"/entite/{id_e}/document/{id_d}", data={
            "libelle": "Courrier au préfet", "iparapheur_sous_type": "Arrêté", "iparapheur_type": "ACTES",
            "envoi_signature": "1"})
        assert patched.status_code == 200
        original = make_pdf("Courrier au préfet", ["Monsieur le préfet,"])
        body = b"file_name=Document+principal.pdf&file_content=" + quote_from_bytes(original).encode()
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert api.post(f"/entite/{id_e}/document/{id_d}/file/document", content=body, headers=form).status_code == 201
        annex = b"file_name=PJ1.pdf&file_content=" + quote_from_bytes(make_pdf("PJ 1")).encode()
        assert api.post(f"/entite/{id_e}/document/{id_d}/file/annexe/0", content=annex, headers=form).status_code == 201
        assert api.get(f"/entite/{id_e}/document/{id_d}/file/document").content == original
        assert api.post(f"/entite/{id_e}/document/{id_d}/action/orientation").status_code == 201
        after = api.get(f"/entite/{id_e}/document/{id_d}").json()
        assert "send-iparapheur" not in after["action_possible"]  # Maarch would call it on a broken URL
        refused = api.post(f"/api/v2/entite/{id_e}/document/{id_d}/action/send-iparapheur")
        assert refused.status_code == 400 and "n'est pas permise" in refused.json()["error-message"]

        def signed() -> bool:
            detail = api.get(f"/entite/{id_e}/document/{id_d}").json()
            if "verif-iparapheur" in detail["action_possible"]:
                verif = api.post(f"/entite/{id_e}/document/{id_d}/action/verif-iparapheur", data={})
                assert verif.status_code in (201, 400), verif.text
            history = api.get(f"/entite/{id_e}/document/{id_d}/file/iparapheur_historique")
            if history.status_code == 404:
                return False
            root = etree.fromstring(history.content)
            assert root.findtext("MessageRetour/codeRetour") == "OK"
            return any(log.findtext("status") == "Signe" for log in root.findall("LogDossier/LogDossier"))

        until(signed, "the signature in iparapheur_historique")
        folders = bus.sims.get("/iparapheur/_admin/folders").json()["folders"]
        folder = next(f for f in folders if f["name"].startswith(f"dmb-{id_d}-"))
        assert (folder["type"]["name"], folder["subtype"]["name"]) == ("ACTES", "Arrêté")  # the document's circuit
        signed_pdf = api.get(f"/entite/{id_e}/document/{id_d}/file/document")
        assert signed_pdf.status_code == 200 and signed_pdf.content.startswith(b"%PDF")
        assert signed_pdf.content != original and b"/ByteRange" in signed_pdf.content
        final = api.get(f"/entite/{id_e}/document/{id_d}").json()
        assert final["last_action"]["action"] == "termine"
        assert api.post(f"/entite/{id_e}/document/{id_d}/action/supression").status_code == 201
        gone = api.get(f"/entite/{id_e}/document/{id_d}")
        assert gone.status_code == 404
        assert gone.json()["error-message"] == f"Le document {id_d} n'appartient pas à l'entité {id_e}"
    assert bus.get(IPARAPHEUR, id_d)["state"] == "signed"  # deleted from the Pastell view, never lost


def test_webdelib_v1_scripts_sign_then_transmit_a_deliberation(bus: Bus, tmp_path: Path) -> None:
    """Webdelib 4.x (§1.5): V1 scripts, GET when no data and multipart POST otherwise, ISO-8859-1
    text, files as multipart parts named after the field, `.php` answers checked on keys only."""
    with client(bus, IPARAPHEUR, "/api") as api:
        assert api.get("/version.php").json()["version"]
        id_e = str(api.get("/list-entite.php").json()[0]["id_e"])
        throwaway = api.get(f"/create-document.php?id_e={id_e}&type=actes-generique").json()["id_d"]
        circuits = api.get(f"/external-data.php?id_e={id_e}&id_d={throwaway}&field=iparapheur_sous_type").json()
        assert "Délibération" in circuits
        assert api.post("/action.php", files={"id_e": (None, id_e), "id_d": (None, throwaway),
                                              "action": (None, "supression")}).json()["result"] == "1"

        id_d = api.get(f"/create-document.php?id_e={id_e}&type=actes-generique").json()["id_d"]
        delib = make_pdf("Délibération", ["Le conseil délibère."])
        latin1 = "Délibération budget école".encode("latin-1")
        answer = api.post("/modif-document.php", files={
            "id_e": (None, id_e), "id_d": (None, id_d), "classification": (None, "1.1"),
            "objet": (None, latin1), "arrete": ("delib.pdf", delib, "application/pdf"),
            "acte_nature": (None, "1"), "numero_de_lacte": (None, numero()),
            "date_de_lacte": (None, f"{date.today().isoformat()} 18:30:00")}).json()
        assert answer["content"]["data"]["objet"] == "Délibération budget école"
        for i in range(2):
            api.post("/modif-document.php", files={"id_e": (None, id_e), "id_d": (None, id_d),
                                                   "autre_document_attache": (f"annexe{i}.pdf", make_pdf(f"A{i}"))})
        answer = api.post("/modif-document.php", files={
            "id_e": (None, id_e), "id_d": (None, id_d), "iparapheur_type": (None, "ACTES"),
            "iparapheur_sous_type": (None, "Délibération".encode("latin-1")), "envoi_signature": (None, "1")}).json()
        assert answer["formulaire_ok"] == "1"  # V1: every scalar is a string
        assert answer["content"]["data"]["autre_document_attache"] == ["annexe0.pdf", "annexe1.pdf"]
        sent = api.get(f"/action.php?id_e={id_e}&id_d={id_d}&action=send-iparapheur")  # V1 ignores the verb
        assert sent.status_code == 200 and sent.json()["result"] == "1", sent.text

        def has_signature() -> dict[str, Any] | None:
            detail = api.post("/detail-document.php", files={"id_e": (None, id_e), "id_d": (None, id_d)}).json()
            if detail["last_action"]["action"] == "recu-iparapheur" or detail["data"].get("has_signature"):
                return detail
            api.post("/action.php", files={"id_e": (None, id_e), "id_d": (None, id_d),
                                           "action": (None, "verif-iparapheur")})
            return None

        until(has_signature, "the signature")
        for field in ("signature", "document_signe"):
            got = api.post("/recuperation-fichier.php", files={"id_e": (None, id_e), "id_d": (None, id_d),
                                                               "field": (None, field)})
            assert got.status_code == 200 and got.content.startswith(b"%PDF"), field

        def acknowledged() -> dict[str, Any] | None:
            api.post("/action.php", files={"id_e": (None, id_e), "id_d": (None, id_d), "action": (None, "verif-tdt")})
            detail = api.post("/detail-document.php", files={"id_e": (None, id_e), "id_d": (None, id_d)}).json()
            return detail if detail["data"].get("date_ar") else None

        detail = until(acknowledged, "the préfecture's AR")
        assert detail["data"]["tedetis_transaction_id"]
        aractes = api.get(f"/recuperation-fichier.php?id_e={id_e}&id_d={id_d}&field=aractes")
        validate("actes", etree.fromstring(aractes.content))
        journal = api.post("/journal.php", files={"id_e": (None, id_e), "id_d": (None, id_d)}).json()
        assert {"deposited", "stage.done"} <= {entry["action"] for entry in journal}
    native = bus.get(IPARAPHEUR, id_d)
    assert native["metadata"]["signature"] is True and native["metadata"]["objet"] == "Délibération budget école"


def test_helios_sender_gets_the_pes_acquit(bus: Bus) -> None:
    """The S²low-style HELIOS fields (`objet`, `fichier_pes`) through v2 and `send-tdt`: the
    collectivité's signature option signs the PES, Hélios's PES_ACQUIT comes back as `fichier_reponse`."""
    from tests.integration.test_helios_pipeline import unsigned_sample

    with client(bus, "755800646", "/api/v2/") as api:
        id_e = api.get("entite").json()[-1]["id_e"]
        id_d = api.post(f"/Entite/{id_e}/document", data={"type": "helios-generique"}).json()["id_d"]
        api.patch(f"/Entite/{id_e}/document/{id_d}", data={"objet": "PES_PASTELL_1", "envoi_tdt": "1"})
        pes = unsigned_sample("PES_PASTELL_1")
        sent = api.post(f"/Entite/{id_e}/document/{id_d}/file/fichier_pes",
                        files={"file_name": (None, "PES_PASTELL_1.xml"), "file_content": ("PES.xml", pes)})
        assert sent.json()["formulaire_ok"] == 1 and "send-tdt" in sent.json()["content"]["action_possible"]
        assert api.post(f"/Entite/{id_e}/document/{id_d}/action/send-tdt").status_code == 201
        detail = until(lambda: (d := api.get(f"/Entite/{id_e}/document/{id_d}").json())["data"].get("fichier_reponse")
                       and d, "the PES_ACQUIT")
        assert detail["data"]["etat_ack"] == "1"
        acquit = api.get(f"/Entite/{id_e}/document/{id_d}/file/fichier_reponse")
        validate("pes_acquit", etree.fromstring(acquit.content))
        signed = api.get(f"/Entite/{id_e}/document/{id_d}/file/fichier_pes_signe")
        assert b"Signature" in signed.content


def test_native_pdf_signature_flow_signs_and_archives(bus: Bus) -> None:
    """The generic PDF signature flow behind ls-document-pdf is a native dematbus flow too."""
    siren = "210600235"  # PAdES signature
    resp = bus.api.post("/api/v1/documents", headers={"Authorization": f"Bearer {bus.keys[siren]}"},
                        data={"flow": "pdf-signature", "siren": siren,
                              "metadata": '{"libelle": "Convention de partenariat", "archive": true}'},
                        files={"document": ("convention.pdf", make_pdf("Convention"), "application/pdf")})
    assert resp.status_code == 201, resp.text
    doc = bus.wait(siren, resp.json()["id"])
    assert doc["state"] == "archived", doc["timeline"]
    roles = {f["role"]: f["name"] for f in doc["files"]}
    assert {"signed_document", "seda_transfer", "seda_reply"} <= set(roles)
    assert b"/ByteRange" in bus.file(siren, doc["id"], roles["signed_document"])
    refused = bus.api.post("/api/v1/documents", headers={"Authorization": f"Bearer {bus.keys[siren]}"},
                           data={"flow": "pdf-signature", "siren": siren, "metadata": '{"libelle": "x"}'},
                           files={"document": ("x.pdf", b"not a pdf at all", "application/pdf")})
    assert refused.status_code == 415 and refused.json()["error"]["code"] == "document_not_pdf"


def test_edissyum_maarch_sees_a_parapheur_refusal(bus: Bus) -> None:
    """Maarch's Edissyum variant (§1.4) polls `last_action`: a refusal is `rejet-iparapheur` with
    Pastell's message (Webdelib shows it to users), and the history says `RejetSignataire`."""
    with client(bus, IPARAPHEUR, "/api/v2") as api:
        entite = next(e for e in api.get("/entite").json() if e["siren"] == IPARAPHEUR)
        id_e = entite["id_e"]
        created = api.post(f"/entite/{id_e}/document?type=document-a-signer", content=b"[]",
                           headers={"content-type": "application/json"})
        assert created.status_code == 201
        id_d = created.json()["id_d"]
        api.patch(f"/entite/{id_e}/document/{id_d}", data={
            "libelle": "REJET attendu", "date_limite": date.today().isoformat(), "has_date_limite": "on"})
        sub = api.patch(f"/entite/{id_e}/document/{id_d}/externalData/iparapheur_sous_type",
                        data={"iparapheur_sous_type": "Délibération"})
        assert sub.json()["result"] == "ok"
        api.post(f"/entite/{id_e}/document/{id_d}/file/document",
                 content=b"file_name=Document+principal.pdf&file_content=" + quote_from_bytes(make_pdf("x")).encode(),
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert api.post(f"/entite/{id_e}/document/{id_d}/action/orientation").status_code == 201
        assert api.post(f"/entite/{id_e}/document/{id_d}/action/send-iparapheur").status_code == 400  # errors echoed
        last = until(lambda: (a := api.get(f"/entite/{id_e}/document/{id_d}").json()["last_action"])["action"]
                     == "rejet-iparapheur" and a, "the refusal")
        assert last["message"].startswith("Le document a été rejeté dans le parapheur : ")
        assert "[RejetSignataire] Refusé par le signataire" in last["message"]
        history = etree.fromstring(api.get(f"/entite/{id_e}/document/{id_d}/file/iparapheur_historique").content)
        assert [log.findtext("status") for log in history.findall("LogDossier/LogDossier")][-1] == "RejetSignataire"
        assert api.get(f"/entite/{id_e}/document/{id_d}/file/signature").status_code == 404
    assert bus.get(IPARAPHEUR, id_d)["state"] == "rejected"


def test_megalis_smoke_sequence_against_the_api_process(bus: Bus) -> None:
    """Mégalis's read-only smoke sequence (tests/pastell/smoke.py) against the real API process:
    every call answers 2xx JSON, and a document deposited natively is the one it details."""
    native = bus.deposit(NO_SIGNATURE, numero())
    names, sequence = [], smoke_sequence(NO_SIGNATURE)
    with client(bus, NO_SIGNATURE, "") as api:
        step = next(sequence)
        while True:
            name, path = step
            resp = api.get(path)
            check(name, resp.status_code, resp.headers.get("content-type", ""), resp.content)
            names.append(name)
            if name == "documents":
                assert native["id"] in [row["id_d"] for row in resp.json()]
            try:
                step = sequence.send(resp.json())
            except StopIteration:
                break
    assert names == NAMES
