"""Collectivité groups: managed by CLI and API; reports roll up over a group's members."""

from __future__ import annotations

import asyncio
import csv
import io

import httpx
import pytest
from reports_testlib import SIREN_C, YEAR, seed
from typer.testing import CliRunner

from bus.cli import app as cli
from bus.reports import COLUMNS, OUTCOMES
from connectors.inbound.api import create_app
from tests.conftest import SIREN_A, SIREN_B

runner = CliRunner()


async def dematbus(*args: str):  # type: ignore[no-untyped-def]
    return await asyncio.to_thread(runner.invoke, cli, list(args))


@pytest.fixture
async def client(settings, store):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, store)),
                                 base_url="http://test") as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def summed(seeded, *sirens: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    out = dict.fromkeys(COLUMNS, 0)
    for siren in sirens:
        for state, n in seeded.totals(siren).items():
            out[state] += n
    return out


async def test_report_rolls_up_over_a_group(settings, store, keys, client) -> None:  # type: ignore[no-untyped-def]
    seeded = await seed(store, keys)
    data_dir = str(settings.data_dir)
    made = await dematbus("collectivite", "group", "add", "sm-numerique", "--label", "Syndicat mixte",
                          "--member", SIREN_A, "--member", SIREN_B, "--data-dir", data_dir)
    assert made.exit_code == 0, made.output
    changed = await dematbus("collectivite", "group", "members", "sm-numerique", "--add", SIREN_C,
                             "--remove", SIREN_B, "--data-dir", data_dir)
    assert changed.exit_code == 0 and ", ".join(sorted([SIREN_A, SIREN_C])) in changed.output
    unknown = await dematbus("collectivite", "group", "members", "sm-numerique", "--add", "999999999",
                             "--data-dir", data_dir)
    assert unknown.exit_code == 2 and "unknown_collectivite" in unknown.output
    listed = await dematbus("collectivite", "group", "list", "--data-dir", data_dir)
    assert "sm-numerique" in listed.output and "Syndicat mixte" in listed.output

    csv_report = await dematbus("report", "--year", str(YEAR), "--group", "sm-numerique", "--format", "csv",
                                "--data-dir", data_dir)
    assert csv_report.exit_code == 0, csv_report.output
    totals = list(csv.DictReader(io.StringIO(csv_report.stdout.split("\n\n", 1)[1])))
    total = next(t for t in totals if t["scope"] == "total")
    assert {s: int(total[s]) for s in COLUMNS} == summed(seeded, SIREN_A, SIREN_C)
    assert {t["siren"] for t in totals if t["scope"] == "collectivite"} == {SIREN_A, SIREN_C}

    api = await client.get("/api/v1/reports/volumes", params={"year": YEAR, "group": "sm-numerique"},
                           headers=auth(seeded.keys["reporter_all"]))
    assert api.status_code == 200, api.text
    assert api.json()["totals"]["total"] == summed(seeded, SIREN_A, SIREN_C)
    assert api.json()["filters"]["group"] == "sm-numerique"
    # A key for A only cannot read the group's roll-up: C is outside its scope.
    scoped = await client.get("/api/v1/reports/volumes", params={"year": YEAR, "group": "sm-numerique"},
                              headers=auth(seeded.keys["reporter_a"]))
    assert scoped.status_code == 403 and scoped.json()["error"]["code"] == "siren_out_of_scope"
    missing = await client.get("/api/v1/reports/volumes", params={"year": YEAR, "group": "nope"},
                               headers=auth(seeded.keys["reporter_all"]))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "group_not_found"
    deleted = await dematbus("collectivite", "group", "delete", "sm-numerique", "--data-dir", data_dir)
    assert deleted.exit_code == 0
    gone = await dematbus("report", "--year", str(YEAR), "--group", "sm-numerique", "--data-dir", data_dir)
    assert gone.exit_code == 2 and "group" in gone.output


async def test_groups_api(store, keys, client) -> None:  # type: ignore[no-untyped-def]
    seeded = await seed(store, keys, documents=False)
    admin = auth(keys["admin"])
    made = await client.put("/api/v1/groups/cc-coeur-herault", headers=admin,
                            json={"label": "CC", "kind": "epci", "members": [SIREN_C]})
    assert made.status_code == 200 and made.json()["members"] == [SIREN_C]
    added = await client.post("/api/v1/groups/cc-coeur-herault/members", headers=admin, json={"add": [SIREN_A]})
    assert added.json()["members"] == sorted([SIREN_A, SIREN_C])
    # An operator for A and B sees only its own members, and cannot add C.
    operator = auth(seeded.keys["operator_ab"])
    seen = (await client.get("/api/v1/groups", headers=operator)).json()["groups"]
    assert [g for g in seen if g["name"] == "cc-coeur-herault"] == [
        {"name": "cc-coeur-herault", "label": "CC", "kind": "epci", "members": [SIREN_A]}]
    refused = await client.post("/api/v1/groups/cc-coeur-herault/members", headers=operator, json={"add": [SIREN_C]})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "siren_out_of_scope"
    bad = await client.put("/api/v1/groups/Bad Name", headers=admin, json={})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_group_name"
    depositor = await client.get("/api/v1/groups", headers=auth(keys["a"]))
    assert depositor.status_code == 403
    assert (await client.delete("/api/v1/groups/cc-coeur-herault", headers=admin)).status_code == 204
    assert (await client.get("/api/v1/groups/cc-coeur-herault", headers=admin)).status_code == 404
