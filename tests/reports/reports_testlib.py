"""Seed a year of documents and journal entries, and tally what the report must say.

The journal is written with the real `bus.store.journal.append` (real hash chain), its clock
patched to the seeded instants. Expected counts are tallied here, independently of bus.reports:
per document, the first instant it entered each outcome state, converted to Paris local time.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from unittest.mock import patch
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bus.collectivites import add_collectivite
from bus.reports import COLUMNS
from bus.store import journal
from bus.store.apikeys import create_key
from bus.store.db import Store
from bus.store.models import Document
from tests.conftest import SIREN_A, SIREN_B

YEAR = 2017
SIREN_C = "200066231"
SIREN_D = "213401722"  # only hand-made edge cases: month boundaries, year boundaries
NAMES = {SIREN_A: "Commune A", SIREN_B: "Commune B", SIREN_C: "Communauté de communes Cœur d'Hérault",
         SIREN_D: "Commune D"}
OUTCOMES = ("deposited", "signed", "transmitted", "acknowledged", "published", "rejected", "archived", "delivered",
            "error")
PARIS = ZoneInfo("Europe/Paris")
H, D = timedelta(hours=1), timedelta(days=1)

# (offset from deposit, event, state)
SCENARIOS: list[list[tuple[timedelta, str, str]]] = [
    # 0: the normal path to the archive
    [(0 * H, "deposited", "deposited"), (1 * H, "stage.started", "transmitting"),
     (2 * H, "stage.submitted", "transmitted"), (2 * D, "stage.done", "acknowledged"),
     (2 * D + H, "stage.started", "archiving"), (3 * D, "stage.done", "archived")],
    # 1: signed first, acknowledged, not archived yet
    [(0 * H, "deposited", "deposited"), (0.2 * H, "stage.started", "signing"), (1 * D, "stage.done", "signed"),
     (1 * D + H, "stage.started", "transmitting"), (1 * D + 2 * H, "stage.submitted", "transmitted"),
     (5 * D, "stage.done", "acknowledged")],
    # 2: rejected by the préfecture (AnomalieActe)
    [(0 * H, "deposited", "deposited"), (1 * H, "stage.started", "transmitting"),
     (2 * H, "stage.submitted", "transmitted"), (1 * D, "stage.rejected", "rejected")],
    # 3: error, replayed, redriven (the same state journaled twice), then acknowledged
    [(0 * H, "deposited", "deposited"), (1 * H, "stage.started", "transmitting"),
     (2 * H, "stage.failed", "error"), (2 * D, "replay", "transmitting"),
     (2 * D + H, "stage.submitted", "transmitted"), (3 * D, "redrive", "transmitted"),
     (4 * D, "stage.done", "acknowledged")],
    # 4: still being transmitted
    [(0 * H, "deposited", "deposited"), (1 * H, "stage.started", "transmitting")],
]


@dataclass
class Seeded:
    # (siren, flow, month 1..12, state) -> count, for YEAR
    expected: Counter = field(default_factory=Counter)
    keys: dict[str, str] = field(default_factory=dict)
    documents: int = 0

    def cell(self, siren: str, flow: str, month: int) -> dict[str, int]:
        return {s: self.expected[(siren, flow, month, s)] for s in OUTCOMES}

    def pairs(self) -> set[tuple[str, str]]:
        return {(k[0], k[1]) for k, v in self.expected.items() if v}

    def totals(self, siren: str | None = None, flow: str | None = None) -> dict[str, int]:
        out = dict.fromkeys(COLUMNS, 0)  # the préfecture's letters too (none seeded)
        for (s, f, _m, state), n in self.expected.items():
            if (siren is None or s == siren) and (flow is None or f == flow):
                out[state] += n
        return out


async def _document(session: AsyncSession, seeded: Seeded, siren: str, flow: str,
                    steps: list[tuple[datetime, str, str]]) -> None:
    doc_id = str(uuid.uuid4())
    session.add(Document(id=doc_id, flow=flow, siren=siren, state=steps[-1][2], meta={},
                         created_at=steps[0][0], updated_at=steps[-1][0]))
    await session.flush()
    for at, event, state in steps:
        with patch.object(journal, "utcnow", lambda at=at: at):
            await journal.append(session, doc_id, event, state, {"seeded": True})
    seeded.documents += 1
    first: dict[str, datetime] = {}
    for at, _event, state in steps:
        first.setdefault(state, at)
    for state, at in first.items():
        local = at.replace(tzinfo=UTC).astimezone(PARIS)
        if local.year == YEAR and state in OUTCOMES:
            seeded.expected[(siren, flow, local.month, state)] += 1


async def seed(store: Store, keys: dict[str, str], documents: bool = True) -> Seeded:
    """`keys` is the conftest fixture (collectivités A and B exist already). documents=False:
    only the collectivités and keys."""
    seeded = Seeded(keys=dict(keys))
    async with store.transaction() as session:
        await add_collectivite(session, siren=SIREN_C, name=NAMES[SIREN_C], departement="034", arrondissement="1")
        await add_collectivite(session, siren=SIREN_D, name=NAMES[SIREN_D], departement="034", arrondissement="3")
        seeded.keys["operator_ab"] = await create_key(session, [SIREN_A, SIREN_B], ["operator"])
        seeded.keys["reporter_all"] = await create_key(session, ["*"], ["reporter"])
        seeded.keys["reporter_c"] = await create_key(session, [SIREN_C], ["reporter"])
    if not documents:
        return seeded
    async with store.transaction() as session:  # one transaction: fast, and a real hash chain anyway
        await _seed_documents(session, seeded)
    return seeded


async def _seed_documents(session: AsyncSession, seeded: Seeded) -> None:

    for si, siren in enumerate((SIREN_A, SIREN_B, SIREN_C)):
        for fi, flow in enumerate(("actes", "helios")):
            if siren == SIREN_C and flow == "helios":
                continue  # a collectivité with one flow only
            for month in range(1, 13):
                for k in range(1 + (si + month + fi) % 3):
                    day = 1 + (k * 11 + si * 5 + month) % 28
                    start = datetime(YEAR, month, day, 8 + (k * 3 + si) % 10, 15 * (k % 4))
                    scenario = SCENARIOS[(si * 7 + month * 3 + k + fi) % len(SCENARIOS)]
                    await _document(session, seeded, siren, flow, [(start + off, ev, st) for off, ev, st in scenario])

    # Hand-made edge cases for SIREN_D, actes (see test_edge_cases_are_counted_by_hand).
    normal = SCENARIOS[0]
    # deposited in December of the year before, acknowledged on 2 January: only "acknowledged" counts
    await _document(session, seeded, SIREN_D, "actes", [
        (datetime(YEAR - 1, 12, 30, 10), "deposited", "deposited"),
        (datetime(YEAR - 1, 12, 30, 11), "stage.started", "transmitting"),
        (datetime(YEAR - 1, 12, 31, 9), "stage.submitted", "transmitted"),
        (datetime(YEAR, 1, 2, 9), "stage.done", "acknowledged")])
    # 31 January 23:30 UTC is 1 February 00:30 in Paris: a February deposit; transmitted on 1 Feb too
    await _document(session, seeded, SIREN_D, "actes", [(datetime(YEAR, 1, 31, 23, 30) + off, ev, st)
                                                       for off, ev, st in normal[:3]])
    # 30 June 21:59 UTC is 23:59 in Paris (June); 22:00 UTC is 1 July 00:00 (July)
    await _document(session, seeded, SIREN_D, "actes", [(datetime(YEAR, 6, 30, 21, 59), "deposited", "deposited")])
    await _document(session, seeded, SIREN_D, "actes", [(datetime(YEAR, 6, 30, 22, 0), "deposited", "deposited")])
    # 31 December 23:30 UTC is already next year in Paris: not in this report at all
    await _document(session, seeded, SIREN_D, "actes", [(datetime(YEAR, 12, 31, 23, 30), "deposited", "deposited")])
    # rejected twice (a second rejection journaled after a replay): counted once
    await _document(session, seeded, SIREN_D, "actes", [
        (datetime(YEAR, 3, 10, 9), "deposited", "deposited"), (datetime(YEAR, 3, 10, 10), "stage.rejected", "rejected"),
        (datetime(YEAR, 4, 2, 9), "replay", "transmitting"), (datetime(YEAR, 4, 3, 9), "stage.rejected", "rejected")])
