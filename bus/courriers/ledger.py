"""The effect mechanics of the préfecture replies and of the TdT polls, and nothing else: which
rows are due, the lease taken by compare-and-set on `next_at`, rescheduling and closing a reply in
the caller's transaction (the delays come from bus/retry.py, like the stage runners'). They are
the annulation runner's (bus/annulation.py), gathered here so that moving them onto the bus's
durable-effect primitive is a change of this module only; bus/courriers/replies.py and collect.py
say what to do with a claimed row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bus.courriers.rules import OPEN
from bus.store.db import Store
from bus.store.models import PrefecturePoll, PrefectureReply, utcnow

SENDING = ("intent", "retry")  # not at the TdT yet, as far as we know


@dataclass(frozen=True)
class Claimed:
    """A reply leased to this worker, as it stood when claimed."""

    id: int
    message_id: int
    status: str  # intent / retry: to send; submitted: to follow
    attempts: int  # calls already made (an earlier one may have reached the TdT)
    remote_id: str | None
    kind: str
    code: str
    files: list[dict[str, Any]]
    sent_at: datetime | None


async def due_replies(store: Store, limit: int = 20) -> list[int]:
    async with store.sessions() as session:
        return list((await session.execute(
            select(PrefectureReply.id).where(PrefectureReply.status.in_(OPEN), PrefectureReply.next_at <= utcnow())
            .order_by(PrefectureReply.next_at).limit(limit))).scalars())


async def claim_reply(store: Store, reply_id: int, lease: float) -> Claimed | None:
    """Lease the reply for `lease` seconds (another worker's claim of the same `next_at` fails);
    a send counts as an attempt from the moment it is claimed."""
    now = utcnow()
    async with store.transaction() as session:
        row = await session.get(PrefectureReply, reply_id)
        if row is None or row.status not in OPEN or (row.next_at and row.next_at > now):
            return None
        attempts = row.attempts + (1 if row.status in SENDING else 0)
        won = await session.execute(
            update(PrefectureReply).where(PrefectureReply.id == reply_id, PrefectureReply.next_at == row.next_at)
            .values(next_at=now + timedelta(seconds=lease), attempts=attempts, updated_at=now))
        if won.rowcount != 1:
            return None
        return Claimed(row.id, row.message_id, row.status, row.attempts, row.remote_id, row.kind, row.code,
                       list(row.files or []), row.sent_at)


async def set_reply(session: AsyncSession, reply_id: int, **values: Any) -> None:
    """Reschedule (`next_at`) or close (`status`, `next_at=None`) a reply, in the caller's transaction."""
    await session.execute(update(PrefectureReply).where(PrefectureReply.id == reply_id)
                          .values(updated_at=utcnow(), **values))


async def later(store: Store, reply_id: int, seconds: float, error: str | None = None) -> None:
    async with store.transaction() as session:
        await set_reply(session, reply_id, next_at=utcnow() + timedelta(seconds=seconds), last_error=error)


# -- polls: one listing per collectivité and interval, whatever the number of workers -----------


async def due_polls(store: Store, sirens: list[str]) -> list[tuple[str, datetime]]:
    """(SIREN, next_at) of the polls due among `sirens`, creating the missing ones (due now)."""
    now = utcnow()
    async with store.sessions() as session:
        known = dict((await session.execute(select(PrefecturePoll.siren, PrefecturePoll.next_at))).tuples().all())
    for siren in (s for s in sirens if s not in known):
        try:
            async with store.transaction() as session:
                session.add(PrefecturePoll(siren=siren, next_at=now))
            known[siren] = now
        except IntegrityError:  # another worker created it
            async with store.sessions() as session:
                known[siren] = (await session.get(PrefecturePoll, siren)).next_at  # type: ignore[union-attr]
    return [(s, known[s]) for s in sirens if known[s] <= now]


async def claim_poll(store: Store, siren: str, seen: datetime, interval: float) -> bool:
    """The poll is ours until `interval` has passed: the next one is not due before."""
    now = utcnow()
    async with store.transaction() as session:
        won = await session.execute(
            update(PrefecturePoll).where(PrefecturePoll.siren == siren, PrefecturePoll.next_at == seen)
            .values(next_at=now + timedelta(seconds=interval)))
    return won.rowcount == 1


async def poll_done(store: Store, siren: str, error: str | None) -> None:
    async with store.transaction() as session:
        await session.execute(update(PrefecturePoll).where(PrefecturePoll.siren == siren)
                              .values(polled_at=utcnow(), last_error=error))


async def poll_now(session: AsyncSession, siren: str) -> None:
    """Ask the collectivité's TdT at the next round (Pastell's `verif-reponse-tdt`)."""
    if await session.get(PrefecturePoll, siren) is None:
        session.add(PrefecturePoll(siren=siren, next_at=utcnow()))
    else:
        await session.execute(update(PrefecturePoll).where(PrefecturePoll.siren == siren).values(next_at=utcnow()))
