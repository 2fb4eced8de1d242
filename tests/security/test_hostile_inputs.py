"""Hostile input on every inbound path: each case gets a 4xx with a machine-readable code (the
watched folder: `rejected/` with the code in `<file>.error.json`; Pastell: its error body with the
code in `X-Error-Code`), nothing is stored, and nothing is logged that should not be (no key, no
file content, no traceback).

Paths: REST v1 single deposits and batches, the document list's filters, the Pastell v2 routes and
V1 scripts, the watched folder, the console's forms and filters, and the archives the bus reads
(ACTES tar.gz from the préfecture side, i-Parapheur ZIPs, PES_ACQUIT).
"""

from __future__ import annotations

import base64
import json
import re
import logging
import os
import tarfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from sqlalchemy import func, select

from bus.deposits import Depositor
from bus.store.apikeys import create_key
from bus.store.models import Batch, Document, File, JournalEntry, OutboxEvent, PastellDocument
from connectors.inbound.api import create_app
from connectors.inbound.watcher import FolderWatcher
from schemas.helios.generate import generate_pes_aller
from tests.conftest import SIREN_A, SIREN_B
from tests.security import hostile
from tests.security.hostile import PDF

TODAY = date.today().isoformat()
ACTE = {"nature": 1, "numero_interne": "DEL2026_001", "date_decision": TODAY, "objet": "Budget primitif",
        "classification": "7.1"}
BUDGET_XML = {**ACTE, "nature": 5, "classification": "7.1"}


def acte(**over: Any) -> dict[str, Any]:
    return {**ACTE, **over}


@dataclass
class Case:
    flow: str = "actes"
    metadata: Any = field(default_factory=acte)
    document: tuple[str, bytes, str] = ("acte.pdf", PDF, "application/pdf")
    annexes: list[tuple[str, bytes, str]] = field(default_factory=list)
    siren: str = SIREN_A
    status: int = 422
    code: str = ""


def pes(tmp: Path, *, siret: str = f"{SIREN_A}00017", nom_fic: str = "HOSTILE", **edit: Any) -> bytes:
    path = generate_pes_aller(tmp / f"{nom_fic}.xml", siret=siret, nom_fic=nom_fic, bordereaux=1,
                              pieces_per_bordereau=1, pj_count=0, pj_size=0, **edit)
    return path.read_bytes()


def pes_without_ids(tmp: Path) -> bytes:
    root = etree.fromstring(pes(tmp, nom_fic="NOIDS"))
    del root.attrib["Id"]
    for bordereau in root.iter("Bordereau"):
        del bordereau.attrib["Id"]
    return etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1")


def annexe(data: bytes, name: str = "annexe.xml", media: str = "application/xml") -> list[tuple[str, bytes, str]]:
    return [(name, data, media)]


