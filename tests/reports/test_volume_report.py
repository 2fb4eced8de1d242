"""`dematbus report` and bus.reports: volumes computed from the journal match the seeded year."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from pathlib import Path

from reports_testlib import NAMES, SIREN_C, SIREN_D, YEAR, seed
from sqlalchemy import select
from typer.testing import CliRunner

from bus.cli import app as cli
from bus.reports import COLUMNS, OUTCOMES, fmt_int, volumes
from bus.store import journal
from bus.store.models import Document
from tests.conftest import SIREN_A, SIREN_B

runner = CliRunner()


async def invoke(*args: str):  # type: ignore[no-untyped-def]
    # The command runs its own event loop: give it a thread of its own.
    return await asyncio.to_thread(runner.invoke, cli, ["report", *args])


def parse_csv(text: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    rows_part, totals_part = text.split("\n\n", 1)
    return list(csv.DictReader(io.StringIO(rows_part))), list(csv.DictReader(io.StringIO(totals_part)))


async def test_cli_csv_matches_the_seeded_year_exactly(settings, store, keys) -> None:  # type: ignore[no-untyped-def]
    seeded = await seed(store, keys)
    result = await invoke("--year", str(YEAR), "--format", "csv", "--data-dir", str(settings.data_dir))
    assert result.exit_code == 0, result.output
    rows, totals = parse_csv(result.stdout)
    assert list(rows[0]) == ["siren", "name", "flow", "month", *COLUMNS]

    pairs = sorted(seeded.pairs())
    assert (SIREN_C, "helios") not in pairs and len(pairs) == 6  # A, B × 2 flows, C actes, D actes
    assert [(r["siren"], r["flow"], r["month"]) for r in rows] == [
        (s, f, f"{YEAR}-{m:02d}") for s, f in pairs for m in range(1, 13)]
    for r in rows:
        month = int(r["month"][5:])
        assert r["name"] == NAMES[r["siren"]]
        assert {s: int(r[s]) for s in OUTCOMES} == seeded.cell(r["siren"], r["flow"], month), r

    by_scope: dict[str, list[dict[str, str]]] = {}
    for t in totals:
        by_scope.setdefault(t["scope"], []).append(t)
    assert [(t["siren"], t["flow"]) for t in by_scope["collectivite"]] == pairs
    for t in by_scope["collectivite"]:
        assert t["name"] == NAMES[t["siren"]]
        assert {s: int(t[s]) for s in COLUMNS} == seeded.totals(t["siren"], t["flow"])
    assert [t["flow"] for t in by_scope["flow"]] == ["actes", "helios"]
    for t in by_scope["flow"]:
        assert {s: int(t[s]) for s in COLUMNS} == seeded.totals(flow=t["flow"])
    (grand,) = by_scope["total"]
    assert {s: int(grand[s]) for s in COLUMNS} == seeded.totals()
    # sanity of the seed itself: a real spread, with rejections, errors and signatures
    assert seeded.totals()["deposited"] > 100
    assert all(seeded.totals()[s] > 0 for s in ("signed", "rejected", "error", "archived"))


async def test_edge_cases_are_counted_by_hand(store, keys) -> None:  # type: ignore[no-untyped-def]
    await seed(store, keys)
    rep = await volumes(store, year=YEAR, sirens=[SIREN_D])
    months = {r.month: r.counts for r in rep.rows}
    nonzero = {m: {s: n for s, n in c.items() if n} for m, c in months.items() if any(c.values())}
    assert nonzero == {
        1: {"acknowledged": 1},                     # deposited in December of the year before
        2: {"deposited": 1, "transmitted": 1},      # 31 Jan 23:30 UTC = 1 Feb in Paris
        3: {"deposited": 1, "rejected": 1},         # rejected again in April: counted once, in March
        6: {"deposited": 1},                        # 30 June 23:59 Paris
        7: {"deposited": 1},                        # 1 July 00:00 Paris
    }                                               # 31 Dec 23:30 UTC: next year in Paris
    assert rep.total.counts["deposited"] == 4
    # the journal written by the seed is a real hash chain
    async with store.sessions() as session:
        ids = (await session.execute(select(Document.id).where(Document.siren == SIREN_D))).scalars().all()
        for doc_id in ids:
            assert (await journal.verify_chain(session, doc_id)).valid
    # the year before sees the December deposit, the year after the 31 December one
    before = await volumes(store, year=YEAR - 1, sirens=[SIREN_D])
    after = await volumes(store, year=YEAR + 1, sirens=[SIREN_D])
    assert before.total.counts["deposited"] == 1 and before.total.counts["acknowledged"] == 0
    assert after.total.counts["deposited"] == 1


async def test_filters_by_siren_and_flow(store, keys) -> None:  # type: ignore[no-untyped-def]
    seeded = await seed(store, keys)
    rep = await volumes(store, year=YEAR, sirens=[SIREN_A, SIREN_C], flow="actes")
    assert [(t.siren, t.flow) for t in rep.collectivite_totals] == sorted([(SIREN_A, "actes"), (SIREN_C, "actes")])
    expected = {s: seeded.totals(SIREN_A, "actes")[s] + seeded.totals(SIREN_C, "actes")[s] for s in COLUMNS}
    assert rep.total.counts == expected
    assert [t.flow for t in rep.flow_totals] == ["actes"]
    empty = await volumes(store, year=YEAR, sirens=[])
    assert empty.rows == [] and empty.total.counts == dict.fromkeys(COLUMNS, 0)
    nothing = await volumes(store, year=2030)
    assert nothing.rows == [] and "Aucun document" in nothing.to_html()


async def test_json_and_html_shapes(store, keys) -> None:  # type: ignore[no-untyped-def]
    seeded = await seed(store, keys)
    rep = await volumes(store, year=YEAR)
    data = json.loads(json.dumps(rep.to_json()))
    assert data["year"] == YEAR and data["states"] == list(OUTCOMES)
    assert data["totals"]["total"] == seeded.totals()
    assert len(data["rows"]) == 12 * len(seeded.pairs())

    page = rep.to_html()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 1 + 4  # overall + one per collectivité
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert not re.search(r"""(src|href)\s*=""", page, re.IGNORECASE)
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)  # no external resource
    for siren, name in NAMES.items():
        assert siren in page and (name.replace("'", "&#x27;") in page)
    assert f"<th class=\"n\">{fmt_int(seeded.totals()['deposited'])}</th>" in page
    for flow in ("actes", "helios"):
        assert fmt_int(seeded.totals(flow=flow)["acknowledged"]) in page


async def test_cli_writes_json_and_html_files(settings, store, keys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seeded = await seed(store, keys)
    out = tmp_path / "out" / "v.json"
    result = await invoke("--year", str(YEAR), "--format", "json", "--siren", SIREN_A, "--siren", SIREN_B,
                          "--flow", "helios", "--output", str(out), "--data-dir", str(settings.data_dir))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert {r["siren"] for r in data["rows"]} == {SIREN_A, SIREN_B}
    assert data["totals"]["total"] == {s: seeded.totals(SIREN_A, "helios")[s] + seeded.totals(SIREN_B, "helios")[s]
                                       for s in COLUMNS}
    html = tmp_path / "v.html"
    result = await invoke("--year", str(YEAR), "--format", "html", "--output", str(html),
                          "--data-dir", str(settings.data_dir))
    assert result.exit_code == 0 and "<svg" in html.read_text()
    csv_file = tmp_path / "v.csv"
    result = await invoke("--year", str(YEAR), "--output", str(csv_file), "--data-dir", str(settings.data_dir))
    assert result.exit_code == 0
    assert csv_file.read_bytes().startswith(b"\xef\xbb\xbfsiren,name,flow,month,")


async def test_cli_refuses_a_missing_store_and_an_unknown_flow(settings, store, keys, database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if database is None:  # a SQLite store is a file under the data dir; PostgreSQL has none to miss
        missing = await invoke("--year", str(YEAR), "--data-dir", str(tmp_path / "nowhere"))
        assert missing.exit_code == 1 and "no store" in missing.output
        assert not (tmp_path / "nowhere").exists()
    bad = await invoke("--year", str(YEAR), "--flow", "rh2", "--data-dir", str(settings.data_dir))
    assert bad.exit_code == 2 and "unknown flow" in bad.output
