"""Invariants 1 and 2 under a crash: the worker is SIGKILLed while actes are in flight (some of
them in the middle of a call to the TdT); after a restart every acte reaches a terminal state and
the simulators count zero duplicate transmissions and zero duplicate archive transfers."""

from __future__ import annotations

import time

from tests.integration.conftest import TERMINAL, start_bus

SIREN = "214400152"
ACTES = 12


def test_worker_killed_mid_flight_loses_nothing_and_sends_nothing_twice(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bus = start_bus(tmp_path)
    try:
        # Slow TdT: the kill lands while create calls are on the wire.
        bus.sims.post("/s2low/_admin/faults", json={"slow_seconds": 1.0, "endpoint": "actes_transac_create.php"})
        ids = [bus.deposit(SIREN, f"CRASH_{i:02d}")["id"] for i in range(ACTES)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            moving = [bus.get(SIREN, i)["state"] for i in ids]
            if "transmitting" in moving:
                break
            time.sleep(0.1)
        time.sleep(1.5)
        bus.stack.kill("worker")
        in_flight = [bus.get(SIREN, i)["state"] for i in ids]
        assert any(s not in TERMINAL for s in in_flight), "the kill came too late to prove anything"

        bus.sims.delete("/s2low/_admin/faults")
        bus.stack.start_worker()
        docs = [bus.wait(SIREN, i, timeout=120) for i in ids]
        assert [d["state"] for d in docs] == ["archived"] * ACTES, [(d["id"], d["state"], d["reason"]) for d in docs]
        assert len({d["replies"]["id_acte"] for d in docs}) == ACTES

        transmissions = bus.sims.get("/s2low/_admin/transmissions").json()
        assert transmissions["duplicates"] == 0
        assert sorted(t["numero"] for t in transmissions["transactions"]) == [f"CRASH_{i:02d}" for i in range(ACTES)]
        transfers = bus.sims.get("/asalae/_admin/transfers").json()
        assert transfers["duplicates"] == 0
        assert len(transfers["transfers"]) == ACTES
    finally:
        bus.close()
        bus.stack.stop()
