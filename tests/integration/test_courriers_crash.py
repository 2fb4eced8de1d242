"""Invariants 1 and 2 for the préfecture's letters: the worker is SIGKILLed while it collects
them (downloads slowed down, so the kill lands with some recorded and some not, or between a record
and its mark-as-read), and while a reply is on the wire (S²low made it, the answer had not come
back). After a restart: every letter recorded exactly once, none left unread at S²low, and the
reply found at S²low (`actes_transac_get_document.php`, §2.6) instead of being sent again."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.signature.pdf import make_pdf
from tests.integration.conftest import Bus, start_bus, until
from tests.integration.test_courriers import SIREN, archived_acte, auth, message, send

LETTERS = ["3-1", "4-1", "2-1", "5-1", "3-1", "2-1"]  # two actes, three letters each


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    made = start_bus(tmp_path_factory.mktemp("courriers-crash"), env={"DEMATBUS_PREFECTURE_POLL_INTERVAL": "1"})
    try:
        yield made
    finally:
        made.close()
        made.stack.stop()


def unread(bus: Bus) -> list[dict[str, Any]]:
    """What S²low still lists for the collectivité (its own login, as the connector asks)."""
    answer = bus.sims.get("/s2low/modules/actes/api/list_document_prefecture.php", auth=(SIREN, f"s2low-{SIREN}"))
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def recorded(bus: Bus, doc_ids: list[str]) -> list[tuple[str, str, str]]:
    """(document, type, remote id) of every letter the bus shows."""
    return [(d, m["type"], m["remote_id"]) for d in doc_ids for m in bus.get(SIREN, d)["prefecture_messages"]]


def test_worker_killed_during_collection_records_each_letter_once(bus: Bus) -> None:
    docs = [archived_acte(bus, f"CRASH_COLL_{i}") for i in range(2)]
    ids = [d["id"] for d in docs]
    bus.sims.post("/s2low/_admin/faults", json={"slow_seconds": 0.8, "endpoint": "actes_transac_get_document.php"})
    sent = {str(send(bus, docs[i // 3], code)): docs[i // 3]["id"] for i, code in enumerate(LETTERS)}

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if 0 < len(recorded(bus, ids)) < len(LETTERS):
            bus.stack.kill("worker")
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the kill never landed in the middle of a collection")
    at_kill = len(recorded(bus, ids))
    assert 0 < at_kill < len(LETTERS)

    bus.sims.delete("/s2low/_admin/faults")
    bus.stack.start_worker()
    until(lambda: len(recorded(bus, ids)) == len(LETTERS), "every letter recorded", timeout=120)
    until(lambda: unread(bus) == [], "every letter marked read at S²low", timeout=60)
    found = recorded(bus, ids)
    assert sorted(remote for _, _, remote in found) == sorted(sent)  # none lost, none twice
    assert all(sent[remote] == doc for doc, _, remote in found)
    for doc_id in ids:  # one journal entry per letter
        events = Counter(e["detail"].get("remote_id") for e in bus.get(SIREN, doc_id)["timeline"]
                         if e["event"] == "prefecture_message.received")
        assert set(events.values()) == {1} and len(events) == 3
        assert bus.get(SIREN, doc_id)["state"] == "archived"


def test_worker_killed_during_a_reply_sends_it_once(bus: Bus) -> None:
    doc = archived_acte(bus, "CRASH_REPLY")
    send(bus, doc, "3-1")
    shown = message(bus, doc["id"], "3-1")
    before = bus.sims.get("/s2low/_admin/stats").json()["calls"].get("reply_3-4", 0)
    # S²low makes the reply, then holds its answer: the worker dies with the reply on the wire.
    bus.sims.post("/s2low/_admin/faults", json={"slow_seconds": 4, "endpoint": "actes_transac_reponse_create.php"})
    answer = bus.api.post(f"/api/v1/documents/{doc['id']}/prefecture-messages/{shown['id']}/reply",
                          headers=auth(bus, SIREN), data={"kind": "pieces"},
                          files=[("document", ("courrier.pdf", make_pdf("Courrier"), "application/pdf")),
                                 ("annexes", ("plan.pdf", make_pdf("Plan"), "application/pdf"))])
    assert answer.status_code == 202, answer.text
    until(lambda: bus.sims.get("/s2low/_admin/stats").json()["calls"].get("reply_3-4", 0) > before,
          "the reply made at S²low", timeout=60, interval=0.1)
    bus.stack.kill("worker")
    assert message(bus, doc["id"], "3-1")["state"] == "received"  # its answer never came back

    bus.sims.delete("/s2low/_admin/faults")
    bus.stack.start_worker()
    closed = message(bus, doc["id"], "3-1", ("closed",), timeout=120)
    assert bus.sims.get("/s2low/_admin/stats").json()["calls"]["reply_3-4"] == before + 1  # not sent again
    answered = next(e for e in bus.get(SIREN, doc["id"])["timeline"] if e["event"] == "prefecture_message.answered")
    assert answered["detail"]["recovered"] is True
    assert answered["detail"]["reply_transaction_id"] == closed["reply"]["transaction_id"]
    replies = [t for t in bus.sims.get("/s2low/_admin/transmissions").json()["transactions"]
               if t.get("related_transaction_id") == int(closed["remote_id"])]
    assert len(replies) == 1
