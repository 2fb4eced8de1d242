"""Chromium drives the console over the real pipeline (broker, S²low and SAE simulators, API,
worker): an operator finds failed actes, replays one then a whole filter after a dry run, and
sees them archived, transmitted once; a manager reads the dashboard and the yearly report."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from playwright.sync_api import Page, expect

from bus.store.apikeys import create_key
from bus.store.db import Store
from tests.console.conftest import shot
from tests.integration.conftest import Bus

pytestmark = pytest.mark.integration
SIREN = "214400152"  # Commune sans signature
OTHER = "210600235"  # Commune PAdES
TDT_DOWN = {"fail_next": 100_000, "endpoint": "actes_transac_create.php"}


def fail_at_tdt(bus: Bus, deposits: list[tuple[str, str, str]]) -> list[str]:
    """Deposit (siren, numero, objet) while S²low answers 500, wait until each is in error, and
    bring S²low back."""
    bus.sims.post("/s2low/_admin/faults", json=TDT_DOWN)
    try:
        ids = [(siren, bus.deposit(siren, numero, objet=objet)["id"]) for siren, numero, objet in deposits]
        for siren, doc_id in ids:
            assert bus.wait(siren, doc_id, timeout=120)["state"] == "error"
    finally:
        bus.sims.delete("/s2low/_admin/faults")
    return [doc_id for _, doc_id in ids]


def log_in(page: Page, bus: Bus, key: str, path: str) -> None:
    page.goto(bus.stack.api_url + path)
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    page.fill("#key", key)
    page.click("button[type=submit]")


def wait_for_state(page: Page, label: str, timeout: float = 120) -> None:
    """Reload the document page until its header shows the state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.locator("h1 .state").inner_text() == label:
            return
        time.sleep(0.5)
        page.reload()
    raise AssertionError(f"still {page.locator('h1 .state').inner_text()!r}, expected {label!r}")


def test_operator_filters_errors_opens_a_failed_acte_and_replays_it(bus: Bus, page: Page) -> None:
    [doc_id] = fail_at_tdt(bus, [(SIREN, "CONSOLE_ONE_001", "Arrêté console rejoué seul")])

    log_in(page, bus, "dmb_000000000000_wrong", "/console/erreurs")
    expect(page.get_by_role("alert")).to_contain_text("Clé inconnue")
    shot(page, "01-login-refused")
    page.fill("#key", bus.keys["operator"])
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/console/erreurs$"))
    expect(page.locator("header .who")).to_contain_text("Opératrice Camille")

    page.select_option("select[name=siren]", SIREN)
    page.fill("input[name=q]", "HTTP 500")
    page.click("form.filters button")
    expect(page).to_have_url(re.compile(r"siren=214400152.*q=HTTP"))
    expect(page.locator("section.group h2").first).to_contain_text("actes · tdt")
    shot(page, "02-errors-inbox-filtered")

    page.click(f"a[href='/console/documents/{doc_id}']")
    expect(page.locator("h1")).to_contain_text("CONSOLE_ONE_001")
    expect(page.locator("h1 .state")).to_have_text("en erreur")
    expect(page.locator("section.problem .reason")).to_contain_text("HTTP 500")
    expect(page.locator("#effects")).to_contain_text("failed")
    with page.expect_download() as download:
        page.click("#files a")
    assert download.value.suggested_filename == "deliberation.pdf"
    assert download.value.path().read_bytes().startswith(b"%PDF")
    shot(page, "03-document-in-error")

    page.click("#replay")
    expect(page.get_by_role("status")).to_contain_text("Rejeu demandé")
    wait_for_state(page, "archivé")
    expect(page.locator("#timeline")).to_contain_text("replay.requested")
    expect(page.locator("#timeline")).to_contain_text("by=Opératrice Camille")
    expect(page.locator("#replies")).to_contain_text("id_acte")
    expect(page.locator("#replay")).to_have_count(0)
    shot(page, "04-document-archived-after-replay")

    doc = bus.get(SIREN, doc_id)
    assert doc["generation"] == 2 and doc["state"] == "archived"
    assert [e["detail"]["by"] for e in doc["timeline"] if e["event"] == "replay.requested"] == ["Opératrice Camille"]
    sent = [t for t in bus.sims.get("/s2low/_admin/transmissions").json()["transactions"]
            if t["numero"] == "CONSOLE_ONE_001"]
    assert len(sent) == 1 and bus.s2low_duplicates() == 0


