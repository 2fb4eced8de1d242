"""GET /api/v1/reports/volumes: same numbers as the journal, scoped to the key, roles checked."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from reports_testlib import SIREN_C, SIREN_D, YEAR, seed

from bus.reports import COLUMNS, OUTCOMES
from connectors.inbound.api import create_app
from connectors.inbound.reports import router
from tests.conftest import SIREN_A, SIREN_B

PATH = "/api/v1/reports/volumes"


@pytest.fixture
async def client(settings, store):  # type: ignore[no-untyped-def]
    app = create_app(settings, store)
    if not any(getattr(r, "path", None) == PATH for r in app.routes):  # until create_app includes it
        app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def check_json(data, seeded, sirens) -> None:  # type: ignore[no-untyped-def]
    pairs = sorted(p for p in seeded.pairs() if p[0] in sirens)
    assert [(t["siren"], t["flow"]) for t in data["totals"]["collectivites"]] == pairs
    for r in data["rows"]:
        assert {s: r[s] for s in OUTCOMES} == seeded.cell(r["siren"], r["flow"], int(r["month"][5:]))
    assert len(data["rows"]) == 12 * len(pairs)
    for t in data["totals"]["collectivites"]:
        assert {s: t[s] for s in COLUMNS} == seeded.totals(t["siren"], t["flow"])
    expected = dict.fromkeys(COLUMNS, 0)
    for siren in sirens:
        for s, n in seeded.totals(siren).items():
            expected[s] += n
    assert data["totals"]["total"] == expected


async def test_json_equals_the_journal_for_every_scope(client, store, keys) -> None:  # type: ignore[no-untyped-def]
    seeded = await seed(store, keys)
    everyone = {SIREN_A, SIREN_B, SIREN_C, SIREN_D}
    for key, sirens in [("admin", everyone), ("reporter_all", everyone), ("reporter_a", {SIREN_A}),
                        ("operator_ab", {SIREN_A, SIREN_B}), ("reporter_c", {SIREN_C})]:
        resp = await client.get(PATH, params={"year": YEAR}, headers=auth(seeded.keys[key]))
        assert resp.status_code == 200, (key, resp.text)
        check_json(resp.json(), seeded, sirens)
    resp = await client.get(PATH, params=[("year", YEAR), ("siren", SIREN_B), ("flow", "helios")],
                            headers=auth(seeded.keys["operator_ab"]))
    assert resp.status_code == 200
    assert resp.json()["totals"]["total"] == seeded.totals(SIREN_B, "helios")
    assert resp.json()["filters"] == {"sirens": [SIREN_B], "flow": "helios", "group": None}


@pytest.mark.parametrize(("key", "params", "status", "code"), [
    ("a", {"year": YEAR}, 403, "forbidden_role"),                     # a depositor
    ("reporter_a", {"year": YEAR, "siren": SIREN_B}, 403, "siren_out_of_scope"),
    ("operator_ab", {"year": YEAR, "siren": SIREN_C}, 403, "siren_out_of_scope"),
    ("reporter_a", {"year": YEAR, "flow": "nope"}, 422, "unknown_flow"),
    ("reporter_a", {"year": 1789}, 422, "invalid_year"),
    ("reporter_a", {"year": YEAR, "format": "pdf"}, 422, "invalid_request"),
    (None, {"year": YEAR}, 401, "missing_api_key"),
])
async def test_refusals(client, store, keys, key, params, status, code) -> None:  # type: ignore[no-untyped-def]
    seeded = await seed(store, keys, documents=False)
    resp = await client.get(PATH, params=params, headers=auth(seeded.keys[key]) if key else {})
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code


async def test_a_refused_siren_among_allowed_ones_is_refused(client, store, keys) -> None:  # type: ignore[no-untyped-def]
    seeded = await seed(store, keys, documents=False)
    resp = await client.get(PATH, params=[("year", YEAR), ("siren", SIREN_A), ("siren", SIREN_D)],
                            headers=auth(seeded.keys["operator_ab"]))
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "siren_out_of_scope"


async def test_csv_and_html_formats(client, store, keys) -> None:  # type: ignore[no-untyped-def]
    seeded = await seed(store, keys)
    resp = await client.get(PATH, params={"year": YEAR, "format": "csv"}, headers=auth(seeded.keys["reporter_a"]))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert f'filename="volumes-{YEAR}.csv"' in resp.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text.split("\n\n")[0])))
    assert {r["siren"] for r in rows} == {SIREN_A}
    assert sum(int(r["deposited"]) for r in rows) == seeded.totals(SIREN_A)["deposited"]
    page = await client.get(PATH, params={"year": YEAR, "format": "html"}, headers=auth(seeded.keys["admin"]))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text and "Commune B" in page.text
