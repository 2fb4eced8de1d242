"""The chaos monkey: SIGKILLs the broker, a worker or the API at seeded random moments.

Kinds come from a seeded shuffle of the enabled kinds, repeated, so every kind is hit as often as
the others; the gaps are drawn in [0.5, 1.5] × the mean interval. The stack's supervision starts
whatever was killed again (bus.stack), as `dematbus up` does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bus.stack import Stack


@dataclass(frozen=True)
class Kill:
    at: float  # seconds since the campaign started
    kind: str  # broker, worker, api
    target: str  # the child's name in the stack
    pid: int


class Monkey:
    def __init__(self, stack: Stack, kinds: tuple[str, ...], every: float, rng: random.Random,
                 workers: list[str], start: float = 0.0, max_kills: int | None = None) -> None:
        self.stack = stack
        self.kinds = kinds
        self.every = every
        self.rng = rng
        self.workers = workers
        self.max_kills = max_kills
        self.kills: list[Kill] = []
        self._queue: list[str] = []
        self._next_at = start + self._gap()

    def _gap(self) -> float:
        return self.every * self.rng.uniform(0.5, 1.5)

    def _next_kind(self) -> str:
        if not self._queue:
            self._queue = list(self.kinds)
            self.rng.shuffle(self._queue)
        return self._queue.pop(0)

    @property
    def exhausted(self) -> bool:
        return not self.kinds or (self.max_kills is not None and len(self.kills) >= self.max_kills)

    def maybe_strike(self, now: float) -> Kill | None:
        """Kill something if it is time to (and the target is running)."""
        if self.exhausted or now < self._next_at:
            return None
        kind = self._next_kind()
        target = {"broker": "broker", "api": "api"}.get(kind) or self.rng.choice(self.workers)
        self._next_at = now + self._gap()
        running = (self.stack.broker is not None and self.stack.broker.running) if target == "broker" else (
            target in self.stack.procs and self.stack.procs[target].poll() is None)
        if not running:  # still being restarted after an earlier kill: try this kind again next time
            self._queue.insert(0, kind)
            return None
        kill = Kill(round(now, 2), kind, target, self.stack.crash(target))
        self.kills.append(kill)
        return kill

    def counts(self) -> dict[str, int]:
        return {kind: sum(1 for k in self.kills if k.kind == kind) for kind in self.kinds}
