"""Collecting the préfecture's messages (bus/courriers/collect.py) from the S²low simulator: one
listing per collectivité whatever its number of actes, every message recorded once with its files,
journaled on its acte (whose state does not move) and announced; a worker dying between any two
steps records nothing twice and loses nothing."""

from __future__ import annotations

import asyncio
import io
import tarfile
import uuid

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, insert, select

from bus.courriers.collect import Collector
from bus.keyring import is_sealed
from bus.store.models import Document, Effect, File, JournalEntry, OutboxEvent, PrefectureMessage, PrefecturePoll
from bus.topics import MOVES
from schemas.actes.messages import parse_actes_message
from schemas.xml import validate
from tests.connectors.test_tdt_s2low import job
from tests.courriers.conftest import World
from tests.sim_servers import SIREN


async def messages_of(world: World, doc_id: str | None = None) -> list[PrefectureMessage]:
    async with world.store.sessions() as session:
        query = select(PrefectureMessage).order_by(PrefectureMessage.id)
        if doc_id:
            query = query.where(PrefectureMessage.document_id == doc_id)
        return list((await session.execute(query)).scalars())


async def many_acknowledged(world: World, count: int) -> None:
    """`count` more acknowledged actes of the collectivité, written in bulk."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    async with world.store.transaction() as session:
        await session.execute(insert(Document), [
            {"id": i, "flow": "actes", "siren": SIREN, "state": "archived", "stage": "sae", "version": 1,
             "generation": 1, "meta": {}, "replies": {"tdt_transaction_id": str(900000 + n)},
             "business_key": f"BULK_{n}"} for n, i in enumerate(ids)])
        await session.execute(insert(Effect), [
            {"document_id": i, "stage": "tdt", "generation": 1, "reference": f"bulk-{i}", "status": "done",
             "remote_id": str(900000 + n), "attempts": 1} for n, i in enumerate(ids)])


async def test_one_listing_per_collectivite_each_message_recorded_once(world: World) -> None:
    (first, first_tx), (second, second_tx) = await world.acte("PREF_A"), await world.acte("PREF_B")
    await many_acknowledged(world, 10_000)
    sent = {"3-1": world.send(first_tx, "3-1"), "2-1": world.send(second_tx, "2-1"), "5-1": world.send(second_tx, "5-1")}
    before = world.calls()

    assert await world.collector.run_due() == 1
    calls = world.calls()
    assert calls["list_document_prefecture"] - before.get("list_document_prefecture", 0) == 1  # not 10 002
    assert calls["get_document"] - before.get("get_document", 0) == 3
    assert calls["document_prefecture_mark_as_read"] == 3
    assert world.admin("GET", "/_admin/stats")["calls"]["list_document_prefecture"] == calls["list_document_prefecture"]

    recorded = await messages_of(world)
    assert sorted((m.code, m.remote_id) for m in recorded) == sorted((c, i) for c, i in sent.items())
    assert {m.document_id for m in recorded if m.code == "3-1"} == {first}
    assert {m.document_id for m in recorded if m.code != "3-1"} == {second}
    demande = next(m for m in recorded if m.code == "3-1")
    assert demande.state == "received" and demande.sent_on is not None
    assert demande.due_date == demande.sent_on + relativedelta(months=2)
    assert demande.fields["description_pieces"].startswith("Merci de transmettre")
    assert all(m.due_date is None for m in recorded if m.code in ("2-1", "5-1"))

    async with world.store.sessions() as session:
        files = {f.name: f for f in (await session.execute(select(File).where(File.document_id == first))).scalars()}
        doc = await session.get(Document, first)
        entries = list((await session.execute(select(JournalEntry).where(JournalEntry.document_id == first)
                                              .order_by(JournalEntry.seq))).scalars())
        moves = [o.payload for o in (await session.execute(select(OutboxEvent).where(OutboxEvent.topic == MOVES)))
                 .scalars() if o.payload.get("type")]
    assert doc is not None and doc.state == "archived"  # the acte's state does not move
    assert [files[n].role for n in demande.files] == ["prefecture_archive", "prefecture_message", "prefecture_document"]
    message_xml = world.blobs.get(files[demande.files[1]].sha256)
    validate("actes", message_xml)
    assert parse_actes_message(message_xml).root == "DemandePieceComplementaire"
    assert world.blobs.get(files[demande.files[2]].sha256).startswith(b"%PDF-")
    assert entries[-1].event == "prefecture_message.received" and entries[-1].state == "archived"
    assert entries[-1].detail["type"] == "3-1" and demande.received_at == entries[-1].at
    assert sorted((m["type"], m["prefecture_message"]["type"], m["volumes"]) for m in moves) == [
        ("prefecture_message.received", c, {f"prefecture_{c}": 1}) for c in ("2-1", "3-1", "5-1")]

    # Nothing unread any more: the next round lists once and records nothing.
    assert await world.collector.run_due() == 1
    assert len(await messages_of(world)) == 3 and world.calls()["get_document"] == calls["get_document"]


async def test_a_worker_dying_between_the_steps_records_each_message_once(world: World) -> None:
    _, tx = await world.acte("PREF_CRASH")
    lost = world.send(tx, "4-1")
    # Download fails (the worker died before the record): nothing recorded, still unread.
    world.admin("POST", "/_admin/faults", json={"fail_next": 1, "endpoint": "actes_transac_get_document.php"})
    await world.collector.run_due()
    assert await messages_of(world) == []
    # Recorded, then the mark-as-read fails (the worker died after the commit): recorded once …
    world.admin("POST", "/_admin/faults", json={"fail_next": 1, "endpoint": "document_prefecture_mark_as_read.php"})
    await world.collector.run_due()
    assert [m.remote_id for m in await messages_of(world)] == [lost]
    listed = await world.tdt.prefecture_messages()
    assert [r.transaction_id for r in listed] == [lost]  # still unread at S²low
    # … and the next round only marks it read.
    downloads = world.calls()["get_document"]
    await world.collector.run_due()
    assert [m.remote_id for m in await messages_of(world)] == [lost]
    assert world.calls()["get_document"] == downloads
    assert await world.tdt.prefecture_messages() == []


async def test_two_workers_list_once_per_interval(world: World) -> None:
    _, tx = await world.acte("PREF_TWO")
    world.send(tx, "3-1")
    one, two = (Collector(world.store, world.blobs, world.registry, interval=60) for _ in range(2))
    asked = await asyncio.gather(one.run_due(), two.run_due())
    assert sorted(asked) == [0, 1] and world.calls()["list_document_prefecture"] == 1
    assert len(await messages_of(world)) == 1
    assert await one.run_due() == 0  # the next poll is an interval away
    async with world.store.sessions() as session:
        poll = await session.get(PrefecturePoll, SIREN)
    assert poll is not None and poll.polled_at is not None and poll.last_error is None


async def test_a_hostile_archive_is_recorded_with_its_reason_and_no_file(world: World) -> None:
    doc_id, tx = await world.acte("PREF_EVIL")
    evil = world.send(tx, "3-1")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../etc/evil.xml")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"<a/>"))
    world.server.app.state.sim.state.transactions[int(evil)].archive_data = raw.getvalue()
    await world.collector.run_due()
    [message] = await messages_of(world, doc_id)
    assert message.files == [] and "unsafe path" in (message.error or "")
    assert await world.tdt.prefecture_messages() == []  # recorded, so marked read
    async with world.store.sessions() as session:
        count = (await session.execute(select(func.count()).select_from(File)
                                       .where(File.document_id == doc_id, File.role.like("prefecture%")))).scalar()
    assert count == 0


async def test_a_message_about_an_acte_the_bus_did_not_send_stays_unread(world: World) -> None:
    remote_id, _ = await world.tdt.submit(job("NOT_OURS"))  # sent by hand on S²low's site
    world.advance(3)
    await world.tdt.poll(job("NOT_OURS"), remote_id)
    await world.acte("PREF_OURS")  # the collectivité has an acknowledged acte of the bus's
    stranger = world.send(remote_id, "2-1")
    await world.collector.run_due()
    assert await messages_of(world) == []
    assert [r.transaction_id for r in await world.tdt.prefecture_messages()] == [stranger]


async def test_an_encrypted_flow_keeps_its_messages_sealed(world: World) -> None:
    doc_id, tx = await world.acte("RH_PREF", flow="rh-acte")
    world.send(tx, "4-1")
    await world.collector.run_due()
    [message] = await messages_of(world, doc_id)
    async with world.store.sessions() as session:
        rows = list((await session.execute(select(File).where(File.name.in_(message.files)))).scalars())
    assert len(rows) == 3
    for row in rows:
        assert is_sealed(world.blobs.path(row.sha256).read_bytes())
        assert world.blobs.get(row.sha256)  # opened with the collectivité's key
