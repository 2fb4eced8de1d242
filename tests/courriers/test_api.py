"""The REST face (connectors/inbound/courriers.py): the messages on the acte and in the inbox, the
multipart reply (202), closing, and who may do what: another collectivité's key gets 404, a key of
the collectivité without the depositor or operator role 403."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bus.config import Settings
from bus.store.db import Store
from connectors.inbound.api import create_app
from connectors.simulators.s2low import minimal_pdf
from tests.courriers.conftest import World

PDF = minimal_pdf(["Pièces"])


@pytest.fixture
async def api(world: World, settings: Settings, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def auth(world: World, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.keys[who]}"}


async def test_messages_on_the_acte_reply_and_inbox(world: World, api: httpx.AsyncClient) -> None:
    doc_id, tx = await world.acte("API_1")
    world.send(tx, "3-1")
    world.send(tx, "5-1")
    await world.collector.run_due()

    doc = (await api.get(f"/api/v1/documents/{doc_id}", headers=auth(world, "reporter"))).json()
    assert doc["state"] == "archived"
    demande, defere = doc["prefecture_messages"]
    assert (demande["type"], demande["label"], demande["state"]) == ("3-1", "Demande de pièces complémentaires",
                                                                      "received")
    assert demande["due_date"] and demande["replies_allowed"] == ["pieces", "refus"] and demande["reply"] is None
    assert [f["role"] for f in demande["files"]] == ["prefecture_archive", "prefecture_message", "prefecture_document"]
    assert (defere["type"], defere["due_date"], defere["replies_allowed"]) == ("5-1", None, [])
    pdf = await api.get(f"/api/v1/documents/{doc_id}/files/{demande['files'][2]['name']}", headers=auth(world, "depositor"))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert [e["event"] for e in doc["timeline"]][-2:] == ["prefecture_message.received"] * 2

    inbox = (await api.get("/api/v1/prefecture-messages", headers=auth(world, "operator"))).json()["messages"]
    assert [(m["document_id"], m["type"]) for m in inbox] == [(doc_id, "3-1"), (doc_id, "5-1")]  # due date first
    assert inbox[0]["numero_interne"] == "API_1"

    url = f"/api/v1/documents/{doc_id}/prefecture-messages/{demande['id']}"
    answer = await api.post(url + "/reply", headers=auth(world, "depositor"),
                            data={"kind": "pieces", "typologies": ["99_DE", "21_DA"]},
                            files=[("document", ("courrier.pdf", PDF, "application/pdf")),
                                   ("annexes", ("plan.pdf", minimal_pdf(["Plan"]), "application/pdf"))])
    assert answer.status_code == 202, answer.text
    assert answer.json()["reply"] == {"kind": "pieces", "code": "3-4", "status": "intent"}
    pending = (await api.get(url, headers=auth(world, "depositor"))).json()
    assert pending["state"] == "received" and pending["reply"]["status"] == "intent" and pending["replies_allowed"] == []
    assert [(f["role"], f["typologie"]) for f in pending["reply"]["files"]] == [
        ("prefecture_reply_document", "99_DE"), ("prefecture_reply_annexe", "21_DA")]
    await world.runner.process_due()
    sent = (await api.get(url, headers=auth(world, "depositor"))).json()
    assert sent["state"] == "answered" and sent["reply"]["transaction_id"]
    again = await api.post(url + "/reply", headers=auth(world, "operator"), data={"kind": "refus"},
                           files=[("document", ("refus.pdf", PDF, "application/pdf"))])
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_answered"

    defere_url = f"/api/v1/documents/{doc_id}/prefecture-messages/{defere['id']}"
    none = await api.post(defere_url + "/reply", headers=auth(world, "operator"), data={"kind": "reponse"},
                          files=[("document", ("r.pdf", PDF, "application/pdf"))])
    assert none.status_code == 409 and none.json()["error"]["code"] == "no_reply_expected"
    closed = await api.post(defere_url + "/close", headers=auth(world, "operator"))
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    assert (await api.get("/api/v1/prefecture-messages", headers=auth(world, "operator"))).json()["messages"] == []
    done = (await api.get("/api/v1/prefecture-messages", params={"state": "closed"},
                          headers=auth(world, "operator"))).json()["messages"]
    assert [m["type"] for m in done] == ["5-1"]


async def test_other_keys_and_hostile_requests(world: World, api: httpx.AsyncClient) -> None:
    doc_id, tx = await world.acte("API_2")
    world.send(tx, "4-1")
    await world.collector.run_due()
    message = (await api.get(f"/api/v1/documents/{doc_id}/prefecture-messages", headers=auth(world, "depositor"))
               ).json()["prefecture_messages"][0]
    base = f"/api/v1/documents/{doc_id}/prefecture-messages"
    url = f"{base}/{message['id']}"
    reply = {"data": {"kind": "reponse"}, "files": [("document", ("r.pdf", PDF, "application/pdf"))]}

    for method, path, extra in (("GET", base, {}), ("GET", url, {}), ("POST", url + "/reply", reply),
                                ("POST", url + "/close", {})):
        other = await api.request(method, path, headers=auth(world, "other"), **extra)
        assert other.status_code == 404 and other.json()["error"]["code"] == "document_not_found", (method, path)
    for path, extra in ((url + "/reply", reply), (url + "/close", {})):
        reporter = await api.post(path, headers=auth(world, "reporter"), **extra)
        assert reporter.status_code == 403 and reporter.json()["error"]["code"] == "forbidden_role"
    assert (await api.post(url + "/reply", **reply)).status_code == 401
    assert (await api.get(f"{base}/999999", headers=auth(world, "depositor"))).json()["error"]["code"] == \
        "message_not_found"
    assert (await api.get(f"{base}/abc", headers=auth(world, "depositor"))).status_code == 422

    for data, files, status, code in (
        ({"kind": "reponse"}, [("document", ("r.pdf", b"<script>alert(1)</script>", "application/pdf"))], 415,
         "document_not_pdf"),
        ({"kind": "reponse"}, [], 422, "document_required"),
        ({"kind": "pieces"}, [("document", ("r.pdf", PDF, "application/pdf"))], 409, "reply_kind_not_allowed"),
        ({"kind": "x" * 50}, [("document", ("r.pdf", PDF, "application/pdf"))], 422, "invalid_request"),
        ({"kind": "reponse", "typologies": ["<b>"]}, [("document", ("r.pdf", PDF, "application/pdf"))], 422,
         "invalid_typologie"),
    ):
        refused = await api.post(url + "/reply", headers=auth(world, "operator"), data=data, files=files or None)
        assert (refused.status_code, refused.json()["error"]["code"]) == (status, code), refused.text
    view = (await api.get(url, headers=auth(world, "operator"))).json()
    assert view["reply"] is None and view["state"] == "received"  # nothing half-stored


async def test_a_letter_about_an_rh_acte_keeps_its_text_for_the_rh_role(world: World, api: httpx.AsyncClient) -> None:
    doc_id, tx = await world.acte("RH_API", flow="rh-acte")
    world.send(tx, "3-1")
    await world.collector.run_due()
    [seen] = (await api.get(f"/api/v1/documents/{doc_id}", headers=auth(world, "rh"))).json()["prefecture_messages"]
    assert seen["fields"]["description_pieces"]
    [hidden] = (await api.get(f"/api/v1/documents/{doc_id}", headers=auth(world, "depositor"))).json()[
        "prefecture_messages"]
    assert hidden["fields"] == {} and hidden["type"] == "3-1" and hidden["due_date"] == seen["due_date"]
    inbox = (await api.get("/api/v1/prefecture-messages", headers=auth(world, "operator"))).json()["messages"]
    assert inbox[0]["fields"] == {}
    pdf = hidden["files"][2]["name"]
    assert (await api.get(f"/api/v1/documents/{doc_id}/files/{pdf}", headers=auth(world, "depositor"))).status_code == 403
    assert (await api.get(f"/api/v1/documents/{doc_id}/files/{pdf}", headers=auth(world, "rh"))).content.startswith(b"%PDF-")
