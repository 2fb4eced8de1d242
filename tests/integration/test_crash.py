"""Invariants 1 and 2 under a crash: the worker is SIGKILLed while documents are in flight, some of
them in the middle of a slow call to S²low (the effect made, the answer not yet back). After a
restart, every uncertain submission is resolved with what the real S²low offers (a second create is
refused — same numéro interne, same PES bytes — and S²low's listings find the first): every
document reaches its terminal state, none is left in error, and the simulators count zero
duplicate transmissions and zero duplicate archive transfers."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from tests.integration.conftest import TERMINAL, Bus, start_bus
from tests.integration.test_helios_pipeline import PES_SIREN, deposit_pes, unsigned_sample

SIREN = "214400152"
ACTES = 12
PES = 6
BEFORE_SUBMITTED = {"deposited", "signing", "signed", "transmitting"}


def kill_mid_flight(bus: Bus, siren: str, ids: list[str], made: Callable[[], int]) -> None:
    """SIGKILL the worker at a moment S²low has made more transmissions than documents went past
    `transmitting`: at least one submission is uncertain (made, its answer still on the wire)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        transmissions = made()  # read first: the documents can only have moved on since
        past = sum(bus.get(siren, i)["state"] not in BEFORE_SUBMITTED for i in ids)
        if transmissions > past:
            bus.stack.kill("worker")
            break
        time.sleep(0.05)
    else:
        raise AssertionError("no submission was ever on the wire")
    in_flight = [bus.get(siren, i)["state"] for i in ids]
    assert any(s not in TERMINAL for s in in_flight), "the kill came too late to prove anything"


def test_worker_killed_mid_flight_loses_nothing_and_sends_nothing_twice(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bus = start_bus(tmp_path)
    try:
        # Slow TdT: the kill lands while create calls are on the wire.
        bus.sims.post("/s2low/_admin/faults", json={"slow_seconds": 1.0, "endpoint": "actes_transac_create.php"})
        ids = [bus.deposit(SIREN, f"CRASH_{i:02d}")["id"] for i in range(ACTES)]
        kill_mid_flight(bus, SIREN, ids, lambda: len(bus.sims.get("/s2low/_admin/transmissions").json()["transactions"]))

        bus.sims.delete("/s2low/_admin/faults")
        bus.stack.start_worker()
        docs = [bus.wait(SIREN, i, timeout=120) for i in ids]
        assert [d["state"] for d in docs] == ["archived"] * ACTES, [(d["id"], d["state"], d["reason"]) for d in docs]
        assert len({d["replies"]["id_acte"] for d in docs}) == ACTES

        transmissions = bus.sims.get("/s2low/_admin/transmissions").json()
        assert transmissions["duplicates"] == 0
        assert sorted(t["numero"] for t in transmissions["transactions"]) == [f"CRASH_{i:02d}" for i in range(ACTES)]
        # At least one create was on the wire at the kill: S²low refused it the second time, the
        # listing found it, and the acte went on without anyone stepping in.
        assert transmissions["duplicate_refusals"] >= 1, transmissions["duplicate_refusals"]
        transfers = bus.sims.get("/asalae/_admin/transfers").json()
        assert transfers["duplicates"] == 0
        assert len(transfers["transfers"]) == ACTES
    finally:
        bus.close()
        bus.stack.stop()


def test_worker_killed_during_slow_pes_imports(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bus = start_bus(tmp_path)
    try:
        bus.sims.post("/s2low/_admin/faults", json={"slow_seconds": 1.0, "endpoint": "helios_importer_fichier.php"})
        ids = [deposit_pes(bus, unsigned_sample(f"CRASH_PES_{i}"))["id"] for i in range(PES)]
        kill_mid_flight(bus, PES_SIREN, ids, lambda: len(bus.sims.get("/s2low/_admin/helios").json()["transactions"]))

        bus.sims.delete("/s2low/_admin/faults")
        bus.stack.start_worker()
        docs = [bus.wait(PES_SIREN, i, timeout=120) for i in ids]
        assert [d["state"] for d in docs] == ["archived"] * PES, [(d["id"], d["state"], d["reason"]) for d in docs]

        helios = bus.sims.get("/s2low/_admin/helios").json()
        assert helios["duplicates"] == 0  # no NomFic transmitted twice
        per_nom_fic = Counter(t["nom_fic"] for t in helios["transactions"])
        assert per_nom_fic == {f"CRASH_PES_{i}": 1 for i in range(PES)}
        assert {t["status"] for t in helios["transactions"]} == {4}
        assert helios["duplicate_refusals"] >= 1, helios["duplicate_refusals"]  # recovered through S²low's doublon
        assert len(bus.sims.get("/asalae/_admin/transfers").json()["transfers"]) == PES
    finally:
        bus.close()
        bus.stack.stop()
