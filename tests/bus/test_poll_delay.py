"""Waiting effects are asked less and less often: a fresh TdT submission every poll interval, an
acte waiting days for its AR every few minutes, never faster than the interval nor slower than the cap."""

from __future__ import annotations

from bus.stages.runner import RunnerSettings, poll_delay


def test_polls_slow_down_with_the_wait_between_the_interval_and_the_cap() -> None:
    settings = RunnerSettings(poll_interval=1.0, poll_interval_max=300.0)
    assert poll_delay(0, settings) == 1.0
    assert poll_delay(5, settings) == 1.0
    assert poll_delay(60, settings) == 6.0
    assert poll_delay(3 * 86_400, settings) == 300.0
    delays = [poll_delay(t, settings) for t in range(0, 10_000, 50)]
    assert delays == sorted(delays)


def test_a_cap_below_the_interval_never_polls_faster_than_the_interval() -> None:
    assert poll_delay(10_000, RunnerSettings(poll_interval=2.0, poll_interval_max=0.5)) == 2.0
