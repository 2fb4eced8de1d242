"""Operators: the TdT was down, documents went to error; it comes back; one bulk replay; every
document reaches its terminal state, nothing is transmitted twice, the journal says who replayed."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.integration.conftest import Bus

SIREN = "214400152"
DOCS = 40


def dematbus(bus: Bus, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bus", *args, "--api", bus.stack.api_url, "--key", bus.keys["operator"]],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})


def test_tdt_down_then_back_bulk_replay_sends_each_acte_once(bus: Bus) -> None:
    bus.sims.post("/s2low/_admin/faults", json={"fail_next": 100_000, "endpoint": "actes_transac_create.php"})
    try:
        ids = [bus.deposit(SIREN, f"REPLAY_{i:03d}")["id"] for i in range(DOCS)]
        failed = [bus.wait(SIREN, i, timeout=180) for i in ids]
    finally:
        bus.sims.delete("/s2low/_admin/faults")
    assert {d["state"] for d in failed} == {"error"}

    inbox = dematbus(bus, "errors", "--siren", SIREN)
    assert inbox.returncode == 0, inbox.stderr
    assert "HTTP # on" in inbox.stdout and str(DOCS) in inbox.stdout  # one cause, DOCS documents

    dry = dematbus(bus, "replay", "--siren", SIREN, "--reason", "HTTP 500", "--dry-run")
    assert dry.returncode == 0 and f"{DOCS} document(s) would be replayed" in dry.stdout
    assert all(bus.get(SIREN, i)["state"] == "error" for i in ids)  # a dry run changes nothing

    done = dematbus(bus, "replay", "--siren", SIREN, "--reason", "HTTP 500")
    assert done.returncode == 0, done.stderr
    docs = [bus.wait(SIREN, i, timeout=240) for i in ids]
    assert [d["state"] for d in docs] == ["archived"] * DOCS, [(d["id"], d["state"], d["reason"]) for d in docs]
    for doc in docs:
        requested = [e for e in doc["timeline"] if e["event"] == "replay.requested"]
        assert requested and requested[0]["detail"]["by"] == "Opératrice Camille"
        assert doc["generation"] == 2
    transmissions = bus.sims.get("/s2low/_admin/transmissions").json()
    assert transmissions["duplicates"] == 0
    mine = [t for t in transmissions["transactions"] if t["numero"].startswith("REPLAY_")]
    assert len(mine) == DOCS

    again = bus.api.post(f"/api/v1/documents/{ids[0]}/replay", headers={"Authorization": f"Bearer {bus.keys['operator']}"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_replayable"
    depositor = bus.api.post("/api/v1/replay", json={"dry_run": True}, headers={"Authorization": f"Bearer {bus.keys[SIREN]}"})
    assert depositor.status_code == 403 and depositor.json()["error"]["code"] == "forbidden_role"
