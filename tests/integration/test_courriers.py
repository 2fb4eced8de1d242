"""The préfecture's letters over the real pipeline (spawned broker, simulators, API and worker as
processes): for each type 2-1, 3-1, 4-1, 5-1, received → shown (API, console in Chromium) →
answered where it applies → closed; journaled on the acte (which stays archived), sent to the
collectivité's webhook with their type, counted per type alike by the live counters and the report;
another collectivité's key gets 404, a key without the depositor / operator role 403."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from connectors.signature.pdf import make_pdf
from schemas.actes.messages import parse_actes_message
from tests.console import accessibility
from tests.console.conftest import browser, page, shot  # noqa: F401  (pytest fixtures)
from tests.console.test_console_browser import log_in, new_key
from tests.integration.conftest import Bus, start_bus, until
from tests.webhook_receiver import Receiver

SIREN = "214400152"
OTHER = "210600235"
CODES = ("2-1", "3-1", "4-1", "5-1")
METRICS = tuple(f"prefecture_{c}" for c in CODES)
# the reply each type gets in these tests, and whether the préfecture acknowledges it
REPLY = {"2-1": "reponse", "3-1": "pieces", "4-1": "refus"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver(0)
    yield r
    r.close()


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Bus]:
    made = start_bus(tmp_path_factory.mktemp("courriers"), env={"DEMATBUS_PREFECTURE_POLL_INTERVAL": "1"})
    hook = made.api.post("/api/v1/webhooks", headers=auth(made, "operator"),
                         json={"siren": SIREN, "url": receiver.url, "secret": "a-webhook-secret-of-some-length"})
    assert hook.status_code == 201, hook.text
    try:
        yield made
    finally:
        made.close()
        made.stack.stop()


def auth(bus: Bus, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {bus.keys[who]}"}


def archived_acte(bus: Bus, numero: str) -> dict[str, Any]:
    doc = bus.wait(SIREN, bus.deposit(SIREN, numero)["id"], timeout=120)
    assert doc["state"] == "archived", doc
    return doc


def send(bus: Bus, doc: dict[str, Any], code: str) -> int:
    created = bus.sims.post("/s2low/_admin/prefecture-messages",
                            json={"transaction": int(doc["replies"]["tdt_transaction_id"]), "type": code})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def message(bus: Bus, doc_id: str, code: str, states: tuple[str, ...] = ("received", "answered", "closed"),
            timeout: float = 90) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        shown = bus.get(SIREN, doc_id)["prefecture_messages"]
        return next((m for m in shown if m["type"] == code and m["state"] in states), None)
    return until(probe, f"a {code} in {states} on {doc_id}", timeout=timeout)  # type: ignore[no-any-return]


def reply(bus: Bus, doc_id: str, mid: int, kind: str, who: str = SIREN, annexes: int = 0) -> httpx.Response:
    files = [("document", ("courrier.pdf", make_pdf("Réponse de la commune"), "application/pdf"))]
    files += [("annexes", (f"piece{i}.pdf", make_pdf(f"Pièce {i}"), "application/pdf")) for i in range(annexes)]
    return bus.api.post(f"/api/v1/documents/{doc_id}/prefecture-messages/{mid}/reply", headers=auth(bus, who),
                        data={"kind": kind}, files=files)


@pytest.mark.parametrize("code", CODES)
def test_each_type_is_received_shown_answered_and_closed(bus: Bus, receiver: Receiver, code: str) -> None:
    doc = archived_acte(bus, f"LETTRE_{code.replace('-', '_')}")
    remote = send(bus, doc, code)
    shown = message(bus, doc["id"], code)
    assert shown["state"] == "received" and shown["remote_id"] == str(remote)
    assert shown["label"] and [f["role"] for f in shown["files"]][:2] == ["prefecture_archive", "prefecture_message"]
    assert (shown["due_date"] is not None) == (code in ("3-1", "4-1"))
    xml = bus.file(SIREN, doc["id"], shown["files"][1]["name"])
    assert parse_actes_message(xml, check_xsd=True).type_code == code

    if code == "5-1":
        refused = reply(bus, doc["id"], shown["id"], "reponse")
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_reply_expected"
        closed = bus.api.post(f"/api/v1/documents/{doc['id']}/prefecture-messages/{shown['id']}/close",
                              headers=auth(bus, "operator"))
        assert closed.status_code == 200, closed.text
    else:
        answer = reply(bus, doc["id"], shown["id"], REPLY[code], annexes=1 if code == "3-1" else 0)
        assert answer.status_code == 202, answer.text
        message(bus, doc["id"], code, ("answered", "closed"))
    done = message(bus, doc["id"], code, ("closed",))
    after = bus.get(SIREN, doc["id"])
    assert after["state"] == "archived"  # the acte's own state never moved
    events = [e["event"] for e in after["timeline"] if e["event"].startswith("prefecture_")]
    if code == "5-1":
        assert events == ["prefecture_message.received", "prefecture_message.closed"] and done["reply"] is None
    else:
        assert events == ["prefecture_message.received", "prefecture_reply.requested", "prefecture_message.answered",
                          "prefecture_message.closed"]
        assert done["reply"]["status"] == "done" and done["reply"]["transaction_id"]
        ars = [f for f in done["reply"]["files"] if f["role"] == "prefecture_reply_ar"]
        if code == "2-1":
            assert ars == []  # a 2-2 gets no acknowledgement: closed once transmitted
        else:
            ar = parse_actes_message(bus.file(SIREN, doc["id"], ars[0]["name"]), check_xsd=True)
            assert ar.type_code == {"3-1": "3-5", "4-1": "4-5"}[code]
        stats = bus.sims.get("/s2low/_admin/stats").json()["calls"]
        sent_code = {"2-1": "2-2", "3-1": "3-4", "4-1": "4-3"}[code]
        assert stats[f"reply_{sent_code}"] == 1

    # The collectivité's software heard of each step, with its type.
    wanted = {f"{doc['id']}:{e['seq']}": e["event"] for e in after["timeline"] if e["event"].startswith("prefecture_")}

    def heard() -> dict[str, str]:
        bodies = [json.loads(body) for _, body in receiver.calls]
        return {b["event_id"]: b["type"] for b in bodies if b["event_id"] in wanted}
    got = until(lambda: heard() if heard() == wanted else None, "the webhooks of the letter", timeout=60)
    assert set(got.values()) <= {"prefecture_message.received", "prefecture_reply.requested",
                                 "prefecture_message.answered", "prefecture_message.closed"}
    body = next(json.loads(b) for _, b in receiver.calls if json.loads(b)["event_id"] in wanted)
    assert body["prefecture_message"]["type"] == code and body["state"] == "archived"


def test_other_keys_get_404_or_403(bus: Bus) -> None:
    doc = archived_acte(bus, "LETTRE_TENANCY")
    send(bus, doc, "3-1")
    shown = message(bus, doc["id"], "3-1")
    base = f"/api/v1/documents/{doc['id']}/prefecture-messages"
    for method, path in (("GET", base), ("GET", f"{base}/{shown['id']}"), ("POST", f"{base}/{shown['id']}/close")):
        other = bus.api.request(method, path, headers=auth(bus, OTHER))
        assert other.status_code == 404 and other.json()["error"]["code"] == "document_not_found"
    assert reply(bus, doc["id"], shown["id"], "pieces", who=OTHER).status_code == 404
    theirs = bus.api.get("/api/v1/prefecture-messages", headers=auth(bus, OTHER)).json()["messages"]
    assert all(m["siren"] == OTHER for m in theirs)
    reporter = {"Authorization": f"Bearer {new_key(bus, ['reporter'], 'Direction')}"}
    assert bus.api.get(f"{base}/{shown['id']}", headers=reporter).status_code == 200  # it may read…
    for path in (f"{base}/{shown['id']}/reply", f"{base}/{shown['id']}/close"):  # … not answer nor close
        refused = bus.api.post(path, headers=reporter, data={"kind": "refus"},
                               files=[("document", ("r.pdf", make_pdf("R"), "application/pdf"))])
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_role"
    assert bus.get(SIREN, doc["id"])["prefecture_messages"][0]["state"] == "received"


def test_the_console_shows_each_type_and_answers(bus: Bus, page: Page) -> None:  # noqa: F811
    doc = archived_acte(bus, "LETTRE_CONSOLE")
    for code in CODES:
        send(bus, doc, code)
    until(lambda: len(bus.get(SIREN, doc["id"])["prefecture_messages"]) == 4, "the four letters", timeout=90)
    log_in(page, bus, bus.keys[SIREN], "/console/courriers")
    expect(page.locator("h1")).to_have_text("Courriers de la préfecture à traiter")
    inbox = page.locator("#courriers-inbox tbody tr", has_text="LETTRE_CONSOLE")
    expect(inbox).to_have_count(4)
    problems = accessibility.check(page)
    assert not problems, problems
    shot(page, "30-courriers-inbox")

    page.goto(bus.stack.api_url + f"/console/documents/{doc['id']}")
    articles = page.locator("article.courrier")
    expect(articles).to_have_count(4)
    for label in ("Courrier simple", "Demande de pièces complémentaires", "Lettre d'observations",
                  "Déféré au tribunal administratif"):
        expect(page.locator("article.courrier h3", has_text=label)).to_have_count(1)
    expect(page.locator("article.courrier", has_text="Demande de pièces")).to_contain_text("À traiter avant le")
    problems = accessibility.check(page)
    assert not problems, problems
    shot(page, "31-courriers-acte")

    demande = page.locator("article.courrier", has_text="Demande de pièces complémentaires")
    demande.get_by_label("Envoi des pièces complémentaires").check()
    demande.get_by_label("Courrier de réponse (PDF)").set_input_files(
        files=[{"name": "courrier.pdf", "mimeType": "application/pdf", "buffer": make_pdf("Courrier")}])
    demande.get_by_label("Pièce 1", exact=True).set_input_files(
        files=[{"name": "plan.pdf", "mimeType": "application/pdf", "buffer": make_pdf("Plan de financement")}])
    demande.get_by_label("Typologie de la pièce 1").select_option(index=1)
    demande.get_by_role("button", name="Répondre").click()
    expect(page.locator("#courrier-flash")).to_contain_text("Réponse enregistrée")

    observations = page.locator("article.courrier", has_text="Lettre d'observations")
    observations.get_by_label("Refus").check()
    observations.get_by_label("Courrier de réponse (PDF)").set_input_files(
        files=[{"name": "refus.pdf", "mimeType": "application/pdf", "buffer": make_pdf("Nous maintenons l'acte")}])
    observations.get_by_role("button", name="Répondre").click()
    expect(page.locator("#courrier-flash")).to_be_visible()

    courrier = page.locator("article.courrier", has_text="Courrier simple")
    courrier.get_by_label("Courrier de réponse (PDF)").set_input_files(
        files=[{"name": "reponse.pdf", "mimeType": "application/pdf", "buffer": make_pdf("Bien reçu")}])
    courrier.get_by_role("button", name="Répondre").click()
    expect(page.locator("#courrier-flash")).to_be_visible()

    page.locator("article.courrier", has_text="Déféré").get_by_role("button", name="Classer sans réponse").click()
    expect(page.locator("#courrier-flash")).to_contain_text("classé")

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and page.locator("article.courrier-closed").count() < 4:
        time.sleep(0.5)
        page.reload()
    expect(page.locator("article.courrier-closed")).to_have_count(4)
    expect(page.locator("article.courrier", has_text="Demande de pièces")).to_contain_text("accusée par la préfecture")
    shot(page, "32-courriers-closed")
    pieces = next(m for m in bus.get(SIREN, doc["id"])["prefecture_messages"] if m["type"] == "3-1")
    assert pieces["reply"]["code"] == "3-4"
    assert [f["role"] for f in pieces["reply"]["files"]][:2] == ["prefecture_reply_document", "prefecture_reply_annexe"]
    page.goto(bus.stack.api_url + "/console/courriers")
    expect(page.locator("#courriers-inbox tbody tr", has_text="LETTRE_CONSOLE")).to_have_count(0)


def test_live_counters_and_the_report_count_the_letters_alike(bus: Bus) -> None:
    doc = archived_acte(bus, "LETTRE_COUNT")
    for code in ("3-1", "3-1", "5-1"):
        send(bus, doc, code)
    until(lambda: len(bus.get(SIREN, doc["id"])["prefecture_messages"]) == 3, "three letters", timeout=90)
    year = datetime.now(ZoneInfo("Europe/Paris")).year
    report = bus.api.get("/api/v1/reports/volumes", params={"year": year, "siren": SIREN},
                         headers=auth(bus, "operator")).json()
    assert report["prefecture_messages"] == list(METRICS)
    expected = next(t for t in report["totals"]["collectivites"] if t["flow"] == "actes")
    counted = {m: expected[m] for m in METRICS}
    assert counted["prefecture_3-1"] >= 2 and counted["prefecture_5-1"] >= 1

    def live() -> dict[str, int]:
        got = bus.api.get("/api/v1/counters", params={"siren": SIREN}, headers=auth(bus, "operator")).json()
        counts = next(t["counts"] for t in got["totals"]["collectivites"] if t["flow"] == "actes")
        return {m: counts.get(m, 0) for m in METRICS}
    until(lambda: live() == counted, f"live counters {counted}", timeout=30)
    csv_text = bus.api.get("/api/v1/reports/volumes", params={"year": year, "siren": SIREN, "format": "csv"},
                           headers=auth(bus, "operator")).text
    assert "prefecture_3-1" in csv_text.splitlines()[0]
