"""Simulator faults through their fault-injection admin endpoints (`/_admin/faults`).

At every tick each targeted simulator gets, with the campaign's probability, one fault episode
drawn among: two 500s (S²low and As@lae answer before doing anything; the i-Parapheur too), a
timeout (S²low and As@lae make the effect and hold the answer beyond the connector's timeout:
"did my request go through?"; the i-Parapheur holds, then answers 504) and slow answers for one
tick. Counts are added to what is left, so episodes pile up rather than overwrite each other; what
was actually consumed is read back at the end (requested minus left).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bus.chaos.options import FAULT_TARGETS

KINDS = ("http_500", "timeout", "slow")
SLOW_SECONDS = 1.5


@dataclass
class FaultEvent:
    at: float
    target: str  # tdt, sae, parapheur
    kind: str


@dataclass
class FaultInjector:
    simulators_url: str
    rates: dict[str, float]
    rng: random.Random
    hold_seconds: float  # how long a timeout holds the answer (S²low, As@lae)
    events: list[FaultEvent] = field(default_factory=list)
    requested: Counter[tuple[str, str]] = field(default_factory=Counter)
    _slow: set[str] = field(default_factory=set)

    def _fields(self, target: str) -> dict[str, str]:
        """The names of fail / timeout / slow in this simulator's fault model."""
        if FAULT_TARGETS[target] == "iparapheur":
            return {"http_500": "fail_next", "timeout": "timeout_next", "slow": "delay"}
        return {"http_500": "fail_next", "timeout": "timeout_next", "slow": "slow_seconds"}

    def _url(self, target: str) -> str:
        return f"{self.simulators_url}/{FAULT_TARGETS[target]}/_admin/faults"

    async def tick(self, client: httpx.AsyncClient, now: float) -> list[FaultEvent]:
        drawn = []
        for target, rate in sorted(self.rates.items()):
            fields = self._fields(target)
            changes: dict[str, Any] = {}
            if target in self._slow:  # a slow episode lasts one tick
                changes[fields["slow"]] = 0.0
                self._slow.discard(target)
            if rate > 0 and self.rng.random() < rate:
                kind = self.rng.choice(KINDS)
                current = (await client.get(self._url(target))).json()
                if kind == "http_500":
                    changes[fields["http_500"]] = current[fields["http_500"]] + 2
                    self.requested[(target, kind)] += 2
                elif kind == "timeout":
                    changes[fields["timeout"]] = current[fields["timeout"]] + 1
                    if "timeout_seconds" in current:
                        changes["timeout_seconds"] = self.hold_seconds
                    self.requested[(target, kind)] += 1
                else:
                    changes[fields["slow"]] = SLOW_SECONDS
                    self._slow.add(target)
                    self.requested[(target, kind)] += 1
                drawn.append(FaultEvent(round(now, 2), target, kind))
            if changes:
                (await client.post(self._url(target), json=changes)).raise_for_status()
        self.events += drawn
        return drawn

    async def calm(self, client: httpx.AsyncClient) -> dict[str, dict[str, int]]:
        """Stop every fault; returns what was consumed per target and kind."""
        consumed: dict[str, dict[str, int]] = {}
        for target in sorted(self.rates):
            fields = self._fields(target)
            left = (await client.get(self._url(target))).json()
            reset = {fields["http_500"]: 0, fields["timeout"]: 0, fields["slow"]: 0.0}
            (await client.post(self._url(target), json=reset)).raise_for_status()
            consumed[target] = {
                "http_500": self.requested[(target, "http_500")] - int(left[fields["http_500"]]),
                "timeout": self.requested[(target, "timeout")] - int(left[fields["timeout"]]),
                "slow_episodes": self.requested[(target, "slow")],
            }
        self._slow.clear()
        return consumed