def rest_cases(tmp: Path) -> dict[str, Case]:
    return {
        # truncated or corrupt PDFs: parsed, not sniffed
        "pdf_truncated_60_bytes": Case(document=("acte.pdf", PDF[:60], "application/pdf"), code="pdf_corrupt"),
        "pdf_truncated_half": Case(document=("acte.pdf", PDF[: len(PDF) // 2], "application/pdf"), code="pdf_corrupt"),
        "pdf_corrupt_content_stream": Case(document=("acte.pdf", hostile.pdf_with_content(b"BT ET", corrupt=True),
                                                     "application/pdf"), code="pdf_corrupt"),
        "pdf_no_page_tree": Case(document=("acte.pdf", PDF.replace(b"/Pages", b"/Pagez"), "application/pdf"),
                                 code="pdf_corrupt"),
        "pdf_password_protected": Case(document=("acte.pdf", hostile.encrypted_pdf(), "application/pdf"),
                                       code="pdf_encrypted"),
        "pdf_annexe_truncated": Case(annexes=annexe(PDF[:200], "plan.pdf", "application/pdf"), code="pdf_corrupt"),
        "pdf_signature_flow_truncated": Case(flow="pdf-signature", metadata={"libelle": "Convention"},
                                             document=("c.pdf", PDF[:60], "application/pdf"), code="pdf_corrupt"),
        # file names: refused, never used as a path
        "name_traversal": Case(document=("../../../../etc/passwd.pdf", PDF, "application/pdf"), code="invalid_file_name"),
        "name_windows_traversal": Case(document=("..\\..\\boot.ini.pdf", PDF, "application/pdf"), code="invalid_file_name"),
        "name_absolute": Case(document=("/etc/cron.d/acte.pdf", PDF, "application/pdf"), code="invalid_file_name"),
        "name_bidi_override": Case(document=("facture\u202efdp.exe.pdf", PDF, "application/pdf"), code="invalid_file_name"),
        "name_control_character": Case(document=("acte\x07\x08.pdf", PDF, "application/pdf"), code="invalid_file_name"),
        "name_hidden_file": Case(document=(".htaccess.pdf", PDF, "application/pdf"), code="invalid_file_name"),
        "name_too_long": Case(document=("a" * 300 + ".pdf", PDF, "application/pdf"), code="invalid_file_name"),
        "name_annexe_traversal": Case(annexes=annexe(PDF, "../annexe.pdf", "application/pdf"), code="invalid_file_name"),
        # XML: XXE, billion laughs, external DTD, deep nesting, huge attributes, broken encodings
        "xml_annexe_xxe": Case(annexes=annexe(hostile.XXE), code="xml_doctype_forbidden"),
        "xml_annexe_billion_laughs": Case(annexes=annexe(hostile.BILLION_LAUGHS), code="xml_doctype_forbidden"),
        "xml_annexe_external_dtd": Case(annexes=annexe(hostile.EXTERNAL_DTD), code="xml_doctype_forbidden"),
        "xml_annexe_deep_nesting": Case(annexes=annexe(hostile.DEEP), code="xml_too_deep"),
        "xml_annexe_huge_attribute": Case(annexes=annexe(hostile.HUGE_ATTRIBUTE), code="xml_attribute_too_large"),
        "xml_annexe_truncated": Case(annexes=annexe(hostile.TRUNCATED_XML), code="xml_malformed"),
        "xml_annexe_wrong_encoding": Case(annexes=annexe(hostile.WRONG_ENCODING_XML), code="xml_malformed"),
        "xml_budget_document_xxe": Case(metadata=BUDGET_XML, document=("budget.xml", hostile.XXE, "application/xml"),
                                        code="xml_doctype_forbidden"),
        "pes_billion_laughs": Case(flow="helios", metadata={"signature": True},
                                   document=("PES.xml", hostile.BILLION_LAUGHS, "application/xml"),
                                   code="pes_doctype_forbidden"),
        "pes_utf8_not_latin1": Case(flow="helios", metadata={"signature": True},
                                    document=("PES.xml", pes(tmp).replace(b"ISO-8859-1", b"UTF-8"), "application/xml"),
                                    code="pes_not_iso_8859_1"),
        "pes_forged_idcoll": Case(flow="helios", metadata={"signature": True},
                                  document=("PES.xml", pes(tmp, siret=f"{SIREN_B}00017", nom_fic="FORGED"),
                                            "application/xml"), code="pes_wrong_idcoll"),
        "pes_unsignable": Case(flow="helios", metadata={"signature": True},
                               document=("PES.xml", pes_without_ids(tmp), "application/xml"), code="pes_no_signable_id"),
        # lying content types
        "lying_html_as_pdf": Case(document=("acte.pdf", b"<html><script>alert(1)</script></html>", "application/pdf"),
                                  status=415, code="document_not_pdf"),
        "lying_png_as_pdf": Case(document=("acte.pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "application/pdf"),
                                 status=415, code="document_not_pdf"),
        "lying_exe_as_png_annexe": Case(annexes=annexe(b"MZ\x90\x00" + b"\x00" * 64, "photo.png", "image/png"),
                                        status=415, code="annexe_bad_type"),
        # forged SIREN, unicode confusables, control characters, nested JSON
        "siren_bad_luhn": Case(siren="210600236", code="invalid_siren"),
        "siren_fullwidth_digits": Case(siren="２１０６００２３５", code="invalid_siren"),
        "siren_trailing_newline": Case(siren=f"{SIREN_A}\n", code="invalid_siren"),
        "siren_of_another_collectivite": Case(siren=SIREN_B, status=403, code="siren_out_of_scope"),
        "numero_cyrillic_confusable": Case(metadata=acte(numero_interne="DЕL2026_001"), code="invalid_numero_interne"),
        "numero_fullwidth_digits": Case(metadata=acte(numero_interne="DEL２０２６"), code="invalid_numero_interne"),
        "classification_arabic_digits": Case(metadata=acte(classification="٧.١"), code="invalid_classification"),
        "objet_nul_character": Case(metadata=acte(objet="Budget\x00primitif"), code="invalid_metadata_characters"),
        "metadata_nested_too_deep": Case(metadata="[" * 100_000, code="invalid_metadata_json"),
    }


def raw_multipart(fields: dict[str, str], files: list[tuple[str, tuple[str, bytes, str]]]) -> tuple[bytes, str]:
    """multipart/form-data with the file names as raw UTF-8 bytes (httpx would percent-encode
    control characters, hiding them from the server)."""
    boundary = "hostile-boundary-7f3a"
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
    for name, (filename, data, media) in files:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="'.encode()
                + filename.encode() + f'"\r\nContent-Type: {media}\r\n\r\n'.encode() + data + b"\r\n")
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


async def counts(store) -> list[int]:  # type: ignore[no-untyped-def]
    async with store.sessions() as s:
        return [(await s.execute(select(func.count()).select_from(t))).scalar_one()
                for t in (Document, File, JournalEntry, OutboxEvent, Batch)]


def assert_clean_logs(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    text = caplog.text
    for secret in secrets:
        assert secret not in text
    assert hostile.PASSWD_MARKER.decode() not in text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert "Traceback" not in text


@pytest.fixture
async def client(settings, store, keys):  # type: ignore[no-untyped-def]
    async with store.transaction() as session:
        keys["rh_a"] = await create_key(session, [SIREN_A], ["depositor", "rh"])
        keys["operator_a"] = await create_key(session, [SIREN_A], ["operator"], name="Opérateur A")
    app = create_app(settings.model_copy(update={"auth_fail_limit": 1000}), store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


def test_the_corpus_has_at_least_forty_cases(tmp_path: Path) -> None:
    total = len(rest_cases(tmp_path)) + 1 + len(BATCH_CASES) + len(PASTELL_CASES) + len(WATCHER_CASES) \
        + len(CONSOLE_CASES) + len(FILTER_CASES) + len(ARCHIVE_CASES)
    assert total >= 40, total


REST_CASE_NAMES = [
    "pdf_truncated_60_bytes", "pdf_truncated_half", "pdf_corrupt_content_stream", "pdf_no_page_tree",
    "pdf_password_protected", "pdf_annexe_truncated", "pdf_signature_flow_truncated", "name_traversal",
    "name_windows_traversal", "name_absolute", "name_bidi_override", "name_control_character", "name_hidden_file",
    "name_too_long", "name_annexe_traversal", "xml_annexe_xxe", "xml_annexe_billion_laughs",
    "xml_annexe_external_dtd", "xml_annexe_deep_nesting", "xml_annexe_huge_attribute", "xml_annexe_truncated",
    "xml_annexe_wrong_encoding", "xml_budget_document_xxe", "pes_billion_laughs", "pes_utf8_not_latin1",
    "pes_forged_idcoll", "pes_unsignable", "lying_html_as_pdf", "lying_png_as_pdf", "lying_exe_as_png_annexe",
    "siren_bad_luhn", "siren_fullwidth_digits", "siren_trailing_newline", "siren_of_another_collectivite",
    "numero_cyrillic_confusable", "numero_fullwidth_digits", "classification_arabic_digits",
    "objet_nul_character", "metadata_nested_too_deep",
]


@pytest.mark.parametrize("name", REST_CASE_NAMES)
async def test_rest_v1_deposit_refuses(client, store, keys, tmp_path, caplog, name: str) -> None:  # type: ignore[no-untyped-def]
    case = rest_cases(tmp_path)[name]
    caplog.set_level(logging.INFO)  # what the processes log (bus/cli.py)
    metadata = case.metadata if isinstance(case.metadata, str) else json.dumps(case.metadata)
    files = [("document", case.document)] + [("annexes", a) for a in case.annexes]
    body, content_type = raw_multipart({"flow": case.flow, "siren": case.siren, "metadata": metadata}, files)
    resp = await client.post("/api/v1/documents", content=body,
                             headers={"Authorization": f"Bearer {keys['a']}", "Content-Type": content_type})
    assert resp.status_code == case.status, resp.text
    assert resp.json()["error"]["code"] == case.code, resp.text
    assert hostile.PASSWD_MARKER.decode() not in resp.text
    assert await counts(store) == [0, 0, 0, 0, 0]
    assert_clean_logs(caplog, keys["a"])


def test_the_rest_case_list_matches_the_corpus(tmp_path: Path) -> None:
    assert sorted(REST_CASE_NAMES) == sorted(rest_cases(tmp_path))


async def test_oversize_file_is_refused_before_it_is_read_whole(client, store, keys, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    import bus.deposits

    real = bus.deposits.load_flow
    monkeypatch.setattr(bus.deposits, "load_flow", lambda name: real(name).model_copy(update={"max_file_mb": 1}))
    big = PDF + b"%" * (2 << 20)
    resp = await client.post("/api/v1/documents", headers={"Authorization": f"Bearer {keys['a']}"},
                             files=[("document", ("acte.pdf", big, "application/pdf"))],
                             data={"flow": "actes", "siren": SIREN_A, "metadata": json.dumps(acte())})
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "file_too_large"
    assert await counts(store) == [0, 0, 0, 0, 0]
    assert_clean_logs(caplog, keys["a"])


# ------------------------------------------------------------------------------ batches (RH)

def manifest(rows: list[str]) -> bytes:
    return ("matricule;nom;prénom;fichier;coffre\n" + "\n".join(rows) + "\n").encode()


OK_ROW = "A1;Martin;Camille;b1.pdf;CFN-1"
BATCH_CASES: dict[str, tuple[bytes, list[tuple[str, bytes]], int, str]] = {
    "batch_payslip_traversal_name": (manifest(["A1;Martin;Camille;passwd.pdf;CFN-1"]),
                                     [("../../etc/passwd.pdf", PDF)], 422, "invalid_file_name"),
    "batch_payslip_truncated_pdf": (manifest([OK_ROW]), [("b1.pdf", PDF[:60])], 422, "pdf_corrupt"),
    "batch_payslip_html_as_pdf": (manifest([OK_ROW]), [("b1.pdf", b"<html></html>")], 415, "payslip_not_pdf"),
    "batch_manifest_nul_byte": (manifest(["A1;Mar\x00tin;Camille;b1.pdf;CFN-1"]), [("b1.pdf", PDF)], 422,
                                "manifest_unreadable"),
    "batch_manifest_escape_sequence": (manifest(["A1;Martin\x1b[2J;Camille;b1.pdf;CFN-1"]), [("b1.pdf", PDF)], 422,
                                       "manifest_unreadable"),
    "batch_manifest_huge_cell": (manifest([f"A1;{'M' * 200_000};Camille;b1.pdf;CFN-1"]), [("b1.pdf", PDF)], 422,
                                 "manifest_unreadable"),
    "batch_manifest_names_a_path": (manifest(["A1;Martin;Camille;../b1.pdf;CFN-1"]), [("b1.pdf", PDF)], 422, "missing_payslip"),
}


@pytest.mark.parametrize("name", list(BATCH_CASES))
async def test_batch_deposit_refuses(client, store, keys, caplog, name: str) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)  # what the processes log (bus/cli.py)
    manifest_bytes, payslips, status, code = BATCH_CASES[name]
    parts = [("manifest", ("manifest.csv", manifest_bytes, "text/csv"))] + [
        ("payslips", (n, data, "application/pdf")) for n, data in payslips]
    resp = await client.post("/api/v1/documents", headers={"Authorization": f"Bearer {keys['rh_a']}"}, files=parts,
                             data={"flow": "rh-bulletin", "siren": SIREN_A, "metadata": json.dumps({"periode": "2026-10"})})
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code
    assert await counts(store) == [0, 0, 0, 0, 0]
    assert "Martin" not in caplog.text and "Camille" not in caplog.text  # personal data
    assert_clean_logs(caplog, keys["rh_a"])


# ------------------------------------------------------------------------------ list filters

FILTER_CASES = {
    "filter_state_sql_injection": ({"state": "' OR '1'='1"}, "unknown_state"),
    "filter_flow_sql_injection": ({"flow": "actes' --"}, "unknown_flow"),
    "filter_siren_injection": ({"siren": "2106%"}, "invalid_siren"),
    "filter_negative_limit": ({"limit": "-1"}, "invalid_request"),
    "filter_huge_limit": ({"limit": "100000000"}, "invalid_request"),
}


@pytest.mark.parametrize("name", list(FILTER_CASES))
async def test_document_list_filters_refuse(client, keys, name: str) -> None:  # type: ignore[no-untyped-def]
    params, code = FILTER_CASES[name]
    resp = await client.get("/api/v1/documents", params=params, headers={"Authorization": f"Bearer {keys['a']}"})
    assert resp.status_code == 422 and resp.json()["error"]["code"] == code, resp.text


# ------------------------------------------------------------------------------ Pastell

def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"apikey:{key}".encode()).decode()}


PASTELL_CASES: dict[str, tuple[str, bytes, str]] = {
    # field, file content, name -> refused at the starting action (code in X-Error-Code)
    "pastell_truncated_pdf": ("arrete", PDF[:60], "pdf_corrupt"),
    "pastell_xxe_annexe": ("autre_document_attache", hostile.XXE, "xml_doctype_forbidden"),
    "pastell_bidi_name": ("arrete", PDF, "invalid_file_name"),
    "pastell_html_as_pdf": ("arrete", b"<html><body>x</body></html>", "document_not_pdf"),
}


async def pastell_draft(client: httpx.AsyncClient, key: str) -> tuple[int, str]:
    id_e = int((await client.get("/api/v2/entite", headers=basic(key))).json()[0]["id_e"])
    id_d = (await client.post(f"/api/v2/entite/{id_e}/document?type=actes-generique", headers=basic(key))).json()["id_d"]
    body = {"acte_nature": "3", "objet": "Arrêté", "numero_de_lacte": "ARR_2026_001", "date_de_lacte": TODAY,
            "classification": "2.1", "envoi_tdt": "on"}
    assert (await client.patch(f"/api/v2/entite/{id_e}/document/{id_d}", data=body, headers=basic(key))).status_code == 200
    return id_e, id_d


@pytest.mark.parametrize("name", list(PASTELL_CASES))
@pytest.mark.parametrize("face", ["v2", "v1"])
async def test_pastell_starting_action_refuses(client, store, keys, caplog, name: str, face: str) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)  # what the processes log (bus/cli.py)
    field_name, data, code = PASTELL_CASES[name]
    key = keys["a"]
    id_e, id_d = await pastell_draft(client, key)
    if field_name != "arrete":
        sent = await client.post(f"/api/v2/entite/{id_e}/document/{id_d}/file/arrete", headers=basic(key),
                                 files={"file_content": ("arrete.pdf", PDF)})
        assert sent.status_code == 201
    file_name = "arrete\u202efdp.pdf" if name == "pastell_bidi_name" else "piece.xml" if data.startswith(b"<?xml") else "a.pdf"
    if face == "v2":
        sent = await client.post(f"/api/v2/entite/{id_e}/document/{id_d}/file/{field_name}", headers=basic(key),
                                 files={"file_content": (file_name, data)})
        assert sent.status_code == 201, sent.text
        resp = await client.post(f"/api/v2/entite/{id_e}/document/{id_d}/action/send-tdt", headers=basic(key))
        assert resp.status_code == 400, resp.text
    else:  # V1 scripts answer their generic errors with HTTP 200 and the error body (as Pastell does)
        sent = await client.post("/api/send-file.php", headers=basic(key),
                                 data={"id_e": str(id_e), "id_d": id_d, "field_name": field_name, "file_name": file_name},
                                 files={"file_content": (file_name, data)})
        assert sent.status_code == 200, sent.text
        resp = await client.post("/api/action.php", headers=basic(key),
                                 data={"id_e": str(id_e), "id_d": id_d, "action": "send-tdt"})
        assert resp.status_code in (200, 400), resp.text
    assert resp.json()["status"] == "error" and resp.json()["error-message"]
    assert resp.headers["x-error-code"] == code, (resp.headers, resp.text)
    assert await counts(store) == [0, 0, 0, 0, 0]
    assert_clean_logs(caplog, key)


async def test_pastell_parameters_refuse_malformed_values(client, store, keys) -> None:  # type: ignore[no-untyped-def]
    key = keys["a"]
    bad_utf8 = await client.post("/api/v2/entite/1/document", headers={**basic(key),
                                 "content-type": "application/x-www-form-urlencoded"}, content=b"type=actes-g%E9n%E9rique")
    assert bad_utf8.status_code == 400 and bad_utf8.json()["status"] == "error"
    injected = await client.get("/api/list-document.php", params={"id_e": "1 OR 1=1"}, headers=basic(key))
    assert injected.json()["status"] == "error"  # V1: HTTP 200 with the error body
    other = await client.get("/api/v2/entite/999999/document", headers=basic(key))
    assert 400 <= other.status_code < 500
    async with store.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(PastellDocument))).scalar_one() == 0


