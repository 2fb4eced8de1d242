"""The console's part (connectors/console/courriers.py) over in-process HTTP: the acte's page shows
its messages with a « Répondre » form, the inbox lists what waits for an answer, the form posts a
reply and « Classer sans réponse » closes; another collectivité's key sees none of it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from bus.config import Settings
from bus.store.db import Store
from connectors.inbound.api import create_app
from connectors.simulators.s2low import minimal_pdf
from tests.console.console_testlib import login
from tests.courriers.conftest import World


@pytest.fixture
async def browser(world: World, settings: Settings, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def test_answer_a_demande_de_pieces_and_close_a_deferral(world: World, browser: httpx.AsyncClient) -> None:
    doc_id, tx = await world.acte("CONSOLE_1")
    world.send(tx, "3-1")
    world.send(tx, "5-1")
    await world.collector.run_due()
    anonymous = await browser.get("/console/courriers")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/console/login?next=")
    assert (await login(browser, world.keys["depositor"])).status_code == 303

    inbox = await browser.get("/console/courriers")
    assert inbox.status_code == 200
    assert inbox.text.count(f'href="/console/documents/{doc_id}#courrier-') == 2
    assert "Demande de pièces complémentaires (3-1)" in inbox.text and "à répondre" in inbox.text

    page = await browser.get(f"/console/documents/{doc_id}")
    assert page.status_code == 200 and "Courriers de la préfecture" in page.text
    assert "Merci de transmettre le plan de financement" in page.text and "À traiter avant le" in page.text
    forms = re.findall(r'action="(/console/documents/[^"]+/courriers/(\d+)/repondre)"', page.text)
    assert len(forms) == 1  # the 5-1 takes no reply: only « Classer sans réponse »
    action, message_id = forms[0]
    assert '<option value="99_DE">' in page.text  # the nature's typologies, its default first

    sent = await browser.post(action, data={"csrf": csrf(page.text), "kind": "pieces", "typologie_document": "99_DE",
                                            "typologie_1": "21_DA", "typologie_2": ""},
                              files=[("document", ("courrier.pdf", minimal_pdf(["Courrier"]), "application/pdf")),
                                     ("annexe_1", ("plan.pdf", minimal_pdf(["Plan"]), "application/pdf")),
                                     ("annexe_2", ("", b"", "application/octet-stream"))])
    assert sent.status_code == 303 and sent.headers["location"].endswith(f"?courrier=repondu#courrier-{message_id}")
    after = await browser.get(sent.headers["location"].split("#")[0])
    assert "Réponse enregistrée" in after.text and "en cours d'envoi" in after.text
    assert f"courriers/{message_id}/repondre" not in after.text
    await world.runner.process_due()
    assert "en attente de l'accusé de réception" in (await browser.get(f"/console/documents/{doc_id}")).text

    bad = await browser.post(action, data={"csrf": "forged", "kind": "refus"},
                             files=[("document", ("r.pdf", minimal_pdf(["R"]), "application/pdf"))])
    assert bad.status_code == 403 and bad.headers["x-error-code"] == "invalid_csrf_token"
    again = await browser.post(action, data={"csrf": csrf(page.text), "kind": "refus"},
                               files=[("document", ("r.pdf", minimal_pdf(["R"]), "application/pdf"))])
    assert again.status_code == 409 and again.headers["x-error-code"] == "already_answered"

    close = re.findall(r'action="(/console/documents/[^"]+/courriers/\d+/classer)"', after.text)
    assert len(close) == 1
    closed = await browser.post(close[0], data={"csrf": csrf(after.text)})
    assert closed.status_code == 303
    assert "Aucun courrier de la préfecture en attente" in (await browser.get("/console/courriers")).text

    await browser.post("/console/logout")
    assert (await login(browser, world.keys["other"])).status_code == 303
    assert (await browser.get(f"/console/documents/{doc_id}")).status_code == 404
    assert "Aucun courrier" in (await browser.get("/console/courriers")).text
    refused = await browser.post(action, data={"csrf": "x", "kind": "refus"})
    assert refused.status_code == 403  # the CSRF token of another session
