"""Scale-out: three workers form one consumer group; one is SIGKILLed mid-run. The partitions it
held move to the two others, every acte still finishes, and nothing is transmitted twice."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from bus.assignment import read_assignments
from bus.topics import EVENTS
from tests.integration.conftest import TERMINAL, Bus, start_bus

SIRENS = ["214400152", "210600235", "491011698"]  # no signature, PAdES, i-Parapheur
ACTES = 24


def _wait_assignment(bus: Bus, workers: int, timeout: float = 60) -> dict[int, dict[str, list[int]]]:
    """Wait until exactly `workers` live workers hold every partition of every topic, once."""
    partitions = bus.stack.settings.topic_partitions
    deadline = time.monotonic() + timeout
    while True:
        assignments = read_assignments(bus.stack.data_dir)
        owners: dict[str, list[int]] = defaultdict(list)
        for held in assignments.values():
            for topic, parts in held.items():
                if topic.startswith("dematbus."):  # not faust's own one-partition leader topic
                    owners[topic].extend(parts)
        complete = bool(owners) and all(sorted(parts) == list(range(partitions)) for parts in owners.values())
        if len(assignments) == workers and complete and EVENTS in owners:
            return assignments
        if time.monotonic() > deadline:
            pytest.fail(f"no complete assignment over {workers} workers after {timeout}s: {assignments}")
        time.sleep(0.5)


@pytest.mark.timeout(400)
def test_three_workers_one_killed_every_acte_finishes_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bus = start_bus(tmp_path)
    try:
        bus.stack.start_worker("worker-2")
        bus.stack.start_worker("worker-3")
        before = _wait_assignment(bus, 3)
        assert all(held for held in before.values()), "a worker of three got no partition at all"

        bus.sims.post("/s2low/_admin/faults", json={"slow_seconds": 0.5, "endpoint": "actes_transac_create.php"})
        ids = {bus.deposit(SIRENS[i % 3], f"SCALE_{i:02d}")["id"]: SIRENS[i % 3] for i in range(ACTES)}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if sum(bus.get(s, d)["state"] == "transmitting" for d, s in ids.items()) >= 2:
                break
            time.sleep(0.1)
        killed = bus.stack.procs["worker-2"].pid
        bus.stack.kill("worker-2")
        assert any(bus.get(s, d)["state"] not in TERMINAL for d, s in ids.items()), "the kill came too late"

        after = _wait_assignment(bus, 2, timeout=90)
        assert killed not in after
        bus.sims.delete("/s2low/_admin/faults")
        docs = [bus.wait(s, d, timeout=180) for d, s in ids.items()]
        assert [d["state"] for d in docs] == ["archived"] * ACTES, [(d["id"], d["state"], d["reason"]) for d in docs]

        transmissions = bus.sims.get("/s2low/_admin/transmissions").json()
        assert transmissions["duplicates"] == 0
        assert sorted(t["numero"] for t in transmissions["transactions"]) == [f"SCALE_{i:02d}" for i in range(ACTES)]
        transfers = bus.sims.get("/asalae/_admin/transfers").json()
        assert transfers["duplicates"] == 0 and len(transfers["transfers"]) == ACTES
    finally:
        bus.close()
        bus.stack.stop()
