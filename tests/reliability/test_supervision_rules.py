"""The supervisor's restart rule and the chaos command's spellings (no process started)."""

from __future__ import annotations

import pytest

from bus.chaos.options import parse_duration, parse_faults, parse_kills
from bus.stack import MAX_BACKOFF, STABLE_AFTER, Supervised


def test_a_child_that_keeps_dying_is_restarted_later_and_later_then_at_once_once_stable() -> None:
    child = Supervised(("worker",), {}, started=0.0)
    delays = []
    now = 0.0
    for _ in range(8):  # dies a second after each start
        now += 1
        delays.append(child.died(now))
        now = child.restart_at or now
        child.started = now
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, MAX_BACKOFF, MAX_BACKOFF]
    assert child.died(now + STABLE_AFTER) == 0.0  # it had run a minute: at once again
    child.started = now + 100
    assert child.died(now + 101, expected=True) == 0.0  # killed on purpose / starting afresh


def test_chaos_spellings() -> None:
    assert parse_duration("15s") == 15 and parse_duration("2m") == 120 and parse_duration("500ms") == 0.5
    assert parse_faults("tdt=0.2,sae=0.1,parapheur=0.1") == {"tdt": 0.2, "sae": 0.1, "parapheur": 0.1}
    assert parse_kills("broker, worker,api,worker") == ("broker", "worker", "api")
    for bad in (lambda: parse_duration("soon"), lambda: parse_faults("tdt=2"), lambda: parse_faults("ftp=0.1"),
                lambda: parse_kills("simulators")):
        with pytest.raises(ValueError):
            bad()
