"""The per-document journal: append-only and hash-chained (docs/invariants.md §7).

Each entry's hash covers the previous entry's hash and the entry's own content, so changing or
removing any entry breaks every hash after it; `verify_chain` finds the first broken link.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bus.store.models import JournalEntry, utcnow

GENESIS = "0" * 64


def entry_hash(prev_hash: str, document_id: str, seq: int, at: datetime, event: str, state: str,
               detail: dict[str, Any]) -> str:
    body = json.dumps(
        [prev_hash, document_id, seq, at.isoformat(timespec="microseconds"), event, state, detail],
        sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


async def append(session: AsyncSession, document_id: str, event: str, state: str,
                 detail: dict[str, Any] | None = None) -> JournalEntry:
    last = (
        await session.execute(
            select(JournalEntry.seq, JournalEntry.hash)
            .where(JournalEntry.document_id == document_id)
            .order_by(JournalEntry.seq.desc())
            .limit(1)
        )
    ).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    at = utcnow()
    detail = detail or {}
    entry = JournalEntry(
        document_id=document_id, seq=seq, at=at, event=event, state=state, detail=detail,
        prev_hash=prev, hash=entry_hash(prev, document_id, seq, at, event, state, detail),
    )
    session.add(entry)
    await session.flush()
    return entry


@dataclass
class ChainReport:
    document_id: str
    entries: int
    valid: bool
    broken_at: int | None = None  # seq of the first entry whose hash does not match


async def verify_chain(session: AsyncSession, document_id: str) -> ChainReport:
    rows = (
        await session.execute(
            select(JournalEntry).where(JournalEntry.document_id == document_id).order_by(JournalEntry.seq)
        )
    ).scalars().all()
    prev = GENESIS
    for expected_seq, row in enumerate(rows, start=1):
        recomputed = entry_hash(prev, row.document_id, row.seq, row.at, row.event, row.state, row.detail)
        if row.seq != expected_seq or row.prev_hash != prev or row.hash != recomputed:
            return ChainReport(document_id, len(rows), False, row.seq)
        prev = row.hash
    return ChainReport(document_id, len(rows), True)


async def verify_all(session: AsyncSession, batch: int = 5000) -> tuple[int, list[ChainReport]]:
    """Check every document's chain, streaming the journal in (document, seq) order. Returns how
    many chains were checked and the broken ones (each with its first broken entry)."""
    broken: list[ChainReport] = []
    checked = 0
    current: str | None = None
    prev, count, expected, bad_at = GENESIS, 0, 1, None

    def close() -> None:
        if current is not None and bad_at is not None:
            broken.append(ChainReport(current, count, False, bad_at))

    result = await session.stream(
        select(JournalEntry).order_by(JournalEntry.document_id, JournalEntry.seq).execution_options(yield_per=batch)
    )
    async for row in result.scalars():
        if row.document_id != current:
            close()
            current, prev, count, expected, bad_at = row.document_id, GENESIS, 0, 1, None
            checked += 1
        count += 1
        if bad_at is None:
            recomputed = entry_hash(prev, row.document_id, row.seq, row.at, row.event, row.state, row.detail)
            if row.seq != expected or row.prev_hash != prev or row.hash != recomputed:
                bad_at = row.seq
        prev, expected = row.hash, expected + 1
    close()
    return checked, broken
