"""Requests per client address on the public registry: a token bucket per address, refilled at
`per_minute` tokens a minute. An exhausted address gets 429 with `Retry-After`.

The address is the TCP peer's: behind a reverse proxy, run uvicorn with `--proxy-headers` (and
`--forwarded-allow-ips`) so that it is the citizen's and not the proxy's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class RateLimiter:
    MAX_ADDRESSES = 100_000  # bounds memory under a spray of addresses

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(max(1, per_minute))
        self.rate = self.capacity / 60.0  # tokens per second
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)

    def hit(self, address: str) -> None:
        now = self.clock()
        tokens, at = self._buckets.get(address, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        if tokens < 1:
            self._buckets[address] = (tokens, now)
            raise RateLimited(max(1, math.ceil((1 - tokens) / self.rate)))
        if len(self._buckets) >= self.MAX_ADDRESSES and address not in self._buckets:
            self._buckets.clear()
        self._buckets[address] = (tokens - 1, now)