# ------------------------------------------------------------------------------ watched folder

def _watcher_case(name: str, inbox: Path) -> tuple[Path, str]:
    folder = inbox / SIREN_A / ("helios" if name == "watch_pes_xxe" else "actes")
    folder.mkdir(parents=True, exist_ok=True)
    meta = json.dumps(acte())
    if name == "watch_symlink_to_system_file":
        target = folder / "passwd.pdf"
        os.symlink("/etc/passwd", target)
        return target, "symlink_refused"
    if name == "watch_control_characters_in_name":
        target = folder / "acte\x1b[2J.pdf"
        target.write_bytes(PDF)
    elif name == "watch_truncated_pdf":
        target = folder / "acte.pdf"
        target.write_bytes(PDF[:60])
    elif name == "watch_pes_xxe":
        target = folder / "PES.xml"
        target.write_bytes(b'<?xml version="1.0" encoding="ISO-8859-1"?>' + hostile.XXE.split(b"?>", 1)[1])
        return target, "pes_doctype_forbidden"
    else:
        target = folder / "acte.pdf"
        target.write_bytes(PDF)
    sidecar = target.with_name(target.name + ".meta.json")
    if name == "watch_sidecar_nested_too_deep":
        sidecar.write_text("[" * 100_000)
        return target, "invalid_metadata_json"
    if name == "watch_sidecar_too_large":
        sidecar.write_text(json.dumps({**acte(), "objet": "x" * (2 << 20)}))
        return target, "metadata_too_large"
    sidecar.write_text(meta)
    return target, {"watch_control_characters_in_name": "invalid_file_name", "watch_truncated_pdf": "pdf_corrupt"}[name]


