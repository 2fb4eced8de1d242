"""A citizen reads the registry in Debian's Chromium (Playwright), over the real pipeline: the
page is in French, its search controls are labelled and usable with the keyboard, a search
narrows the list, and the link of an acte gives its published PDF."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import shot
from tests.publication.conftest import NO_SIGNATURE, Published

pytestmark = pytest.mark.integration


def test_a_citizen_searches_the_registry_and_opens_an_acte(published: Published, page: Page) -> None:
    page.goto(f"{published.bus.stack.api_url}/publication/{NO_SIGNATURE}")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_have_text("Commune sans signature")
    expect(page.get_by_role("search")).to_be_visible()
    table = page.get_by_role("table")
    expect(table.get_by_text("Vote du budget primitif 2027")).to_be_visible()
    expect(table.get_by_text("Arrêté de stationnement place du marché")).to_be_visible()
    expect(page.get_by_text("Délibération non publiée")).to_have_count(0)
    shot(page, "publication-registre")

    # The first Tab reaches the skip link; the form is reachable and labelled.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Aller au contenu")).to_be_focused()
    page.get_by_label("Nature de l'acte").select_option(label="Délibérations")
    page.get_by_label("Objet contient").fill("budget")
    page.get_by_label("Objet contient").press("Enter")
    expect(page).to_have_url(f"{published.bus.stack.api_url}/publication/{NO_SIGNATURE}?annee=&nature=1&objet=budget")
    expect(page.get_by_role("status")).to_have_text("1 acte correspondant à la recherche.")
    expect(table.get_by_text("Arrêté de stationnement place du marché")).to_have_count(0)
    shot(page, "publication-recherche")

    link = page.get_by_role("link", name="Acte n° PUB_BUDGET (PDF")
    href = link.get_attribute("href")
    assert href == f"/publication/{NO_SIGNATURE}/actes/{published.docs['budget']['replies']['id_acte']}.pdf"
    pdf = page.request.get(published.bus.stack.api_url + href)
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.body()[:5] == b"%PDF-"
    expect(page.get_by_role("link", name="Annexe 1 : annexe1.pdf")).to_be_visible()
