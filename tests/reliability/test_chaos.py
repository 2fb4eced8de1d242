"""A short chaos campaign, as `make test` runs it: a few hundred documents while workers, the API
and the broker are SIGKILLed (twice each) and the simulators answer 500s, time out and answer
slowly; then nothing acknowledged is lost, nothing was transmitted or archived twice (as the
simulators count), every error has a reason and every journal chain verifies.

The full campaign is `make chaos` (10 000 documents)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from xml.etree import ElementTree

from typer.testing import CliRunner

from bus.cli import app


def test_a_short_chaos_campaign_keeps_every_invariant(tmp_path: Path) -> None:
    report_file, chart_file = tmp_path / "chaos.json", tmp_path / "chaos.svg"
    database = os.environ.get("DEMATBUS_DATABASE_URL")  # the PostgreSQL pass: this test's database
    result = CliRunner().invoke(app, [
        "chaos", *(["--database-url", database] if database else []), "--docs", "200", "--rate", "4", "--kill-every", "8s", "--max-kills", "6",
        "--faults", "tdt=0.3,sae=0.2,parapheur=0.2", "--kill", "broker,worker,api", "--seed", "3",
        "--drain-timeout", "6m", "--json", str(report_file), "--chart", str(chart_file),
    ], env={"COLUMNS": "200"})
    report = json.loads(report_file.read_text())
    verdict = report["verdict"]
    assert result.exit_code == 0, (result.output[-3000:], verdict)
    assert "every invariant holds" in result.output

    assert {k: report["kills"][k] for k in ("broker", "worker", "api")} == {"broker": 2, "worker": 2, "api": 2}
    assert report["deposits"]["acknowledged"] == 200 and report["deposits"]["refused"] == 0
    assert report["deposits"]["retries"] > 0  # deposits met a dead API and were retried with their key
    consumed = report["faults"]["consumed"]
    assert sum(c["http_500"] + c["timeout"] for c in consumed.values()) > 0
    assert verdict["lost"] == 0 and not any(verdict["duplicates"].values())
    assert verdict["errors"]["without_reason"] == 0 and verdict["journal"]["broken"] == []
    assert verdict["journal"]["chains_checked"] == 200
    assert sum(verdict["states"].values()) == 200

    svg = ElementTree.parse(chart_file).getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert len([e for e in svg.iter("{http://www.w3.org/2000/svg}line") if e.get("stroke-dasharray")]) == 6
