"""The whole bus on one machine: broker, simulators, API and worker as child processes.

Used by `dematbus up`, the benchmark, the chaos campaign and the integration tests (which kill and
restart the worker). Every child dies with this process, whatever kills it (bus.children), and
`supervise()` starts again whatever died: the embedded broker on the same port (empty: the
workers notice and redrive every open document from the store, bus.broker_epoch), the API, the
simulators, the workers.
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

from bus.broker_epoch import RESTART_AT_ONCE
from bus.children import spawn
from bus.config import Settings
from bus.embedded import EmbeddedBroker, free_port, wait_port
from bus.retry import RetryPolicy

STABLE_AFTER = 60.0  # a child that ran this long before dying is restarted at once
MAX_BACKOFF = 30.0  # a child that keeps dying is restarted at most this far apart
RESTARTS = RetryPolicy(initial_interval=1.0, maximum_interval=MAX_BACKOFF)  # after the first, immediate one


@dataclass
class Supervised:
    """How to start a child again, and how often it died lately."""

    args: tuple[str, ...]
    env: dict[str, str]
    started: float = field(default_factory=time.monotonic)
    failures: int = 0  # deaths in a row, each less than STABLE_AFTER after its start
    restart_at: float | None = None  # when a dead child is due to start again
    killed_on_purpose: bool = False  # by `crash()`: no backoff

    def died(self, now: float, expected: bool = False) -> float:
        """Note a death; returns the delay before the next start (0, then 1, 2, 4… s). An
        expected death (killed on purpose, or a worker starting afresh) restarts at once."""
        self.failures = 1 if expected or now - self.started >= STABLE_AFTER else self.failures + 1
        delay = 0.0 if self.failures == 1 else RESTARTS.delay(self.failures - 1)
        self.restart_at = now + delay
        return delay


@dataclass
class Stack:
    data_dir: Path
    api_port: int = 0
    simulators_port: int = 0
    env: dict[str, str] = field(default_factory=dict)  # extra DEMATBUS_* settings for the children
    broker: EmbeddedBroker | None = None
    bootstrap: str = ""
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)  # type: ignore[type-arg]
    worker_ports: dict[str, int] = field(default_factory=dict)  # worker name → its /metrics, /healthz, /readyz
    supervised: dict[str, Supervised] = field(default_factory=dict)
    stopping: bool = False

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
        self.supervised["broker"] = Supervised((), {})

    def spawn(self, name: str, *args: str, port: int | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen:  # type: ignore[type-arg]
        self.supervised[name] = Supervised(args, dict(env or {}))
        proc = self._start(name)
        if port is not None:
            wait_port("127.0.0.1", port, timeout=60, proc=proc)
        return proc

    def _start(self, name: str) -> subprocess.Popen:  # type: ignore[type-arg]
        child = self.supervised[name]
        proc = spawn([sys.executable, "-m", "bus", *child.args], env={**self.child_env(), **child.env},
                     log_path=self.data_dir / "logs" / f"{name}.log")
        child.started, child.restart_at = time.monotonic(), None
        self.procs[name] = proc
        return proc

    def start_simulators(self) -> None:
        self.spawn("simulators", "simulators", "--port", str(self.simulators_port), port=self.simulators_port)

    def start_api(self) -> None:
        self.spawn("api", "api", "--port", str(self.api_port), port=self.api_port)

    def start_worker(self, name: str = "worker") -> None:
        fixed = self.env.get("DEMATBUS_WORKER_METRICS_PORT")  # a caller's choice (one worker) wins
        port = self.worker_ports.setdefault(name, int(fixed) if fixed else free_port())
        self.spawn(name, "worker", env={"DEMATBUS_WORKER_METRICS_PORT": str(port)})

    def start_watcher(self) -> None:
        self.spawn("watcher", "watch")

    def start(self) -> None:
        self.start_broker()
        self.start_simulators()
        self.start_api()
        self.start_worker()
        self.start_watcher()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stop one child for good (it is no longer supervised)."""
        proc = self.procs.pop(name)
        self.supervised.pop(name, None)
        proc.send_signal(sig)
        proc.wait(30)

    def crash(self, name: str) -> int:
        """SIGKILL a child (or the embedded broker) as a crash would; `supervise()` starts it again
        at once. Returns the pid killed."""
        proc = self.broker.proc if name == "broker" and self.broker else self.procs[name]
        assert proc is not None
        self.supervised[name].killed_on_purpose = True
        proc.kill()
        proc.wait()
        return proc.pid

    def supervise(self) -> list[str]:
        """One round of supervision: start again every child (and the embedded broker) that died,
        at once the first time, then with a growing delay while it keeps dying. Returns what it
        saw and did, for the operator. Call it from the thread that started the stack."""
        if self.stopping:
            return []
        now, said = time.monotonic(), []
        if self.broker is not None and not self.broker.running:
            said += self._revive("broker", self.broker.proc.returncode if self.broker.proc else None, now)
        for name, proc in list(self.procs.items()):
            if proc.poll() is not None and name in self.supervised:
                said += self._revive(name, proc.returncode, now)
        return said

    def _revive(self, name: str, code: int | None, now: float) -> list[str]:
        child, said = self.supervised[name], []
        if child.restart_at is None:
            on_purpose, child.killed_on_purpose = child.killed_on_purpose, False
            delay = child.died(now, expected=on_purpose or code == RESTART_AT_ONCE)
            log = self.data_dir / "logs" / f"{name}.log"
            if not on_purpose:
                said.append(f"{name} exited with code {code}; restarting it"
                            + (f" in {delay:.0f} s" if delay else "") + f" (see {log})")
        if now < (child.restart_at or 0):
            return said
        try:
            if name == "broker" and self.broker is not None:
                said += self._stop_workers()
                self.broker.start()
                child.started, child.restart_at = time.monotonic(), None
                said.append(f"broker restarted on {self.broker.bootstrap} (empty: the workers redrive open documents)")
            else:
                self._start(name)
        except (OSError, RuntimeError, TimeoutError) as exc:
            said.append(f"{name} did not start again: {exc}; retrying in {child.died(time.monotonic()):.0f} s")
        return said

    def _stop_workers(self) -> list[str]:
        """Before an empty broker comes up: kill the workers (the supervision starts them again
        right after). A worker that lived through the restart would bring the old broker's
        offsets and buffered records to the new one, which Tansu may acknowledge and then never
        serve."""
        workers = [n for n, p in self.procs.items() if self.supervised[n].args[:1] == ("worker",) and p.poll() is None]
        for name in workers:
            self.supervised[name].killed_on_purpose = True
            self.procs[name].kill()
            self.procs[name].wait()
        return [f"{', '.join(workers)} stopped: they start again on the new broker"] if workers else []

    def stop(self) -> None:
        """SIGTERM every child (worker first), give them 15 s to finish, then the broker."""
        self.stopping = True
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
            "workers": {name: f"http://127.0.0.1:{port}" for name, port in self.worker_ports.items()},
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
