"""A broker the bus does not manage (`KAFKA_BOOTSTRAP_SERVERS`, as a Kafka cluster in production)
becomes unreachable for a while, then comes back having forgotten everything: deposits are still
accepted meanwhile, documents wait, then continue to `archived`, each effect made once.

Here the external broker is an embedded one the test starts and stops itself; the test's loop is
the supervisor (compose's `restart:`, systemd) that starts a worker again when it exits. The stage
timeout is beyond the test: the redrive comes from the workers noticing the broker forgot."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bus.embedded import EmbeddedBroker
from tests.integration.conftest import TERMINAL, Bus, start_bus

SIREN = "214400152"


def supervise_until(bus: Bus, ids: list[str], states: set[str], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        bus.stack.supervise()
        seen = {i: bus.get(SIREN, i)["state"] for i in ids}
        if set(seen.values()) <= states:
            break
        time.sleep(0.5)
    return seen


def test_documents_wait_for_an_external_broker_then_continue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "external-broker.log")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", broker.start())
    bus = start_bus(tmp_path / "bus", env={"DEMATBUS_STAGE_TIMEOUT": "900", "DEMATBUS_RECONCILE_INTERVAL": "900",
                                           "DEMATBUS_BROKER_LOST_AFTER": "6"})
    try:
        assert bus.stack.broker is None  # external: the stack does not manage it
        bus.stack.wait_workers(1)
        ids = [bus.deposit(SIREN, f"EXT_AVANT_{i}")["id"] for i in range(2)]
        broker.stop()
        ids += [bus.deposit(SIREN, f"EXT_PENDANT_{i}")["id"] for i in range(3)]  # the API needs no broker
        during = supervise_until(bus, ids, set(), timeout=15)  # nothing can finish: wait 15 s
        assert [during[i] for i in ids[2:]] == ["deposited"] * 3, during

        broker.start()  # same address, empty memory
        done = supervise_until(bus, ids, TERMINAL, timeout=150)
        assert list(done.values()) == ["archived"] * len(ids), (done, bus.diagnose(ids[-1]))
        assert bus.s2low_duplicates() == 0
        numeros = [t["numero"] for t in bus.sims.get("/s2low/_admin/transmissions").json()["transactions"]]
        assert sorted(numeros) == sorted({*numeros}) and len(numeros) == len(ids)
        transfers = bus.sims.get("/asalae/_admin/transfers").json()
        assert transfers["duplicates"] == 0 and len(transfers["transfers"]) == len(ids)
        worker_log = (bus.stack.data_dir / "logs" / "worker.log").read_text(errors="replace")
        assert "no answer from the broker" in worker_log and "has forgotten the stream" in worker_log
    finally:
        bus.close()
        bus.stack.stop()
        broker.stop()
