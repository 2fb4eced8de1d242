"""Chromium drives the deposit forms over the real pipeline (broker, worker, S²low, DGFiP, SAE
simulators): a secretary deposits a délibération with an annexe using the keyboard alone and
watches it reach `archivé`; a refused form comes back with each error next to its field; a PES
is deposited; a depositor-only key is kept out of the operator pages; and every console page passes
the accessibility check (axe-core's WCAG 2.1 AA rules, visible focus, lang="fr")."""

from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from connectors import console
from connectors.console.deposit_forms import FORMS
from connectors.signature.pdf import make_pdf
from tests.console import accessibility
from tests.console.conftest import shot
from tests.console.test_console_browser import TDT_DOWN, log_in, new_key
from tests.integration.conftest import Bus
from tests.integration.test_helios_pipeline import PES_SIREN, unsigned_sample

pytestmark = pytest.mark.integration
SIREN = "214400152"  # Commune sans signature
TODAY = date.today().isoformat()
NEW_YEAR = date(date.today().year, 1, 1)  # typed the same whether the date field reads jj/mm or mm/jj


def tab_to(page: Page, selector: str, limit: int = 60) -> None:
    """Move the focus forward with Tab until it is on `selector`: reachable by keyboard, in order."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} is not reached with Tab")


def choose_file_by_keyboard(page: Page, selector: str, name: str, data: bytes) -> None:
    tab_to(page, selector)
    for attempt in range(3):
        # Space on the focused input opens the chooser; on a loaded machine Chromium may drop the
        # first key press before the input is ready, so press again (the focus stays on it).
        try:
            with page.expect_file_chooser(timeout=10_000) as chooser:
                page.keyboard.press("Space")
            break
        except PlaywrightTimeoutError:
            assert page.evaluate("s => document.activeElement.matches(s)", selector), f"{selector} lost the focus"
            if attempt == 2:
                raise
    chooser.value.set_files([{"name": name, "mimeType": "application/pdf", "buffer": data}])


def transmissions(bus: Bus, numero: str) -> int:
    return sum(1 for t in bus.sims.get("/s2low/_admin/transmissions").json()["transactions"] if t["numero"] == numero)


def test_a_depositor_deposits_a_deliberation_with_an_annexe_by_keyboard_and_sees_it_archived(bus: Bus, page: Page) -> None:
    log_in(page, bus, bus.keys[SIREN], "/console/")
    expect(page).to_have_url(re.compile(r"/console/deposer$"))
    expect(page.locator("header nav")).not_to_contain_text("Erreurs")
    shot(page, "11-deposit-choose")

    tab_to(page, f"a[href='/console/deposer/{SIREN}/actes']")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Déposer un acte")
    tab_to(page, "#nature")
    page.keyboard.type("Dél")  # a closed select takes the option its label starts with
    tab_to(page, "#numero_interne")
    page.keyboard.type("FORM_DELIB_001")
    tab_to(page, "#date_decision")
    page.keyboard.type(NEW_YEAR.strftime("%d%m%Y"))
    tab_to(page, "#objet")
    page.keyboard.type("Délibération déposée depuis la console")
    tab_to(page, "#classification")
    page.keyboard.type("1.1 ")
    choose_file_by_keyboard(page, "#document", "deliberation.pdf", make_pdf("Délibération", ["FORM_DELIB_001"]))
    choose_file_by_keyboard(page, "#annexes", "plan.pdf", make_pdf("Annexe", ["Plan de situation"]))
    expect(page.get_by_label("Nature")).to_have_value("1")
    expect(page.get_by_label("Classification")).to_have_value("1.1")
    expect(page.get_by_label("Date de décision")).to_have_value(NEW_YEAR.isoformat())
    shot(page, "12-deposit-acte-filled")
    tab_to(page, "#deposit")
    page.keyboard.press("Enter")

    expect(page.locator("#deposited")).to_contain_text("Document déposé")
    doc_id = page.url.split("/console/documents/")[1].split("?")[0]
    expect(page.locator("meta[http-equiv=refresh]")).to_have_count(1)
    problems = accessibility.check(page, disabled=("meta-refresh",))  # WCAG 2.2.1: the page offers to stop it
    assert not problems, "\n".join(problems)
    expect(page.get_by_role("link", name="Arrêter la mise à jour automatique")).to_be_visible()
    shot(page, "13-deposited-following")
    # No reload from the test: the page's own meta refresh brings each new state.
    expect(page.locator("h1 .state")).to_have_text("archivé", timeout=150_000)
    expect(page.locator("meta[http-equiv=refresh]")).to_have_count(0)
    expect(page.locator("#files")).to_contain_text("plan.pdf")
    shot(page, "14-deposited-archived")

    doc = bus.get(SIREN, doc_id)
    assert doc["metadata"]["numero_interne"] == "FORM_DELIB_001" and doc["metadata"]["typologie"] == ["99_DE", "99_DE"]
    assert [f["role"] for f in doc["files"] if f["role"] in ("document", "annexe")] == ["document", "annexe"]
    assert transmissions(bus, "FORM_DELIB_001") == 1 and bus.s2low_duplicates() == 0


def test_a_bad_numero_and_an_unknown_classification_come_back_next_to_their_fields(bus: Bus, page: Page) -> None:
    log_in(page, bus, bus.keys[SIREN], f"/console/deposer/{SIREN}/actes")
    page.get_by_label("Nature").select_option("1")
    page.get_by_label("Numéro interne").fill("délib n°2")
    page.get_by_label("Date de décision").fill(TODAY)
    page.get_by_label("Objet").fill("Subvention au comité des fêtes")
    # A classification the préfecture has withdrawn since the form was loaded.
    page.evaluate("document.querySelector('#classification').add(new Option('9.9', '9.9', true, true))")
    page.get_by_label("Document").set_input_files(
        files=[{"name": "subvention.pdf", "mimeType": "application/pdf", "buffer": make_pdf("Subvention")}])
    page.get_by_role("button", name="Déposer").click()

    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("Le dépôt n'a pas été accepté")
    for field, code in (("numero_interne", "invalid_numero_interne"), ("classification", "unknown_classification")):
        error = page.locator(f"#{field}-error")
        expect(error).to_have_attribute("data-error-code", code)
        expect(error).to_contain_text(code)
        expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
        assert f"{field}-error" in page.locator(f"#{field}").get_attribute("aria-describedby").split()
        # next to its field: the error sits in the field's own block, right above the control
        assert page.locator(f".field:has(#{field}) .field-error").get_attribute("id") == f"{field}-error"
    expect(page.locator(".field-error")).to_have_count(2)
    expect(page.get_by_label("Numéro interne")).to_have_value("délib n°2")
    expect(page.get_by_label("Objet")).to_have_value("Subvention au comité des fêtes")
    expect(page.get_by_label("Date de décision")).to_have_value(TODAY)
    expect(page.locator("#document-kept")).to_contain_text("subvention.pdf")
    problems = accessibility.check(page)
    assert not problems, "\n".join(problems)
    shot(page, "15-deposit-refused")

    summary.get_by_role("link", name="Numéro interne").click()
    expect(page.get_by_label("Numéro interne")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("FORM_DELIB_002")
    page.get_by_label("Classification").select_option("1.1")
    page.get_by_role("button", name="Déposer").click()  # the PDF is not chosen again: it was kept
    expect(page.locator("#deposited")).to_contain_text("Document déposé")
    expect(page.locator("#files")).to_contain_text("subvention.pdf")


def test_a_pes_is_deposited_through_the_form(bus: Bus, page: Page) -> None:
    log_in(page, bus, bus.keys[PES_SIREN], f"/console/deposer/{PES_SIREN}/helios")
    expect(page.locator("h1")).to_have_text("Déposer un fichier PES")
    expect(page.get_by_label("Signature")).to_be_checked()  # the collectivité signs its PES by default
    page.get_by_label("Fichier PES").set_input_files(
        files=[{"name": "PES_FORM.xml", "mimeType": "text/xml", "buffer": unsigned_sample("FORM_PES_1")}])
    shot(page, "16-deposit-pes")
    page.get_by_role("button", name="Déposer").click()
    expect(page.locator("#deposited")).to_contain_text("Document déposé")
    expect(page.locator("h1")).to_contain_text("FORM_PES_1")
    expect(page.locator("h1 .state")).to_have_text("archivé", timeout=150_000)
    doc = bus.get(PES_SIREN, page.url.split("/console/documents/")[1].split("?")[0])
    assert doc["metadata"]["signature"] is True and doc["replies"]["acquit"] == "accepted"
    assert {"signed_document", "pes_acquit"} <= {f["role"] for f in doc["files"]}


def test_a_depositor_only_key_gets_403_on_the_operator_pages(bus: Bus, page: Page) -> None:
    other = bus.deposit(PES_SIREN, "FORM_OTHER_COLL")["id"]
    log_in(page, bus, bus.keys[SIREN], "/console/")
    for path in ("/console/erreurs", "/console/erreurs/rejouer", "/console/tableau-de-bord"):
        response = page.goto(bus.stack.api_url + path)
        assert response is not None and response.status == 403, path
        expect(page.locator("[data-error-code]")).to_have_attribute("data-error-code", "forbidden_role")
    shot(page, "17-depositor-forbidden")
    assert page.goto(bus.stack.api_url + f"/console/documents/{other}").status == 404  # type: ignore[union-attr]
    assert page.goto(bus.stack.api_url + f"/console/deposer/{PES_SIREN}/actes").status == 403  # type: ignore[union-attr]
    page.goto(bus.stack.api_url + "/console/documents")
    expect(page.locator("#documents")).not_to_contain_text("FORM_OTHER_COLL")


# -- every console page ---------------------------------------------------------------------------

def console_pages(samples: dict[str, list[str]]) -> list[str]:
    """Every GET page of the console (the routers it mounts), its path parameters filled from
    `samples` (each value in turn): a new page is checked without being listed here."""
    urls = []
    for route in (r for router in console.ROUTERS for r in router.routes):
        path = getattr(route, "path", "")
        if "GET" not in (getattr(route, "methods", None) or ()):
            continue
        filled = [path]
        for param in re.findall(r"{(\w+)}", path):
            if param not in samples:
                pytest.fail(f"no sample value for {{{param}}} of {path}: add one to the accessibility test")
            filled = [p.replace(f"{{{param}}}", value) for p in filled for value in samples[param]]
        urls += filled
    return urls


def test_every_console_page_passes_the_accessibility_check(bus: Bus, page: Page) -> None:
    archived = bus.wait(SIREN, bus.deposit(SIREN, "FORM_A11Y_OK", annexes=1)["id"], states={"archived"}, timeout=120)
    bus.sims.post("/s2low/_admin/faults", json=TDT_DOWN)
    try:
        failed = bus.wait(SIREN, bus.deposit(SIREN, "FORM_A11Y_KO")["id"], timeout=120)
    finally:
        bus.sims.delete("/s2low/_admin/faults")
    assert failed["state"] == "error"
    samples = {"document_id": [archived["id"], failed["id"]], "name": [archived["files"][0]["name"]],
               "siren": [SIREN], "flow": list(FORMS)}
    urls = console_pages(samples)
    assert "/console/erreurs" in urls and f"/console/deposer/{SIREN}/actes" in urls

    failures: dict[str, list[str]] = {}
    page.goto(bus.stack.api_url + "/console/login")
    failures["/console/login"] = accessibility.check(page)
    page.fill("#key", new_key(bus, ["admin"], "Administratrice"))
    page.click("button[type=submit]")
    checked = 1
    for url in urls:
        answer = page.request.get(bus.stack.api_url + url)  # the browser's cookies, no navigation
        assert answer.status == 200, (url, answer.status)
        if not answer.headers.get("content-type", "").startswith("text/html"):
            continue  # the stylesheet, a file download
        page.goto(bus.stack.api_url + url)
        failures[url] = accessibility.check(page)
        checked += 1
    page.goto(bus.stack.api_url + "/console/erreurs/rejouer")
    expect(page.locator("#would-replay input[name=ids]")).not_to_have_count(0)
    failures["(an error page)"] = accessibility.check(page) if page.goto(
        bus.stack.api_url + "/console/documents?state=lost") else ["no page"]
    failures = {url: problems for url, problems in failures.items() if problems}
    assert not failures, "\n".join(f"{url}:\n  " + "\n  ".join(p) for url, p in failures.items())
    assert checked >= 10
