"""The letters counted per type: the report buckets them by the Paris month of their arrival, the
live counters by its Paris day, each letter once (with its journal entry), and neither counts the
acte's state again."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from bus import moves
from bus.counters import increments, local_day, read_counters
from bus.reports import volumes
from bus.store import journal
from bus.store.db import Store
from bus.store.models import Document, PrefectureMessage
from tests.conftest import SIREN_A


async def test_the_report_counts_letters_in_their_paris_month(store: Store, keys: dict[str, str]) -> None:
    doc_id = str(uuid.uuid4())
    async with store.transaction() as session:
        session.add(Document(id=doc_id, flow="actes", siren=SIREN_A, state="archived", meta={}))
        await session.flush()
        for n, (code, at) in enumerate([("3-1", datetime(2025, 1, 31, 23, 30)),  # 1 February in Paris
                                        ("3-1", datetime(2025, 1, 31, 22, 30)),  # still January
                                        ("5-1", datetime(2025, 12, 31, 23, 30)),  # 2026 in Paris
                                        ("2-1", datetime(2025, 6, 1, 8, 0))]):
            session.add(PrefectureMessage(document_id=doc_id, siren=SIREN_A, code=code, remote_id=str(n),
                                          state="received", received_at=at, fields={}, files=[]))
    report = await volumes(store, year=2025)
    by_month = {r.month: {k: v for k, v in r.counts.items() if k.startswith("prefecture_") and v}
                for r in report.rows if r.siren == SIREN_A}
    assert by_month[1] == {"prefecture_3-1": 1} and by_month[2] == {"prefecture_3-1": 1}
    assert by_month[6] == {"prefecture_2-1": 1} and by_month[12] == {}
    assert report.total.counts["prefecture_5-1"] == 0 and report.total.counts["archived"] == 0
    assert "prefecture_3-1" in report.to_csv().splitlines()[0] and "prefecture_3-1" in report.to_html()


def letter_move(seq: int, code: str, at: str) -> dict[str, Any]:
    return {"event_id": f"d1:{seq}", "document_id": "d1", "siren": SIREN_A, "flow": "actes", "state": "archived",
            "event": "prefecture_message.received", "seq": seq, "at": at, "type": "prefecture_message.received",
            "volumes": {f"prefecture_{code}": 1}, "prefecture_message": {"type": code}}


async def test_the_live_counters_count_each_letter_once_and_not_the_state(store: Store, keys: dict[str, str]) -> None:
    assert increments(letter_move(7, "3-1", "2025-01-31T23:30:00.000000")) == {
        f"{SIREN_A}|actes|2025-02-01|prefecture_3-1": 1}
    doc_id = str(uuid.uuid4())
    async with store.transaction() as session:
        session.add(Document(id=doc_id, flow="actes", siren=SIREN_A, state="archived", meta={}))

    async def counts() -> dict[str, int]:
        return {(r.metric, r.day.isoformat()): r.value for r in await read_counters(store, sirens=[SIREN_A])}

    before = await counts()
    for n in (1, 2):  # a demande, then a second one
        async with store.transaction() as session:
            doc = await session.get(Document, doc_id)
            entry = await journal.append(session, doc_id, "prefecture_message.received", doc.state, {"n": n})
            await moves.announce_event(session, doc, entry, "prefecture_message.received", {"prefecture_3-1": 1})
    day = local_day(entry.at).isoformat()
    after = await counts()
    assert {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)} == {
        ("prefecture_3-1", day): 2}
