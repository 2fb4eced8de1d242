"""`/healthz` and `/readyz` of the API and of a worker: ready when the whole pipeline can work,
503 naming what is wrong when the outbox is not published, no worker holds the group, or the
broker is gone."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from bus.health.checks import Check, blobs_check, group_check
from tests.integration.conftest import start_bus

SIREN = "214400152"


def readiness(url: str) -> tuple[int, dict[str, Any]]:
    resp = httpx.get(f"{url}/readyz", timeout=30)
    return resp.status_code, resp.json()


def wait_readiness(url: str, status: int, failing: str | None = None, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        code, body = readiness(url)
        if code == status and (failing is None or any(f.startswith(failing) for f in body["failing"])):
            return body
        assert time.monotonic() < deadline, (url, code, body)
        time.sleep(0.5)


def test_readiness_of_the_api_and_the_worker_names_what_is_wrong(tmp_path: Path) -> None:
    bus = start_bus(tmp_path, env={"DEMATBUS_READY_OUTBOX_LAG": "2"})
    api = bus.stack.api_url
    worker = f"http://127.0.0.1:{bus.stack.worker_ports['worker']}"
    try:
        assert httpx.get(f"{api}/healthz").json() == {"status": "alive"}
        body = wait_readiness(api, 200)
        assert set(body["checks"]) == {"store", "blobs", "outbox", "broker", "consumer_group"}
        body = wait_readiness(worker, 200)
        assert set(body["checks"]) == {"store", "blobs", "outbox", "broker", "consumer_group"}
        assert httpx.get(f"{worker}/healthz").status_code == 200
        assert "dematbus_outbox_pending" in httpx.get(f"{worker}/metrics").text

        # No worker: nobody publishes the outbox. (The embedded broker, Tansu 0.6, keeps a gone
        # member in the group forever, so the API's group check cannot see it here; Kafka can.)
        bus.stack.kill("worker", signal.SIGTERM)
        bus.deposit(SIREN, "READY_1")
        wait_readiness(api, 503, "outbox")

        bus.stack.start_worker()
        wait_readiness(api, 200)
        wait_readiness(worker, 200)
        assert bus.stack.broker is not None and bus.stack.broker.proc is not None
        bus.stack.broker.proc.kill()
        assert "broker" in wait_readiness(api, 503, "broker")["checks"]
        wait_readiness(worker, 503, "broker")
        assert httpx.get(f"{worker}/healthz").status_code == 200  # alive, only not ready
    finally:
        bus.close()
        bus.stack.stop()


def test_an_unwritable_blob_store_is_not_ready(tmp_path: Path) -> None:
    blocked = tmp_path / "blobs"
    blocked.write_text("a file where the blob directory should be")
    check = blobs_check(blocked)
    assert not check.ok and "not writable" in check.detail
    assert blobs_check(tmp_path / "fine").ok


def test_the_group_check_reads_a_describe_groups_answer() -> None:
    def answer(state: str, members: int) -> list[Any]:
        group = (0, "dematbus", state, "consumer", "faust", [(f"m{i}", "c", "h", b"", b"") for i in range(members)])
        return [SimpleNamespace(groups=[group])]

    assert group_check(answer("Stable", 2)) == Check("consumer_group", True, "2 worker(s), stable")
    assert not group_check(answer("Empty", 0)).ok and "no worker" in group_check(answer("Empty", 0)).detail
    assert "rebalancing" in group_check(answer("PreparingRebalance", 2)).detail
    assert not group_check([SimpleNamespace(groups=[])]).ok


def test_compose_probes_the_readiness_of_the_api_and_of_every_worker() -> None:
    import yaml

    services = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())["services"]
    assert "127.0.0.1:8000/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    port = services["worker"]["environment"]["DEMATBUS_WORKER_METRICS_PORT"]
    assert f"127.0.0.1:{port}/readyz" in " ".join(services["worker"]["healthcheck"]["test"])
    assert services["worker"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"]  # the anchor's settings are kept