WATCHER_CASES = ["watch_symlink_to_system_file", "watch_control_characters_in_name", "watch_truncated_pdf",
                 "watch_pes_xxe", "watch_sidecar_nested_too_deep", "watch_sidecar_too_large"]


@pytest.mark.parametrize("name", WATCHER_CASES)
async def test_watched_folder_rejects(settings, store, keys, tmp_path, caplog, name: str) -> None:  # type: ignore[no-untyped-def]
    from bus.blobs import BlobStore

    caplog.set_level(logging.INFO)  # what the processes log (bus/cli.py)
    inbox = tmp_path / "inbox"
    path, code = _watcher_case(name, inbox)
    watcher = FolderWatcher(inbox, Depositor(store, BlobStore(settings.blob_dir, settings.keys_dir), settings))
    await watcher.scan()  # first sight: waits until the file is stable
    report = await watcher.scan()
    assert report.rejected == [path.name] and not report.deposited
    error = json.loads((path.parent / "rejected" / f"{path.name}.error.json").read_text())
    assert error["code"] == code, error
    assert not path.exists() and not path.is_symlink()
    assert await counts(store) == [0, 0, 0, 0, 0]
    assert "root:x:0:0" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ------------------------------------------------------------------------------ console

CONSOLE_CASES = {
    "console_login_huge_key": ("post", "/console/login", {"key": "k" * 10_000}, 422, "invalid_request"),
    "console_login_open_redirect": ("post", "/console/login", {"key": "<operator>", "next": "//evil.example/x"}, 303, ""),
    "console_search_state_injection": ("get", "/console/documents?state=archived'%20OR%201=1", None, 422, "unknown_state"),
    "console_search_out_of_scope_siren": ("get", f"/console/documents?siren={SIREN_B}", None, 403, "siren_out_of_scope"),
    "console_search_bad_date": ("get", "/console/documents?du=2026-13-45", None, 422, "invalid_request"),
    "console_search_page_zero": ("get", "/console/documents?page=0", None, 422, "invalid_request"),
    "console_search_huge_text": ("get", "/console/documents?q=" + "x" * 5000, None, 422, "invalid_request"),
    "console_replay_without_csrf": ("post", "/console/documents/00000000-0000-0000-0000-000000000000/rejouer",
                                    {"csrf": "forged"}, 403, "invalid_csrf_token"),
    "console_bulk_replay_without_csrf": ("post", "/console/erreurs/rejouer", {"csrf": "", "ids": "x"}, 403,
                                         "invalid_csrf_token"),
}


