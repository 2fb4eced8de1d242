"""The simulators' clock: wall time, or a frozen virtual time for byte-for-byte reproducible runs.

With ``frozen_at`` set, time only moves through :meth:`SimClock.advance` (admin endpoint
``POST /_admin/clock/advance {"seconds": n}``), so delays and XML timestamps are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class SimClock:
    frozen_at: datetime | None = None
    offset: float = 0.0

    def now(self) -> datetime:
        base = self.frozen_at if self.frozen_at is not None else datetime.now()
        return base + timedelta(seconds=self.offset)

    def timestamp(self) -> float:
        return self.now().timestamp()

    def advance(self, seconds: float) -> datetime:
        self.offset += seconds
        return self.now()
