"""Children die with their parent on every exit path, including SIGKILL of `dematbus up` or of
the bench (nothing keeps its port for the next `make run`), and a worker stops on SIGTERM within
its grace period even when its broker is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bus.children import alive, descendants
from tests.integration.conftest import FAST, start_bus
from tests.reliability.uprun import listeners, port_free, running_up, started_after, wait_gone


def test_sigkill_of_up_leaves_no_child_and_frees_every_port(tmp_path: Path) -> None:
    with running_up(tmp_path, FAST, demo=False) as up:
        children = up.children()
        kinds = " ".join(children.values())
        assert all(k in kinds for k in ("tansu", "bus simulators", "bus api", "bus worker", "bus watch")), kinds
        ports = up.ports()
        assert not any(port_free(p) for p in ports)
        killed_at = time.time()
        up.proc.kill()
        up.proc.wait()
        survivors = wait_gone(list(children), timeout=30)
    assert survivors == [], {pid: children[pid] for pid in survivors}
    # Free, or taken since by another process of this busy machine (the kernel hands freed
    # ephemeral ports out again), never held by something `up` had started.
    held = {p: listeners(p) for p in ports if not port_free(p)}
    assert all(pids and all(started_after(pid, killed_at) for pid in pids) for pids in held.values()), held


def test_sigkill_of_the_bench_leaves_no_child(tmp_path: Path) -> None:
    bench = subprocess.Popen([sys.executable, "-m", "bus", "bench", "--docs", "400", "--no-ceilings"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
                             env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + 120
        children: list[int] = []
        while time.monotonic() < deadline:  # until the private stack runs its worker
            children = descendants(bench.pid)
            cmds = " ".join(_cmdline(pid) for pid in children)
            if "bus worker" in cmds and "bus api" in cmds:
                break
            assert bench.poll() is None, "the bench ended before its stack was up"
            time.sleep(0.3)
        children = descendants(bench.pid)
        bench.kill()
        bench.wait()
        survivors = wait_gone(children, timeout=30)
        assert survivors == [], {pid: _cmdline(pid) for pid in survivors}
    finally:
        if bench.poll() is None:
            bench.kill()


def test_a_worker_stops_on_sigterm_within_its_grace_even_without_broker(tmp_path: Path) -> None:
    bus = start_bus(tmp_path, env={"DEMATBUS_SHUTDOWN_GRACE": "3"})
    try:
        bus.stack.wait_workers(1)
        worker = bus.stack.procs["worker"]
        assert bus.stack.broker is not None and bus.stack.broker.proc is not None
        bus.stack.broker.proc.kill()  # a clean faust stop would now wait for the broker forever
        bus.stack.broker.proc.wait()
        time.sleep(1)
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        stopped_in = time.monotonic() - started
        assert worker.returncode == 0
        assert stopped_in < 3 + 5, f"the worker took {stopped_in:.1f} s to stop"
    finally:
        bus.close()
        bus.stack.stop()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "" if not alive(pid) else "?"


def test_the_seal_pool_dies_with_a_killed_worker(tmp_path: Path) -> None:
    """The payslip seal runs in a process pool of the worker: SIGKILL the worker, the pool goes."""
    script = ("import os, time\n"
              "from connectors.signature.seal import _pool\n"
              "print(_pool().submit(os.getpid).result(), flush=True)\n"
              "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip().isdigit()
        pool = descendants(proc.pid)
        assert pool, "the pool started no process"
        proc.kill()
        proc.wait()
        assert wait_gone(pool, timeout=20) == []
    finally:
        if proc.poll() is None:
            proc.kill()