def test_bulk_replay_by_filter_with_a_dry_run(bus: Bus, page: Page) -> None:
    mine = fail_at_tdt(bus, [(SIREN, f"CONSOLE_BULK_{i}", f"Délibération groupée {i}") for i in range(3)]
                       + [(OTHER, "CONSOLE_OTHER", "Hors filtre")])
    targets, outside = mine[:3], mine[3]

    log_in(page, bus, bus.keys["operator"], f"/console/erreurs?siren={SIREN}")
    page.click("#bulk-replay")
    expect(page.locator("#would-replay-count")).to_contain_text("seraient rejoué(s)")
    listed = set(page.locator("#would-replay input[name=ids]").evaluate_all("els => els.map(e => e.value)"))
    assert set(targets) <= listed and outside not in listed
    assert {bus.get(SIREN, i)["state"] for i in targets} == {"error"}  # the dry run changed nothing
    shot(page, "05-bulk-replay-dry-run")

    page.click("#confirm-replay")
    expect(page.locator("#replayed-count")).to_contain_text(f"{len(listed)} document(s) rejoué(s)")
    shot(page, "06-bulk-replay-done")
    for doc_id in targets:
        doc = bus.wait(SIREN, doc_id, states={"archived"}, timeout=180)
        assert [e["detail"]["by"] for e in doc["timeline"] if e["event"] == "replay.requested"] == ["Opératrice Camille"]
    assert bus.get(OTHER, outside)["state"] == "error"  # outside the filter: untouched
    numbers = [t["numero"] for t in bus.sims.get("/s2low/_admin/transmissions").json()["transactions"]]
    assert sorted(n for n in numbers if n.startswith("CONSOLE_BULK_")) == [f"CONSOLE_BULK_{i}" for i in range(3)]
    assert bus.s2low_duplicates() == 0

    page.goto(bus.stack.api_url + f"/console/documents?siren={SIREN}&state=archived&q=CONSOLE_BULK")
    expect(page.locator("#documents tbody tr")).to_have_count(3)
    shot(page, "07-documents-filtered")


def new_key(bus: Bus, roles: list[str], name: str) -> str:
    """A key for every collectivité, created in the stack's store."""
    async def create() -> str:
        store = Store(bus.stack.settings.db_url)
        try:
            async with store.transaction() as session:
                return await create_key(session, ["*"], roles, name=name)
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's event loop
        return pool.submit(asyncio.run, create()).result()


def test_manager_reads_the_dashboard_and_the_yearly_report(bus: Bus, page: Page) -> None:
    doc_id = bus.deposit(SIREN, "CONSOLE_REPORT", objet="Acte du rapport")["id"]
    bus.wait(SIREN, doc_id, states={"archived"}, timeout=120)
    key = new_key(bus, ["reporter"], "Direction du syndicat")
    year = date.today().year

    log_in(page, bus, key, "/console/")
    expect(page).to_have_url(re.compile(r"/console/tableau-de-bord$"))
    expect(page.locator("header nav")).not_to_contain_text("Erreurs")
    expect(page.locator("#chart-months svg")).to_have_count(1)
    expect(page.locator("#chart-flows svg")).to_contain_text("actes")
    expect(page.locator("#chart-top svg")).to_contain_text("Commune sans signature (214400152)")
    shot(page, "08-dashboard")

    page.goto(bus.stack.api_url + "/console/erreurs")
    expect(page.locator("[data-error-code]")).to_have_attribute("data-error-code", "forbidden_role")

    page.goto(bus.stack.api_url + "/console/tableau-de-bord")
    page.click("text=Rapport annuel imprimable")
    expect(page.locator("h1")).to_have_text(f"Volumes {year}")
    expect(page.locator("body")).to_contain_text("Commune sans signature")
    shot(page, "09-yearly-report")

    with page.expect_download() as download:
        page.click("text=CSV")
    console_csv = download.value.path().read_text()
    api_csv = bus.api.get("/api/v1/reports/volumes", params={"year": year, "format": "csv"},
                          headers={"Authorization": f"Bearer {bus.keys['operator']}"}).text
    assert console_csv == api_csv
    totals = {r["scope"]: r for r in csv.DictReader(io.StringIO(console_csv.split("\n\n")[1]))}
    assert int(totals["total"]["archived"]) >= 1



def test_operator_cancels_an_acknowledged_acte(bus: Bus, page: Page) -> None:
    doc_id = bus.deposit(SIREN, "CONSOLE_ANNUL")["id"]
    bus.wait(SIREN, doc_id, states={"archived"}, timeout=120)

    log_in(page, bus, bus.keys["operator"], f"/console/documents/{doc_id}")
    page.click("#annul")
    expect(page.get_by_role("status")).to_contain_text("Annulation demandée")
    wait_for_state(page, "annulé")
    expect(page.locator("#timeline")).to_contain_text("annulation.acknowledged")
    expect(page.locator("#timeline")).to_contain_text("by=Opératrice Camille")
    expect(page.locator("#annul")).to_have_count(0)
    shot(page, "10-acte-cancelled")
