"""The deposit API refuses hostile or invalid input with a clear 4xx and stores nothing."""

from __future__ import annotations

import json
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from bus.store.models import Document, File, JournalEntry, OutboxEvent
from connectors.inbound.api import create_app
from connectors.signature.pdf import make_pdf
from tests.conftest import SIREN_A, SIREN_B

PDF = make_pdf("Délibération", ["Le conseil décide."])


def meta(**over):  # type: ignore[no-untyped-def]
    m = {"nature": 1, "numero_interne": "DEL2026_001", "date_decision": date.today().isoformat(),
         "objet": "Budget primitif", "classification": "7.1"}
    m.update(over)
    return m


@pytest.fixture
async def client(settings, store, keys):  # type: ignore[no-untyped-def]
    app = create_app(settings, store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


async def post(client, key, siren=SIREN_A, m=None, document=("acte.pdf", PDF, "application/pdf"),  # type: ignore[no-untyped-def]
               annexes=(), headers=None):
    h = {"Authorization": f"Bearer {key}"} if key else {}
    h.update(headers or {})
    files = [("document", document)] + [("annexes", a) for a in annexes]
    return await client.post("/api/v1/documents", headers=h, files=files,
                             data={"flow": "actes", "siren": siren, "metadata": json.dumps(m or meta())})


async def counts(store):  # type: ignore[no-untyped-def]
    async with store.sessions() as s:
        return [(await s.execute(select(func.count()).select_from(t))).scalar_one()
                for t in (Document, File, JournalEntry, OutboxEvent)]


async def test_valid_deposit_is_stored_in_one_go(client, store, keys) -> None:  # type: ignore[no-untyped-def]
    resp = await post(client, keys["a"], annexes=[("annexe.pdf", PDF, "application/pdf")])
    assert resp.status_code == 201, resp.text
    doc = resp.json()
    assert doc["state"] == "deposited" and doc["siren"] == SIREN_A and doc["flow"] == "actes"
    assert doc["metadata"]["typologie"] == ["99_DE", "99_DE"]  # S²low's defaults for a délibération
    assert [(f["role"], f["name"]) for f in doc["files"]] == [("document", "acte.pdf"), ("annexe", "annexe.pdf")]
    assert await counts(store) == [1, 2, 1, 2]  # outbox: the deposited event and its move (bus.moves)
    got = await client.get(f"/api/v1/documents/{doc['id']}/files/acte.pdf", headers={"Authorization": f"Bearer {keys['a']}"})
    assert got.status_code == 200 and got.content == PDF


async def test_idempotency_key_returns_the_same_document(client, store, keys) -> None:  # type: ignore[no-untyped-def]
    first = await post(client, keys["a"], headers={"Idempotency-Key": "k1"})
    again = await post(client, keys["a"], headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert (await counts(store))[0] == 1


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"m": meta(numero_interne="del-01")}, 422, "invalid_numero_interne"),
    ({"m": meta(numero_interne="_DEL01")}, 422, "invalid_numero_interne"),
    ({"m": meta(classification="9.9")}, 422, "unknown_classification"),
    ({"m": meta(date_decision=(date.today() + timedelta(days=2)).isoformat())}, 422, "date_in_future"),
    ({"m": meta(objet="x" * 501)}, 422, "invalid_objet"),
    ({"m": meta(nature=7)}, 422, "invalid_nature"),
    ({"document": ("acte.pdf", b"<html>not a pdf</html>", "application/pdf")}, 415, "document_not_pdf"),
    ({"siren": "123456789"}, 422, "invalid_siren"),
    ({"siren": "210703385", "key": "admin"}, 404, "unknown_collectivite"),
    ({"siren": SIREN_B}, 403, "siren_out_of_scope"),
])
async def test_invalid_deposits_are_refused_and_nothing_is_stored(client, store, keys, kwargs, status, code) -> None:  # type: ignore[no-untyped-def]
    key = keys[kwargs.pop("key", "a")]
    resp = await post(client, key, **kwargs)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code
    assert resp.json()["error"]["message"]
    assert await counts(store) == [0, 0, 0, 0]


async def test_numero_interne_is_unique_per_collectivite(client, store, keys) -> None:  # type: ignore[no-untyped-def]
    assert (await post(client, keys["a"])).status_code == 201
    again = await post(client, keys["a"])
    assert again.status_code == 409 and again.json()["error"]["code"] == "duplicate_numero_interne"
    assert (await post(client, keys["b"], siren=SIREN_B)).status_code == 201  # another collectivité may
    assert (await counts(store))[0] == 2


async def test_authentication_and_roles(client, store, keys) -> None:  # type: ignore[no-untyped-def]
    missing = await post(client, None)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    wrong = await post(client, "dmb_nope_nope")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    reporter = await post(client, keys["reporter_a"])
    assert reporter.status_code == 403 and reporter.json()["error"]["code"] == "forbidden_role"
    assert await counts(store) == [0, 0, 0, 0]


async def test_no_key_reads_another_collectivites_document(client, keys) -> None:  # type: ignore[no-untyped-def]
    doc = (await post(client, keys["a"])).json()
    other = await client.get(f"/api/v1/documents/{doc['id']}", headers={"Authorization": f"Bearer {keys['b']}"})
    assert other.status_code == 404 and other.json()["error"]["code"] == "document_not_found"
    listing = await client.get("/api/v1/documents", headers={"Authorization": f"Bearer {keys['b']}"})
    assert listing.json()["documents"] == []
    f = await client.get(f"/api/v1/documents/{doc['id']}/files/acte.pdf", headers={"Authorization": f"Bearer {keys['b']}"})
    assert f.status_code == 404


async def test_malformed_metadata_json(client, store, keys) -> None:  # type: ignore[no-untyped-def]
    resp = await client.post("/api/v1/documents", headers={"Authorization": f"Bearer {keys['a']}"},
                             files=[("document", ("a.pdf", PDF, "application/pdf"))],
                             data={"flow": "actes", "siren": SIREN_A, "metadata": "{not json"})
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_metadata_json"
    missing = await client.post("/api/v1/documents", headers={"Authorization": f"Bearer {keys['a']}"},
                                data={"flow": "actes", "siren": SIREN_A, "metadata": "{}"})
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "invalid_request"
    assert await counts(store) == [0, 0, 0, 0]


async def test_file_larger_than_the_flow_allows(client, store, keys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from bus.flows.definition import load_flow

    monkeypatch.setattr(load_flow("actes"), "max_file_mb", 1)
    big = PDF + b"%" + b"x" * (1024 * 1024)
    resp = await post(client, keys["a"], document=("big.pdf", big, "application/pdf"))
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "file_too_large"
    assert await counts(store) == [0, 0, 0, 0]
