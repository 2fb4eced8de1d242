"""Batch deposit through the API (in process): accepted whole in one transaction, or refused
whole with its own code and nothing stored; RH files need the rh role."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bus.counters import read_counters
from bus.store.apikeys import create_key
from bus.store.models import (
    Batch,
    BatchDocument,
    Document,
    File,
    JournalEntry,
    OutboxEvent,
)
from connectors.inbound.api import create_app
from connectors.signature.pdf import make_pdf
from tests.conftest import SIREN_A, SIREN_B

PERIODE = "2026-10"


@pytest.fixture
async def client(settings, store, keys):  # type: ignore[no-untyped-def]
    async with store.transaction() as session:
        keys["rh_a"] = await create_key(session, [SIREN_A], ["depositor", "rh"])
    app = create_app(settings, store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


def files(n: int, *, manifest_rows: list[str] | None = None, pdf_names: list[str] | None = None) -> list[Any]:
    rows = manifest_rows if manifest_rows is not None else [f"A{i};Nom{i};Prénom{i};b{i}.pdf;CFN-{i}" for i in range(n)]
    manifest = ("matricule;nom;prénom;fichier;coffre\n" + "\n".join(rows) + "\n").encode()
    names = pdf_names if pdf_names is not None else [f"b{i}.pdf" for i in range(n)]
    return [("manifest", ("manifest.csv", manifest, "text/csv"))] + [
        ("payslips", (name, make_pdf(f"Bulletin {name}"), "application/pdf")) for name in names]


async def post(client: httpx.AsyncClient, key: str, parts: list[Any], periode: str = PERIODE,
               siren: str = SIREN_A, headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post("/api/v1/documents", headers={"Authorization": f"Bearer {key}", **(headers or {})},
                             files=parts, data={"flow": "rh-bulletin", "siren": siren,
                                                "metadata": json.dumps({"periode": periode})})


async def counts(store) -> list[int]:  # type: ignore[no-untyped-def]
    async with store.sessions() as s:
        return [(await s.execute(select(func.count()).select_from(t))).scalar_one()
                for t in (Batch, BatchDocument, Document, File, JournalEntry, OutboxEvent)]


async def test_batch_is_stored_in_one_go_and_sealed(client, store, keys, settings) -> None:  # type: ignore[no-untyped-def]
    parts = files(3)
    resp = await post(client, keys["rh_a"], parts, headers={"Idempotency-Key": "paie-2026-10"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert [d["matricule"] for d in body["documents"]] == ["A0", "A1", "A2"]
    assert await counts(store) == [1, 3, 3, 3, 3, 6]  # outbox: each payslip's event and its move
    doc_id = body["documents"][1]["id"]
    doc = (await client.get(f"/api/v1/documents/{doc_id}", headers={"Authorization": f"Bearer {keys['rh_a']}"})).json()
    assert doc["metadata"]["nom"] == "Nom1" and doc["metadata"]["periode"] == PERIODE and doc["state"] == "deposited"
    pdf = await client.get(f"/api/v1/documents/{doc_id}/files/b1.pdf", headers={"Authorization": f"Bearer {keys['rh_a']}"})
    assert pdf.status_code == 200 and pdf.content == parts[2][1][1]
    sha = doc["files"][0]["sha256"]
    on_disk = (Path(settings.blob_dir) / sha[:2] / sha[2:4] / sha).read_bytes()
    assert pdf.content not in on_disk and not on_disk.startswith(b"%PDF")
    # Without the rh role: no file, and the agent's identity is masked.
    no_rh = {"Authorization": f"Bearer {keys['a']}"}
    denied = await client.get(f"/api/v1/documents/{doc_id}/files/b1.pdf", headers=no_rh)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "rh_role_required"
    masked = (await client.get(f"/api/v1/documents/{doc_id}", headers=no_rh)).json()["metadata"]
    assert masked["nom"] == masked["prenom"] == masked["coffre"] == "***" and masked["matricule"] == "A1"
    # The batch view, and a retried deposit with the same Idempotency-Key.
    view = (await client.get(f"/api/v1/batches/{body['batch_id']}", headers=no_rh)).json()
    assert view["states"] == {"deposited": 3} and view["finished"] == 0 and view["periode"] == PERIODE
    again = await post(client, keys["rh_a"], files(3), headers={"Idempotency-Key": "paie-2026-10"})
    assert again.status_code == 200 and again.json()["batch_id"] == body["batch_id"]
    assert await counts(store) == [1, 3, 3, 3, 3, 6]  # the retry stored nothing more
    month_again = await post(client, keys["rh_a"], files(1))
    assert month_again.status_code == 409 and month_again.json()["error"]["code"] == "duplicate_payslip"
    other = await client.get(f"/api/v1/batches/{body['batch_id']}", headers={"Authorization": f"Bearer {keys['b']}"})
    assert other.status_code == 404


@pytest.mark.parametrize(("parts", "periode", "status", "code"), [
    (files(3, pdf_names=["b0.pdf", "b1.pdf"]), PERIODE, 422, "missing_payslip"),
    (files(2, pdf_names=["b0.pdf", "b1.pdf", "b9.pdf"]), PERIODE, 422, "unlisted_payslip"),
    (files(2, manifest_rows=["A0;N;P;b0.pdf;C0", "A0;N;P;b1.pdf;C1"]), PERIODE, 422, "duplicate_matricule"),
    (files(2), "2026-1", 422, "invalid_periode"),
    (files(2), "2099-01", 422, "invalid_periode"),
    (files(2)[1:], PERIODE, 422, "manifest_missing"),
    (files(2)[:2] + [("payslips", ("b1.pdf", b"not a pdf", "application/pdf"))], PERIODE, 415, "payslip_not_pdf"),
    (files(2) + [("payslips", ("b1.pdf", make_pdf("x"), "application/pdf"))], PERIODE, 422, "duplicate_file_name"),
])
async def test_refused_whole(client, store, keys, parts, periode, status, code) -> None:  # type: ignore[no-untyped-def]
    resp = await post(client, keys["rh_a"], parts, periode)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code
    assert await counts(store) == [0, 0, 0, 0, 0, 0]


async def test_scope_and_single_document_route(client, keys) -> None:  # type: ignore[no-untyped-def]
    out_of_scope = await post(client, keys["rh_a"], files(1), siren=SIREN_B)
    assert out_of_scope.status_code == 403
    acte = await client.post("/api/v1/documents", headers={"Authorization": f"Bearer {keys['a']}"},
                             data={"flow": "actes", "siren": SIREN_A, "metadata": "{}"},
                             files=files(1))
    assert acte.status_code == 422 and acte.json()["error"]["code"] == "invalid_request"


async def test_batch_deposits_are_counted_live_like_the_journal(client, store, keys) -> None:  # type: ignore[no-untyped-def]
    """Payslips of a batch count in the live counters as the journal-based reports count them."""
    resp = await post(client, keys["rh_a"], files(4))
    assert resp.status_code == 201, resp.text
    rows = await read_counters(store, sirens=[SIREN_A], flow="rh-bulletin")
    live = sum(r.value for r in rows if r.metric == "deposited")
    async with store.sessions() as s:
        journaled = (await s.execute(select(func.count()).select_from(JournalEntry)
                                     .where(JournalEntry.state == "deposited"))).scalar_one()
    assert live == journaled == 4
