"""Live counters: a move counts once per (document, state), on its Paris day; the store snapshot
never goes backwards; the Prometheus sums carry no SIREN."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date
from typing import Any

from prometheus_client import REGISTRY

from bus.counters import LiveCounters, increments, read_counters, save_snapshot
from schemas.actes.volumes import volume_counts as actes_volumes
from schemas.helios.volumes import volume_counts as helios_volumes
from tests.conftest import SIREN_A


class FakeApp:
    """Just enough of faust.App: tables are defaultdicts, agents and timers are collected."""

    def __init__(self) -> None:
        self.timers: list[Any] = []

    def Table(self, name: str, default: Any, partitions: int) -> defaultdict:
        return defaultdict(default)

    def agent(self, topic: Any, name: str) -> Any:
        return lambda fn: fn

    def timer(self, seconds: float) -> Any:
        def register(fn: Any) -> Any:
            self.timers.append(fn)
            return fn
        return register


def move(doc: str, state: str, at: str, volumes: dict[str, int] | None = None, seq: int = 1,
         siren: str = SIREN_A) -> dict[str, Any]:
    return {"event_id": f"{doc}:{seq}", "document_id": doc, "siren": siren, "flow": "actes", "state": state,
            "event": "x", "seq": seq, "at": at, "volumes": volumes or {}}


def test_day_is_the_paris_day() -> None:
    # 31 January 23:30 UTC is 1 February in Paris, as the monthly reports count it.
    keys = increments(move("d1", "deposited", "2024-01-31T23:30:00.000000", {"actes_nature_DE": 1}))
    assert keys == {f"{SIREN_A}|actes|2024-02-01|deposited": 1, f"{SIREN_A}|actes|2024-02-01|actes_nature_DE": 1}


def test_volumes_from_the_deposit_metadata() -> None:
    assert actes_volumes({"nature": 3}) == {"actes_nature_AI": 1}
    assert actes_volumes({"nature": 9}) == {}
    meta = {"pj_count": 2, "bordereaux": [{"domain": "depense", "pieces": 4}, {"domain": "depense", "pieces": 1},
                                          {"domain": "recette", "pieces": 3}]}
    assert helios_volumes(meta) == {"pes_bordereaux": 3, "pes_mandats": 5, "pes_titres": 3, "pes_pj": 2}


async def test_a_move_counts_once_and_the_snapshot_keeps_the_largest(store) -> None:  # type: ignore[no-untyped-def]
    siren = f"{random.randrange(10**8, 10**9)}"  # the snapshot table has no foreign key: a fresh key
    counters = LiveCounters(FakeApp(), store, topic=None, partitions=1)
    at = "2024-03-05T10:00:00.000000"
    assert counters.apply(move("d1", "deposited", at, {"actes_nature_DE": 1}, siren=siren))
    assert not counters.apply(move("d1", "deposited", at, {"actes_nature_DE": 1}, siren=siren))  # redelivered
    assert counters.apply(move("d1", "transmitted", at, seq=2, siren=siren))
    assert not counters.apply(move("d1", "transmitted", at, seq=3, siren=siren))  # re-entered after a replay
    assert counters.apply(move("d2", "deposited", at, {"actes_nature_DE": 1}, siren=siren))
    await counters.flush()
    rows = {(r.day, r.metric): r.value for r in await read_counters(store, sirens=[siren])}
    day = date(2024, 3, 5)
    assert rows == {(day, "deposited"): 2, (day, "transmitted"): 1, (day, "actes_nature_DE"): 2}
    gauge = REGISTRY.get_sample_value("dematbus_live_documents", {"flow": "actes", "metric": "deposited"})
    assert gauge is not None and gauge >= 2

    # A worker that lost the partition writes an older value: the snapshot does not go back.
    await save_snapshot(store, {f"{siren}|actes|2024-03-05|deposited": 1})
    assert {r.metric: r.value for r in await read_counters(store, sirens=[siren])}["deposited"] == 2
    await save_snapshot(store, {f"{siren}|actes|2024-03-05|deposited": 3})
    assert {r.metric: r.value for r in await read_counters(store, sirens=[siren])}["deposited"] == 3
    assert await read_counters(store, sirens=[siren], start=date(2024, 3, 6)) == []
