"""The whole bus on one machine: broker, simulators, API and worker as child processes.

Used by `dematbus up` and by the integration tests (which kill and restart the worker).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bus.config import Settings
from bus.embedded import EmbeddedBroker, free_port, wait_port


@dataclass
class Stack:
    data_dir: Path
    api_port: int = 0
    simulators_port: int = 0
    env: dict[str, str] = field(default_factory=dict)  # extra DEMATBUS_* settings for the children
    broker: EmbeddedBroker | None = None
    bootstrap: str = ""
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)  # type: ignore[type-arg]

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        self.api_port = self.api_port or free_port()
        self.simulators_port = self.simulators_port or free_port()

    @property
    def settings(self) -> Settings:
        """What the children see (their environment wins over this process's)."""
        url = self.env.get("DEMATBUS_DATABASE_URL")
        return Settings(data_dir=self.data_dir, **({"database_url": url} if url else {}))

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def simulators_url(self) -> str:
        return f"http://127.0.0.1:{self.simulators_port}"

    def child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()}
        env.update({
            "DEMATBUS_DATA_DIR": str(self.data_dir),
            "DEMATBUS_API_PORT": str(self.api_port),
            "DEMATBUS_SIMULATORS_PORT": str(self.simulators_port),
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "PYTHONUNBUFFERED": "1",
        })
        if self.broker is not None:
            env["DEMATBUS_REDRIVE_ON_START"] = "1"
        env.update(self.env)
        return env

    def start_broker(self) -> None:
        external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if external:
            self.bootstrap = external
            return
        self.broker = EmbeddedBroker(log_path=self.data_dir / "logs" / "broker.log")
        self.bootstrap = self.broker.start()

    def spawn(self, name: str, *args: str, port: int | None = None) -> subprocess.Popen:  # type: ignore[type-arg]
        log = open(self.data_dir / "logs" / f"{name}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bus", *args], env=self.child_env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        if port is not None:
            wait_port("127.0.0.1", port, timeout=60, proc=proc)
        return proc

    def start_simulators(self) -> None:
        self.spawn("simulators", "simulators", "--port", str(self.simulators_port), port=self.simulators_port)

    def start_api(self) -> None:
        self.spawn("api", "api", "--port", str(self.api_port), port=self.api_port)

    def start_worker(self, name: str = "worker") -> None:
        self.spawn(name, "worker")

    def start_watcher(self) -> None:
        self.spawn("watcher", "watch")

    def start(self) -> None:
        self.start_broker()
        self.start_simulators()
        self.start_api()
        self.start_worker()
        self.start_watcher()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(30)

    def stop(self) -> None:
        """SIGTERM every child (worker first), give them 15 s to finish, then the broker."""
        procs = [self.procs.pop(name) for name in list(reversed(self.procs))]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.broker:
            self.broker.stop()

    def write_endpoints(self, extra: dict[str, object] | None = None) -> Path:
        endpoints = {
            "api": self.api_url,
            "docs": f"{self.api_url}/docs",
            "simulators": {
                "s2low": f"{self.simulators_url}/s2low",
                "asalae": f"{self.simulators_url}/asalae",
                "iparapheur": f"{self.simulators_url}/iparapheur",
            },
            "broker": self.bootstrap,
            "data_dir": str(self.data_dir),
            **(extra or {}),
        }
        path = self.data_dir / "endpoints.json"
        path.write_text(json.dumps(endpoints, indent=2, ensure_ascii=False))
        return path

    def wait_workers(self, count: int, timeout: float = 60) -> None:
        """Wait until `count` live workers hold partitions (the consumer group has settled)."""
        from bus.assignment import read_assignments

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held = read_assignments(self.data_dir)
            if len(held) >= count and all(held.values()):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{count} workers did not join the consumer group within {timeout:.0f} s")

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.api_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError("API not healthy")
