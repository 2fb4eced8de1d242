"""Issue 5, done means: 200 documents failed because the TdT was down; the TdT comes back; ONE bulk
replay; all 200 reach their terminal state; the simulator counts zero duplicate transmissions;
each replay is in the journal with the operator key's name."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.conftest import Bus, start_bus
from tests.integration.test_replay import dematbus

SIRENS = ("214400152", "210600235")
DOCS = 200
OPERATOR = "Opératrice Camille"


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    """The pipeline of the other integration tests, with a stage timeout that a loaded machine does
    not reach while 200 documents queue (the reconciler would re-drive them all: not this test's
    subject)."""
    bus = start_bus(tmp_path_factory.mktemp("bulk"), env={"DEMATBUS_STAGE_TIMEOUT": "120"})
    try:
        yield bus
    finally:
        bus.close()
        bus.stack.stop()


def states(bus: Bus, ids: list[tuple[str, str]]) -> Counter[str]:
    """One listing call per look (not one call per document: the poll must not load the bus)."""
    listed = bus.api.get("/api/v1/documents", params={"limit": 1000},
                         headers={"Authorization": f"Bearer {bus.keys['operator']}"}).json()["documents"]
    mine = {doc_id for _, doc_id in ids}
    return Counter(d["state"] for d in listed if d["id"] in mine)


def wait_all(bus: Bus, ids: list[tuple[str, str]], wanted: set[str], timeout: float) -> Counter[str]:
    deadline = time.monotonic() + timeout
    seen = states(bus, ids)
    while set(seen) - wanted and time.monotonic() < deadline:
        time.sleep(1.0)
        seen = states(bus, ids)
    return seen


@pytest.mark.timeout(900)
def test_tdt_down_200_documents_one_bulk_replay(bus: Bus) -> None:
    started = time.monotonic()
    timings: dict[str, float] = {}
    bus.sims.post("/s2low/_admin/faults", json={"fail_next": 1_000_000, "endpoint": "actes_transac_create.php"})
    try:
        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(lambda i: (SIRENS[i % 2], bus.deposit(SIRENS[i % 2], f"BULK_{i:04d}")["id"]),
                                range(DOCS)))
        timings["deposit"] = time.monotonic() - started
        failed = wait_all(bus, ids, {"error"}, timeout=600)
    finally:
        bus.sims.delete("/s2low/_admin/faults")  # the TdT is back
    assert failed == {"error": DOCS}, failed
    timings["all in error"] = time.monotonic() - started

    dry = dematbus(bus, "replay", "--reason", "HTTP 500", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{DOCS} document(s) would be replayed" in dry.stdout
    assert states(bus, ids) == {"error": DOCS}  # a dry run changes nothing

    replay = bus.api.post("/api/v1/replay", json={"reason_contains": "HTTP 500"},
                          headers={"Authorization": f"Bearer {bus.keys['operator']}"})
    assert replay.status_code == 200 and replay.json()["count"] == DOCS, replay.text

    replayed_at = time.monotonic()
    done = wait_all(bus, ids, {"archived"}, timeout=600)
    timings["replay to archived"] = time.monotonic() - replayed_at
    assert done == {"archived": DOCS}, done
    transmissions = bus.sims.get("/s2low/_admin/transmissions").json()
    assert transmissions["duplicates"] == 0
    per_numero = Counter(t["numero"] for t in transmissions["transactions"]
                         if t["type"] == 1 and t["numero"].startswith("BULK_"))
    assert len(per_numero) == DOCS and set(per_numero.values()) == {1}
    for siren, doc_id in ids:
        timeline = bus.get(siren, doc_id)["timeline"]
        requested = [e for e in timeline if e["event"] == "replay.requested"]
        assert len(requested) == 1 and requested[0]["detail"]["by"] == OPERATOR
        assert any(e["event"] == "replay" and e["detail"].get("by") == OPERATOR for e in timeline)
    print(f"bulk replay of {DOCS} documents: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
