"""What a newcomer types: `dematbus up --demo`, then `dematbus deposit` and `dematbus status`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx

from bus.embedded import free_port
from connectors.signature.pdf import make_pdf
from tests.integration.conftest import FAST, Bus


def dematbus(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bus", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_deposit_and_status_from_the_command_line(bus: Bus, tmp_path: Path) -> None:
    siren = "214400152"
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"nature": 1, "numero_interne": "CLI_001", "date_decision": date.today().isoformat(),
                                "objet": "Délibération déposée en ligne de commande", "classification": "1.1"}))
    pdf = tmp_path / "deliberation.pdf"
    pdf.write_bytes(make_pdf("Délibération", ["CLI"]))
    annexe = tmp_path / "annexe.pdf"
    annexe.write_bytes(make_pdf("Annexe", ["plan"]))
    common = ["--api", bus.stack.api_url, "--key", bus.keys[siren]]
    created = dematbus("deposit", "--flow", "actes", "--siren", siren, "--meta", str(meta), "--file", str(pdf),
                       "--annex", str(annexe), *common)
    assert created.returncode == 0, created.stderr
    doc = json.loads(created.stdout)
    assert doc["state"] == "deposited" and [f["role"] for f in doc["files"]] == ["document", "annexe"]
    followed = dematbus("status", doc["id"], "--watch", "--json", *common)
    assert followed.returncode == 0, followed.stderr
    assert json.loads(followed.stdout)["state"] == "archived"
    table = dematbus("status", doc["id"], *common)
    assert "acknowledged" in table.stdout and "archived" in table.stdout

    refused = dematbus("deposit", "--flow", "actes", "--siren", siren, "--meta", str(meta), "--file", str(pdf), *common)
    # Same numéro interne: refused at the door, as S²low would refuse it.
    assert refused.returncode == 1 and "409 duplicate_numero_interne" in refused.stderr
    wrong_key = dematbus("status", doc["id"], "--api", bus.stack.api_url, "--key", "dmb_x_y")
    assert wrong_key.returncode == 1 and "invalid_api_key" in wrong_key.stderr


def run_up(tmp_path: Path, kill_worker: bool = False) -> tuple[dict, list[dict], str]:  # type: ignore[type-arg]
    """`dematbus up --demo` until its demo actes are archived (after SIGKILLing the worker once,
    when asked); then Ctrl-C. Returns what it showed."""
    api_port, sim_port = free_port(), free_port()
    (tmp_path / "endpoints.json").unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bus", "up", "--demo", "--data-dir", str(tmp_path), "--port", str(api_port),
         "--simulators-port", str(sim_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **FAST, "COLUMNS": "200"},
    )
    try:
        endpoints_file = tmp_path / "endpoints.json"
        deadline = time.monotonic() + 90
        while not endpoints_file.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.5)
        endpoints = json.loads(endpoints_file.read_text())
        assert endpoints["api"] == f"http://127.0.0.1:{api_port}"
        assert set(endpoints["simulators"]) == {"s2low", "asalae", "iparapheur"}
        assert len(endpoints["demo"]) == 3
        demo = endpoints["demo"][0]
        headers = {"Authorization": f"Bearer {demo['api_key']}"}
        if kill_worker:
            os.kill(_worker_pid(tmp_path), signal.SIGKILL)
        entites = httpx.get(f"{demo['pastell_url']}/entite", auth=("apikey", demo["api_key"])).json()
        assert [(e["id_e"], e["siren"]) for e in entites] == [(demo["id_e"], demo["siren"])]
        deadline = time.monotonic() + 90
        states: list[str] = []
        while time.monotonic() < deadline:
            docs = httpx.get(f"{endpoints['api']}/api/v1/documents", headers=headers).json()["documents"]
            states = [d["state"] for d in docs]
            if states and all(s == "archived" for s in states):
                break
            time.sleep(0.5)
        assert states and all(s == "archived" for s in states), states
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "dematbus is running" in out and "dematbus stopped" in out
    # Nothing is left running: the ports are free again.
    for port in (api_port, sim_port):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            raise AssertionError(f"port {port} still answers after stop")
        except httpx.ConnectError:
            pass
    return endpoints, docs, out


def _worker_pid(data_dir: Path, timeout: float = 60) -> int:
    """The pid of the worker that holds partitions (it writes workers/worker-<pid>.json)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in (data_dir / "workers").glob("worker-*.json"):
            return int(json.loads(path.read_text())["pid"])
        time.sleep(0.2)
    raise AssertionError("no worker recorded its partitions")


def test_up_restarts_a_worker_that_died_and_its_documents_still_finish(tmp_path: Path) -> None:
    _, docs, out = run_up(tmp_path, kill_worker=True)
    assert docs and all(d["state"] == "archived" for d in docs)
    assert "worker exited with code -9; restarting it" in out


def test_up_demo_starts_everything_stops_cleanly_and_finds_its_documents_again(tmp_path: Path) -> None:
    first, docs, _ = run_up(tmp_path)
    assert len(first["demo"]) == 3 and docs
    again, docs_again, _ = run_up(tmp_path)
    assert [d["api_key"] for d in again["demo"]] == [d["api_key"] for d in first["demo"]]
    assert [d["id"] for d in docs_again] == [d["id"] for d in docs]  # no second batch of demo actes
