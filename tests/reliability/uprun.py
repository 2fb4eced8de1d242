"""`dematbus up` as a user runs it, in a child process, with helpers to find its children."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bus.children import alive, descendants
from bus.embedded import free_port


@dataclass
class Up:
    proc: subprocess.Popen[str]
    data_dir: Path
    endpoints: dict[str, Any]

    def output(self) -> str:
        return (self.data_dir / "up.out").read_text(errors="replace")

    def children(self) -> dict[int, str]:
        """pid → command line of every live process below `dematbus up`."""
        found = {}
        for pid in descendants(self.proc.pid):
            try:
                found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
        return found

    def child(self, needle: str) -> int:
        matching = [pid for pid, cmd in self.children().items() if needle in cmd]
        assert len(matching) == 1, (needle, self.children())
        return matching[0]

    def ports(self) -> list[int]:
        urls = [self.endpoints["api"], *self.endpoints["workers"].values(),
                self.endpoints["simulators"]["s2low"].rsplit("/", 1)[0]]
        return [int(u.rsplit(":", 1)[1].split("/")[0]) for u in urls] + [int(self.endpoints["broker"].rsplit(":", 1)[1])]


@contextmanager
def running_up(data_dir: Path, env: dict[str, str], demo: bool = True) -> Iterator[Up]:
    """Starts `dematbus up`, waits for its endpoints.json and every worker's /healthz; stops it
    with Ctrl-C at the end (unless the test killed it)."""
    api_port, sim_port = free_port(), free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    out = open(data_dir / "up.out", "w")  # noqa: SIM115 - a file, not a pipe nobody reads while the test runs
    proc = subprocess.Popen(
        [sys.executable, "-m", "bus", "up", *(["--demo"] if demo else []), "--data-dir", str(data_dir),
         "--port", str(api_port), "--simulators-port", str(sim_port)],
        stdout=out, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env, "COLUMNS": "200"},
    )
    out.close()
    try:
        endpoints_file = data_dir / "endpoints.json"
        deadline = time.monotonic() + 120
        while not endpoints_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, (data_dir / "up.out").read_text()
            time.sleep(0.3)
        up = Up(proc, data_dir, json.loads(endpoints_file.read_text()))
        for url in up.endpoints["workers"].values():
            wait_answer(f"{url}/healthz", deadline=deadline)
        yield up
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_answer(url: str, deadline: float) -> httpx.Response:
    while True:
        try:
            resp = httpx.get(url, timeout=5)
            if resp.status_code == 200:
                return resp
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} never answered 200"
        time.sleep(0.3)


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still alive after `timeout` seconds (empty when all died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [pid for pid in pids if alive(pid)]
        if not left:
            return []
        time.sleep(0.2)
    return [pid for pid in pids if alive(pid)]


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return True
    return False


def listeners(port: int) -> list[int]:
    """The pids listening on 127.0.0.1:`port` (from /proc/net/tcp and the processes' fds)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    pids = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) in inodes for fd in fd_dir.iterdir()):
                pids.append(int(fd_dir.parent.name))
        except OSError:
            continue
    return pids


def started_after(pid: int, moment: float) -> bool:
    """Whether the process started after `moment` (time.time()): someone else's new server on
    a port the kernel handed out again, not one of ours that survived."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
    except (OSError, StopIteration, IndexError, ValueError):
        return False
    return boot + ticks / os.sysconf("SC_CLK_TCK") > moment
