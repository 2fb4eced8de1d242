"""Failed authentications, counted in the store so every API process sees the same count.

Each face (`api` for the REST v1 Bearer keys, `console` for its login form, `pastell`) counts the
failures of a client address in a fixed window of `window` seconds. The failure that reaches
`limit` locks the client out of that face for `lockout` seconds: every request from it then gets
429 with `Retry-After`, even with a good key, so a guessed key cannot be told from a wrong one. That
failure also writes an `auth_lockouts` row (the audit trail) and a warning in the log, neither of
which holds the key that was tried.

Checking costs one primary-key read, cached for `cache_seconds` when the client is not locked (a
lock decided by another process is seen within that delay; this process's own failures are seen at
once).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bus.store.db import Store
from bus.store.models import AuthLockout, AuthThrottle, utcnow

log = logging.getLogger(__name__)

FACES = ("api", "console", "pastell")


@dataclass
class Throttle:
    store: Store
    limit: int = 10
    window: float = 60.0
    lockout: float = 60.0
    cache_seconds: float = 1.0
    _unlocked: dict[tuple[str, str], float] = field(default_factory=dict)  # checked-free until (monotonic)

    async def retry_after(self, face: str, client: str) -> int | None:
        """Seconds until `client` may try `face` again, or None when it is not locked out."""
        now_mono = time.monotonic()
        if self._unlocked.get((face, client), 0.0) > now_mono:
            return None
        async with self.store.sessions() as session:
            locked_until = (await session.execute(
                select(AuthThrottle.locked_until).where(AuthThrottle.face == face, AuthThrottle.client == client)
            )).scalar_one_or_none()
        wait = _seconds_until(locked_until)
        if wait is None:
            if len(self._unlocked) > 100_000:  # bounded under a spray of addresses
                self._unlocked.clear()
            self._unlocked[(face, client)] = now_mono + self.cache_seconds
        return wait

    async def failed(self, face: str, client: str) -> int | None:
        """Count one failure; the seconds of lock-out when this client is (now) locked out."""
        self._unlocked.pop((face, client), None)
        now = utcnow()
        fresh = AuthThrottle.window_start > now - timedelta(seconds=self.window)
        failures = case((fresh, AuthThrottle.failures + 1), else_=1)
        locked_until = now + timedelta(seconds=self.lockout)
        async with self.store.transaction() as session:
            insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
            statement = insert(AuthThrottle).values(face=face, client=client[:100], failures=1, window_start=now,
                                                    locked_until=locked_until if self.limit <= 1 else None)
            statement = statement.on_conflict_do_update(
                index_elements=["face", "client"],
                set_={
                    "failures": failures,
                    "window_start": case((fresh, AuthThrottle.window_start), else_=now),
                    "locked_until": case((failures >= self.limit, locked_until), else_=AuthThrottle.locked_until),
                },
            ).returning(AuthThrottle.failures, AuthThrottle.locked_until)
            count, until = (await session.execute(statement)).one()
            if count == self.limit:  # the failure that crossed the limit: journal the lock-out once
                session.add(AuthLockout(at=now, face=face, client=client[:100], failures=count, locked_until=until))
                log.warning("authentication: %s locked out of %s for %.0f s after %d failures in %.0f s",
                            client, face, self.lockout, count, self.window)
        return _seconds_until(until)


def _seconds_until(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    left = (moment - utcnow()).total_seconds()
    return math.ceil(left) if left > 0 else None
