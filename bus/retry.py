"""When to try again: one retry policy for failed calls, one poll schedule for pending remote states.

`RetryPolicy` follows Temporal's retry policy: the first retry waits `initial_interval`, each next
one `backoff_coefficient` times longer, never more than `maximum_interval`, and `maximum_attempts`
attempts in all (0: no limit). Stage effects, annulations, replies to the préfecture and webhook
deliveries use it, built from their settings (`from_settings`); so do the supervisor's restarts
(bus/stack.py) and the chaos campaign's client (bus/chaos/client.py).

`PollSchedule` paces the questions asked about an effect the remote side has not finished (an AR
from the préfecture, a PES_Acquit, a folder in the parapheur): the next poll comes after a delay
proportional to the effect's age, so the ages at which it is polled grow geometrically, from
`initial_interval` up to `maximum_interval` between two polls. With the defaults (1 s, ×2.5, 2 h)
an effect pending for an hour has been asked at most 10 times, one pending for a day at most 30
times, whatever the number of effects waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RetryPolicy:
    initial_interval: float = 1.0  # seconds before the first retry
    backoff_coefficient: float = 2.0
    maximum_interval: float = 60.0
    maximum_attempts: int = 0  # attempts in all, the first one included; 0 = unlimited

    def __post_init__(self) -> None:
        if self.initial_interval < 0 or self.maximum_interval < 0:
            raise ValueError("retry intervals cannot be negative")
        if self.backoff_coefficient < 1:
            raise ValueError("the backoff coefficient must be at least 1")
        if self.maximum_attempts < 0:
            raise ValueError("maximum_attempts must be 0 (unlimited) or more")

    @classmethod
    def from_settings(cls, settings: Any, prefix: str = "") -> RetryPolicy:
        """From `<prefix>retry_backoff`, `<prefix>retry_backoff_max` and `<prefix>max_attempts` of
        `settings` (bus.config.Settings, bus.stages.runner.RunnerSettings): prefix "" for the
        stages, "webhook_" for the webhook deliveries."""
        return cls(initial_interval=getattr(settings, f"{prefix}retry_backoff"),
                   maximum_interval=getattr(settings, f"{prefix}retry_backoff_max"),
                   maximum_attempts=getattr(settings, f"{prefix}max_attempts"))

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th attempt failed (1: `initial_interval`)."""
        return min(self.initial_interval * self.backoff_coefficient ** max(attempts - 1, 0), self.maximum_interval)

    def exhausted(self, attempts: int) -> bool:
        """True when `attempts` attempts have been made and no other may follow."""
        return 0 < self.maximum_attempts <= attempts


@dataclass(frozen=True)
class PollSchedule:
    initial_interval: float = 1.0  # the first polls of a fresh submission
    backoff_coefficient: float = 2.5  # each poll comes at an age this many times the previous one
    maximum_interval: float = 7200.0  # the slowest polls, for effects that wait for days
    error_interval: float = 1.0  # after a poll that failed (the remote side did not answer)

    def __post_init__(self) -> None:
        if self.initial_interval <= 0:
            raise ValueError("the poll interval must be positive")
        if self.backoff_coefficient < 1:
            raise ValueError("the backoff coefficient must be at least 1")

    @classmethod
    def from_settings(cls, settings: Any) -> PollSchedule:
        """From `poll_interval`, `poll_interval_max` and `retry_backoff` of `settings`
        (bus.config.Settings, bus.stages.runner.RunnerSettings)."""
        return cls(initial_interval=settings.poll_interval, maximum_interval=settings.poll_interval_max,
                   error_interval=max(settings.poll_interval, settings.retry_backoff))

    def delay(self, age: float) -> float:
        """Seconds until the next poll of an effect pending for `age` seconds: never less than
        `initial_interval`, never more than `maximum_interval` (unless that is below the interval)."""
        grown = max(self.initial_interval, age * (self.backoff_coefficient - 1))
        return min(grown, max(self.initial_interval, self.maximum_interval))