@pytest.mark.parametrize("name", list(CONSOLE_CASES))
async def test_console_forms_and_filters_refuse(client, keys, caplog, name: str) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)  # what the processes log (bus/cli.py)
    method, url, form, status, code = CONSOLE_CASES[name]
    if name != "console_login_huge_key":
        logged = await client.post("/console/login", data={"key": keys["operator_a"], "next": ""})
        assert logged.status_code == 303
    if form and form.get("key") == "<operator>":
        form = {**form, "key": keys["operator_a"]}
    resp = await (client.post(url, data=form) if method == "post" else client.get(url))
    assert resp.status_code == status, resp.text[:500]
    if code:
        assert resp.headers["x-error-code"] == code
        assert f'data-error-code="{code}"' in resp.text
    else:  # the open redirect stays home
        assert resp.headers["location"].startswith("/console/")
    assert_clean_logs(caplog, keys["operator_a"])


async def test_console_free_text_search_is_not_a_pattern(client, store, keys) -> None:  # type: ignore[no-untyped-def]
    ok = await client.post("/api/v1/documents", headers={"Authorization": f"Bearer {keys['a']}"},
                           files=[("document", ("acte.pdf", PDF, "application/pdf"))],
                           data={"flow": "actes", "siren": SIREN_A, "metadata": json.dumps(acte())})
    assert ok.status_code == 201
    await client.post("/console/login", data={"key": keys["operator_a"], "next": ""})
    for q in ("%", "%%", "%' OR '1'='1", "\\", "' UNION SELECT key_hash FROM api_keys --"):
        page = await client.get("/console/documents", params={"q": q})
        assert page.status_code == 200
        assert ok.json()["id"] not in page.text, q  # a wildcard or an injection matches nothing
    assert ok.json()["id"] in (await client.get("/console/documents", params={"q": "Budget"})).text


