"""What a campaign does, and the parsing of its command-line spellings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KILLABLE = ("broker", "worker", "api")
FAULT_TARGETS = {"tdt": "s2low", "sae": "asalae", "parapheur": "iparapheur"}  # --faults name → simulator


@dataclass
class ChaosOptions:
    docs: int = 300
    mix: dict[str, float] = field(default_factory=lambda: {"actes": 0.5, "helios": 0.3, "rh": 0.2})
    kill_every: float = 15.0  # seconds between kills, on average (each gap drawn in [0.5, 1.5] of it)
    kills: tuple[str, ...] = KILLABLE
    faults: dict[str, float] = field(default_factory=lambda: {"tdt": 0.2, "sae": 0.1, "parapheur": 0.1})
    workers: int = 2
    concurrency: int = 8  # deposits in flight at once
    rate: float | None = 4.0  # deposits started per second (None: as fast as the API takes them)
    collectivites: int = 8
    seed: int = 1
    database_url: str | None = None
    drain_timeout: float = 900.0  # after the chaos, how long documents get to finish
    max_kills: int | None = None  # stop killing after this many (a bounded campaign for `make test`)


def parse_duration(text: str) -> float:
    """`15s`, `2m`, `500ms`, `1.5` (seconds) → seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (e.g. 15s, 2m, 500ms)")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def parse_faults(text: str) -> dict[str, float]:
    """`tdt=0.2,sae=0.1,parapheur=0.1` → the chance, at each fault tick, that the simulator gets
    a fault (500s, a timeout or slow answers)."""
    faults: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, rate = part.partition("=")
        if name not in FAULT_TARGETS:
            raise ValueError(f"unknown fault target {name!r}; known: {', '.join(FAULT_TARGETS)}")
        value = float(rate or 0)
        if not 0 <= value <= 1:
            raise ValueError(f"fault rate of {name} must be between 0 and 1, not {value}")
        faults[name] = value
    return faults


def parse_kills(text: str) -> tuple[str, ...]:
    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in KILLABLE]
    if unknown:
        raise ValueError(f"cannot kill {', '.join(unknown)}; choose among {', '.join(KILLABLE)}")
    return kinds
