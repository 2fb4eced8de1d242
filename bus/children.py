"""Child processes that die with their parent, on every exit path.

A supervisor that is SIGKILLed runs no clean-up code: without help its children (broker,
simulators, API, workers) would live on with parent 1 and keep their ports. Two guards:

- the parent-death signal (Linux `prctl(PR_SET_PDEATHSIG)`, set between fork and exec): the kernel
  signals the child the moment the thread that started it exits. The broker gets SIGKILL (it keeps
  nothing); our Python children get SIGTERM, so they stop cleanly (simulators write their state);
- a hard deadline in our Python children (`watch_parent`, called by `python -m bus`): once their
  parent is gone, they exit after `ORPHAN_GRACE` seconds even if their clean stop hangs (a worker
  whose broker is gone can wait forever for it).

The kernel ties the signal to the *thread* that forked: spawn children from a thread that lives
as long as they should (the main thread; never a short-lived helper thread).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

PARENT_ENV = "DEMATBUS_PARENT_PID"  # set for our Python children: the pid they must not outlive
ORPHAN_GRACE = 10.0  # seconds an orphaned child gets to stop cleanly before it exits hard
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with(parent_pid: int, sig: int) -> Callable[[], None]:
    prctl = _libc.prctl if _libc is not None else None  # looked up before fork: the child only calls it

    def preexec() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before the signal was armed
            os.kill(os.getpid(), sig)

    return preexec


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """In a process started by something else than `spawn` (a multiprocessing pool's worker):
    be signalled when the parent dies."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def spawn(args: Sequence[str], *, log_path: Path | None = None, env: dict[str, str] | None = None,
          death_signal: int = signal.SIGTERM) -> subprocess.Popen:  # type: ignore[type-arg]
    """Start `args` in its own session (Ctrl-C in the terminal reaches the supervisor only, which
    stops the children in order), signalled with `death_signal` when this thread exits."""
    out: IO[bytes] | int = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    env = dict(os.environ if env is None else env)
    env[PARENT_ENV] = str(os.getpid())
    try:
        return subprocess.Popen(list(args), env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_die_with(os.getpid(), death_signal))
    finally:
        if not isinstance(out, int):
            out.close()  # the child has its own copy


def watch_parent(grace: float = ORPHAN_GRACE, interval: float = 0.5) -> None:
    """In a child started by `spawn`: exit at most `grace` seconds after the parent is gone."""
    expected = os.environ.get(PARENT_ENV)
    if not expected or not expected.isdigit():
        return
    parent = int(expected)
    if os.getppid() != parent:  # inherited from an ancestor: this process was not started by `spawn`
        return

    def run() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            time.sleep(interval)
        log.critical("parent %d is gone and the clean stop took more than %.0f s: exiting", parent, grace)
        os._exit(70)

    threading.Thread(target=run, name="dematbus-parent-watch", daemon=True).start()


def stop_deadline(grace: float, code: int = 0) -> None:
    """Exit hard `grace` seconds from now unless the process has exited by then: bounds a clean
    stop that waits on something gone (a worker flushing to a broker that is down)."""
    def expire() -> None:
        log.warning("clean stop still running after %.0f s: exiting now", grace)
        logging.shutdown()
        os._exit(code)

    timer = threading.Timer(grace, expire)
    timer.daemon = True
    timer.start()


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (from /proc; empty where /proc is missing)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def terminate(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