# ------------------------------------------------------------------------------ archives the bus reads

def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    return hostile.tar_gz(members)


ARCHIVE_CASES: dict[str, tuple[str, Any, str]] = {
    "actes_archive_gzip_bomb": ("actes", lambda: hostile.gzip_bomb(200 << 20), "archive_too_large"),
    "actes_archive_traversal": ("actes", lambda: _tar([hostile.member("../../etc/cron.d/x")]), "archive_path_traversal"),
    "actes_archive_absolute": ("actes", lambda: _tar([hostile.member("/etc/passwd")]), "archive_path_traversal"),
    "actes_archive_symlink": ("actes", lambda: _tar([hostile.member("x.xml", kind=tarfile.SYMTYPE, link="/etc/passwd")]),
                              "archive_forbidden_member"),
    "actes_archive_hardlink": ("actes", lambda: _tar([hostile.member("x.xml", kind=tarfile.LNKTYPE, link="/etc/passwd")]),
                               "archive_forbidden_member"),
    "actes_archive_device": ("actes", lambda: _tar([hostile.member("x.xml", kind=tarfile.CHRTYPE)]),
                             "archive_forbidden_member"),
    "parapheur_zip_lying_sizes": ("zip", lambda: hostile.zip_of({"Documents principaux/acte.pdf": b"%PDF" + b"\x00" * 100_000},
                                                               lie_size=True), "PermanentConnectorError"),
    "parapheur_zip_bomb": ("zip", lambda: hostile.zip_of({"Documents principaux/acte.pdf": b"\x00" * (1 << 20)}),
                           "ConnectorError"),
    "acquit_xxe": ("acquit", lambda: hostile.XXE.replace(b"budget", b"n:PES_ACQUIT"), "pes_acquit_doctype_forbidden"),
}


