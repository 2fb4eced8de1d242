"""The console over plain HTTP: login required, wrong keys refused, filters, roles, replay with
CSRF, bulk replay dry run, manager pages. The browser tests drive the real pipeline."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bus.annulation import AnnulationRefused
from bus.reports import volumes
from bus.store.models import JournalEntry
from connectors.console import annulation, pages
from connectors.console.session import load_secret
from tests.conftest import SIREN_A, SIREN_B
from tests.console.console_testlib import Seeded, login


@pytest.fixture
async def operator(client: httpx.AsyncClient, seeded: Seeded) -> httpx.AsyncClient:
    resp = await login(client, seeded.keys["operator_a"])
    assert resp.status_code == 303 and resp.headers["location"] == "/console/documents"
    return client


def listed(html: str) -> set[str]:
    """Document ids linked from a page."""
    return set(re.findall(r'href="/console/documents/([0-9a-f-]{36})"', html))


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def replays_journaled(store, doc_id: str) -> list[JournalEntry]:  # type: ignore[no-untyped-def]
    async with store.sessions() as session:
        return list((await session.execute(select(JournalEntry).where(
            JournalEntry.document_id == doc_id, JournalEntry.event == "replay.requested"))).scalars())


@pytest.mark.parametrize("path", ["/console/documents", "/console/erreurs", "/console/tableau-de-bord",
                                  "/console/rapport?year=2026&format=csv", "/console/"])
async def test_every_page_needs_a_login(client: httpx.AsyncClient, seeded: Seeded, path: str) -> None:
    resp = await client.get(path)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/console/login?next=/console/")


async def test_wrong_or_unfit_keys_are_refused(client: httpx.AsyncClient, seeded: Seeded) -> None:
    wrong = await login(client, "dmb_000000000000_not-a-key")
    assert wrong.status_code == 401 and wrong.headers["x-error-code"] == "invalid_api_key"
    assert "dematbus_console" not in wrong.cookies
    rh_only = await login(client, seeded.keys["rh_a"])
    assert rh_only.status_code == 403 and rh_only.headers["x-error-code"] == "forbidden_role"
    assert "dematbus_console" not in rh_only.cookies
    client.cookies.set("dematbus_console", "eyJrIjoiYWRtaW4ifQ.forged.signature", path="/console")
    assert (await client.get("/console/documents")).status_code == 303


async def test_login_then_logout(operator: httpx.AsyncClient) -> None:
    page = await operator.get("/console/documents")
    assert page.status_code == 200 and "Opérateur A" in page.text
    assert page.headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    out = await operator.post("/console/logout")
    assert out.status_code == 303
    assert (await operator.get("/console/documents")).status_code == 303


async def test_login_returns_to_the_page_asked_and_never_elsewhere(client: httpx.AsyncClient, seeded: Seeded) -> None:
    back = await client.post("/console/login", data={"key": seeded.keys["operator_a"], "next": "/console/erreurs?q=HTTP"})
    assert back.headers["location"] == "/console/erreurs?q=HTTP"
    away = await client.post("/console/login", data={"key": seeded.keys["operator_a"], "next": "https://evil.example/"})
    assert away.headers["location"] == "/console/documents"


async def test_documents_filters(operator: httpx.AsyncClient, seeded: Seeded) -> None:
    ids = seeded.ids

    async def found(**params: str) -> set[str]:
        resp = await operator.get("/console/documents", params=params)
        assert resp.status_code == 200, resp.text
        return listed(resp.text)

    mine = {ids["budget"], ids["voirie"], ids["cantine"], ids["pes"]}
    page = (await operator.get("/console/documents")).text
    assert f'<option value="{SIREN_A}"' in page and SIREN_B not in page  # the collectivité list is the key's
    assert await found() == mine  # never SIREN B's document
    assert await found(q="voirie") == {ids["voirie"]}  # objet
    assert await found(q="RUE DES Écoles") == {ids["voirie"]}  # case-insensitive (accents: on PostgreSQL)
    assert await found(q="DELIB_2026") == {ids["budget"], ids["cantine"]}  # numéro interne
    assert await found(q="PES_AR_0042") == {ids["pes"]}  # NomFic / file name
    assert await found(q="cantine.pdf") == {ids["cantine"]}  # file name
    assert await found(q="100%") == set()  # LIKE wildcards are literal
    assert await found(flow="helios") == {ids["pes"]}
    assert await found(state="error") == {ids["voirie"], ids["cantine"], ids["pes"]}
    assert await found(state="error", flow="actes", siren=SIREN_A) == {ids["voirie"], ids["cantine"]}
    assert await found(du="2026-03-15", au="2026-04-01") == {ids["voirie"], ids["cantine"]}
    assert await found(au="2026-03-02") == {ids["budget"]}


async def test_documents_are_paginated(operator: httpx.AsyncClient, seeded: Seeded,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "PER_PAGE", 3)
    first = await operator.get("/console/documents")
    assert "page 1 / 2" in first.text and 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = await operator.get("/console/documents", params={"page": 2})
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
    assert len(listed(first.text)) == 3 and len(listed(second.text)) == 1
    assert listed(first.text) | listed(second.text) == {seeded.ids[k] for k in ("budget", "voirie", "cantine", "pes")}
    assert listed((await operator.get("/console/documents", params={"page": 3})).text) == set()


def test_the_session_secret_is_kept_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMATBUS_CONSOLE_SECRET", raising=False)
    first = load_secret(tmp_path)
    assert len(first) >= 32 and load_secret(tmp_path) == first
    assert (tmp_path / "console-secret").stat().st_mode & 0o077 == 0
    monkeypatch.setenv("DEMATBUS_CONSOLE_SECRET", "from-the-environment")
    assert load_secret(tmp_path) == "from-the-environment"


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"siren": SIREN_B}, 403, "siren_out_of_scope"),
    ({"du": "2026-13-01"}, 422, "invalid_request"),
    ({"du": "2026-04-02", "au": "2026-04-01"}, 422, "invalid_period"),
    ({"state": "lost"}, 422, "unknown_state"),
    ({"flow": "fax"}, 422, "unknown_flow"),
    ({"page": "0"}, 422, "invalid_request"),
])
async def test_bad_filters_are_clear_4xx(operator: httpx.AsyncClient, params: dict[str, str], status: int,
                                         code: str) -> None:
    resp = await operator.get("/console/documents", params=params)
    assert resp.status_code == status and resp.headers["x-error-code"] == code
    assert f'data-error-code="{code}"' in resp.text


async def test_other_collectivites_documents_look_missing(operator: httpx.AsyncClient, seeded: Seeded) -> None:
    resp = await operator.get(f"/console/documents/{seeded.ids['other']}")
    assert resp.status_code == 404 and resp.headers["x-error-code"] == "document_not_found"


async def test_document_page_shows_timeline_files_and_replay(operator: httpx.AsyncClient, seeded: Seeded) -> None:
    page = await operator.get(f"/console/documents/{seeded.ids['voirie']}")
    assert page.status_code == 200
    assert "stage.failed" in page.text and "voirie.pdf" in page.text and 'id="replay"' in page.text
    archived = await operator.get(f"/console/documents/{seeded.ids['budget']}")
    assert 'id="replay"' not in archived.text


async def test_errors_inbox_grouped_by_cause_and_filtered(operator: httpx.AsyncClient, seeded: Seeded) -> None:
    page = await operator.get("/console/erreurs")
    groups = re.findall(r'count-badge">(\d+)</span> (\w+) · (\w+) · <span class="cause">([^<]+)', page.text)
    assert [(int(n), flow, cause) for n, flow, _stage, cause in groups] == [
        (2, "actes", "S#low HTTP # on actes_transac_create.php"), (1, "helios", "certificate expired on #-#-#")]
    assert listed(page.text) == {seeded.ids["voirie"], seeded.ids["cantine"], seeded.ids["pes"]}
    only = await operator.get("/console/erreurs", params={"q": "certificate"})
    assert listed(only.text) == {seeded.ids["pes"]}
    assert listed((await operator.get("/console/erreurs", params={"flow": "actes"})).text) == {
        seeded.ids["voirie"], seeded.ids["cantine"]}


async def test_replay_needs_the_form_token_and_is_journaled_with_the_key_name(
        operator: httpx.AsyncClient, seeded: Seeded, store) -> None:  # type: ignore[no-untyped-def]
    doc_id = seeded.ids["voirie"]
    forged = await operator.post(f"/console/documents/{doc_id}/rejouer", data={"csrf": "guess"})
    assert forged.status_code == 403 and forged.headers["x-error-code"] == "invalid_csrf_token"
    assert await replays_journaled(store, doc_id) == []

    page = await operator.get(f"/console/documents/{doc_id}")
    done = await operator.post(f"/console/documents/{doc_id}/rejouer", data={"csrf": csrf(page.text)})
    assert done.status_code == 303 and done.headers["location"].endswith("?rejoue=1")
    [entry] = await replays_journaled(store, doc_id)
    assert entry.detail["by"] == "Opérateur A" and entry.detail["generation"] == 1

    archived = await operator.post(f"/console/documents/{seeded.ids['budget']}/rejouer", data={"csrf": csrf(page.text)})
    assert archived.status_code == 409 and archived.headers["x-error-code"] == "not_replayable"


async def test_bulk_replay_dry_run_then_confirm(operator: httpx.AsyncClient, seeded: Seeded,
                                                store) -> None:  # type: ignore[no-untyped-def]
    targets = {seeded.ids["voirie"], seeded.ids["cantine"]}
    dry = await operator.get("/console/erreurs/rejouer", params={"q": "HTTP"})
    assert dry.status_code == 200 and "2 document(s) seraient rejoué(s)" in dry.text
    assert set(re.findall(r'name="ids" value="([^"]+)"', dry.text)) == targets
    for doc_id in targets:
        assert await replays_journaled(store, doc_id) == []  # a dry run changes nothing

    ids = [*sorted(targets), seeded.ids["other"]]  # a document of another collectivité slipped in
    done = await operator.post("/console/erreurs/rejouer", data={"csrf": csrf(dry.text), "ids": ids})
    assert done.status_code == 200 and "2 document(s) rejoué(s)" in done.text
    assert "1 document(s) non rejoué(s)" in done.text
    for doc_id in targets:
        assert [e.detail["by"] for e in await replays_journaled(store, doc_id)] == ["Opérateur A"]
    assert await replays_journaled(store, seeded.ids["other"]) == []
    assert await replays_journaled(store, seeded.ids["pes"]) == []


async def test_manager_sees_dashboard_and_report_only(client: httpx.AsyncClient, seeded: Seeded, store) -> None:  # type: ignore[no-untyped-def]
    resp = await login(client, seeded.keys["reporter_a"])
    assert resp.headers["location"] == "/console/tableau-de-bord"
    for path in ("/console/documents", "/console/erreurs", f"/console/documents/{seeded.ids['voirie']}"):
        refused = await client.get(path)
        assert refused.status_code == 403 and refused.headers["x-error-code"] == "forbidden_role"
    board = await client.get("/console/tableau-de-bord", params={"year": 2026})
    assert board.status_code == 200 and board.text.count("<svg") == 3
    assert "Commune A (210600235)" in board.text and "Commune B" not in board.text

    expected = await volumes(store, year=2026, sirens=[SIREN_A])
    report_csv = await client.get("/console/rapport", params={"year": 2026, "format": "csv"})
    assert report_csv.status_code == 200 and report_csv.text == expected.to_csv()
    rows = list(csv.DictReader(io.StringIO(report_csv.text.split("\n\n")[0])))
    assert sum(int(r["deposited"]) for r in rows) == 4 and {r["siren"] for r in rows} == {SIREN_A}
    report_json = (await client.get("/console/rapport", params={"year": 2026, "format": "json"})).json()
    assert report_json["totals"]["total"] == expected.to_json()["totals"]["total"]
    printable = await client.get("/console/rapport", params={"year": 2026})
    assert printable.status_code == 200 and "Volumes 2026" in printable.text and "format=csv" in printable.text
    bad = await client.get("/console/rapport", params={"year": 1900})
    assert bad.status_code == 422 and bad.headers["x-error-code"] == "invalid_request"


async def test_annulation_button_shows_on_acknowledged_actes_only(operator: httpx.AsyncClient, seeded: Seeded,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The button shows on an archived acte, not on one in error; the bus's request_annulation
    is called with the key's name and scope, and its refusals become error pages."""
    archived = seeded.ids["budget"]
    in_error = await operator.get(f"/console/documents/{seeded.ids['voirie']}")
    assert 'id="annul"' not in in_error.text
    refused = await operator.post(f"/console/documents/{seeded.ids['voirie']}/annuler",
                                  data={"csrf": csrf(in_error.text)})
    assert refused.status_code == 409 and refused.headers["x-error-code"] == "not_cancellable"

    calls = []

    async def request_annulation(store, document_id, actor, *, scope=None):  # type: ignore[no-untyped-def]
        calls.append((document_id, actor, list(scope or [])))
        if len(calls) > 1:
            raise AnnulationRefused(409, "annulation_pending", "Une annulation est déjà en cours")

    monkeypatch.setattr(annulation, "request_annulation", request_annulation)
    page = await operator.get(f"/console/documents/{archived}")
    assert 'id="annul"' in page.text
    done = await operator.post(f"/console/documents/{archived}/annuler", data={"csrf": csrf(page.text)})
    assert done.status_code == 303 and calls == [(archived, "Opérateur A", [SIREN_A])]
    again = await operator.post(f"/console/documents/{archived}/annuler", data={"csrf": csrf(page.text)})
    assert again.status_code == 409 and again.headers["x-error-code"] == "annulation_pending"
