"""The verdict of a campaign: the invariants (docs/invariants.md §1, §2, §7), read from the store
and from the simulators' own counters (never from what the bus says about itself)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import httpx
from sqlalchemy import select

from bus.flows.definition import load_flow
from bus.store import journal
from bus.store.db import Store
from bus.store.models import Document


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def documents(store: Store, ids: list[str]) -> dict[str, tuple[str, str, str | None]]:
    """id → (flow, state, reason) of the given documents that exist."""
    found: dict[str, tuple[str, str, str | None]] = {}
    async with store.sessions() as session:
        for chunk in _chunks(ids):
            rows = await session.execute(select(Document.id, Document.flow, Document.state, Document.reason)
                                         .where(Document.id.in_(chunk)))
            found.update({r.id: (r.flow, r.state, r.reason) for r in rows})
    return found


def simulator_duplicates(simulators_url: str) -> dict[str, int]:
    """What each simulator counted as sent twice: ACTES transmissions and PES files at S²low,
    archive transfers at As@lae, folders at the i-Parapheur, deposits at the digital safe."""
    views = {"s2low_actes": "/s2low/_admin/transmissions", "s2low_helios": "/s2low/_admin/helios",
             "asalae": "/asalae/_admin/transfers", "iparapheur": "/iparapheur/_admin/folders",
             "coffre": "/coffre/_admin/deposits"}
    with httpx.Client(base_url=simulators_url, timeout=120) as client:
        return {name: int(client.get(path).json()["duplicates"]) for name, path in views.items()}


async def verdict(store: Store, acknowledged: list[str], simulators_url: str) -> dict[str, Any]:
    found = await documents(store, acknowledged)
    missing = [i for i in acknowledged if i not in found]
    unfinished = {i: state for i, (flow, state, _) in found.items() if not load_flow(flow).is_terminal(state)}
    errors = {i: reason for i, (_, state, reason) in found.items() if state == "error"}
    async with store.sessions() as session:
        chains, broken = await journal.verify_all(session)
    duplicates = simulator_duplicates(simulators_url)
    lost = len(missing) + len(unfinished)
    return {
        "ok": lost == 0 and not any(duplicates.values()) and not broken
              and all(reason for reason in errors.values()),
        "lost": lost,
        "missing_from_store": missing[:50],
        "never_terminal": dict(list(unfinished.items())[:50]),
        "states": dict(Counter(state for _, state, _ in found.values())),
        "errors": {
            "count": len(errors),
            "without_reason": sum(1 for reason in errors.values() if not reason),
            "reasons": dict(Counter((reason or "")[:120] for reason in errors.values()).most_common(10)),
        },
        "duplicates": duplicates,
        "journal": {"chains_checked": chains, "broken": [b.document_id for b in broken][:50]},
    }