@pytest.mark.parametrize("name", list(ARCHIVE_CASES))
def test_archive_readers_refuse(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.base import ConnectorError
    from connectors.signature import iparapheur
    from schemas.actes.archive import read_acte_archive
    from schemas.errors import SchemaError
    from schemas.helios.acquit import parse_acquit

    kind, build, code = ARCHIVE_CASES[name]
    data = build()
    if kind == "actes":
        with pytest.raises(SchemaError) as refused:
            read_acte_archive(data, max_bytes=50 << 20)
        assert refused.value.code == code
    elif kind == "acquit":
        with pytest.raises(SchemaError) as refused:
            parse_acquit(data)
        assert refused.value.code == code
    else:
        if name == "parapheur_zip_bomb":
            monkeypatch.setattr(iparapheur, "MAX_ZIP_BYTES", 1 << 19)  # the same check, at a size a test can afford
        premis = iparapheur.Premis(name="dossier", main_files=["acte.pdf"], events=[], agents={})
        with pytest.raises(ConnectorError) as refused:
            iparapheur.IparapheurConnector._unzip(data, premis)
        assert type(refused.value).__name__ == code, refused.value


async def test_every_console_form_refuses_a_forged_post(client, keys) -> None:  # type: ignore[no-untyped-def]
    """Every POST route of the console (today's and the ones added later, found by walking the
    app's routes) refuses a cross-site post: a forged CSRF token and hostile field values get a
    4xx page with its code, never a 2xx/3xx nor a 500."""
    from tests.security.test_tenant_isolation import walk

    app = client._transport.app  # type: ignore[attr-defined]
    forms = sorted({path for method, path in walk(app.routes) if method == "POST" and path.startswith("/console/")
                    and path not in ("/console/login", "/console/logout")})
    assert "/console/documents/{document_id}/rejouer" in forms
    assert (await client.post("/console/login", data={"key": keys["operator_a"], "next": ""})).status_code == 303
    hostile_fields = {"csrf": "forged-token", "ids": "../../etc/passwd", "siren": "２１０６００２３５",
                      "metadata": hostile.XXE.decode(), "q": "%' OR 1=1 --", "next": "//evil.example"}
    for path in forms:
        url = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)
        resp = await client.post(url, data=hostile_fields, files={"document": ("../x.pdf", PDF[:60], "application/pdf")})
        assert 400 <= resp.status_code < 500, (path, resp.status_code)
        assert resp.headers.get("x-error-code"), path
