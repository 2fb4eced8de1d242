"""Replies to the préfecture (bus/courriers/replies.py) against the S²low simulator: checked and
recorded, sent exactly once by the worker (also when the answer to the send was lost), followed to
the préfecture's 3-5 / 4-5; the refusals, with nothing stored."""

from __future__ import annotations

import asyncio
import io
import tarfile
import pytest
from sqlalchemy import func, select

from bus.courriers.replies import ReplyRefused, ReplyRequest, close_message, request_reply
from bus.deposits import Upload
from bus.store.apikeys import find_key
from bus.store.models import ApiKey, File, JournalEntry, PrefectureMessage, PrefectureReply
from connectors.simulators.s2low import minimal_pdf
from schemas.actes.archive import read_acte_archive
from schemas.actes.messages import parse_actes_message
from tests.courriers.conftest import World

PDF = minimal_pdf(["Réponse de la commune"])


def upload(name: str, data: bytes = PDF, role: str = "document") -> Upload:
    return Upload(name=name, role=role, chunks=[data], content_type="application/pdf")


async def key(world: World, who: str) -> ApiKey:
    async with world.store.sessions() as session:
        found = await find_key(session, world.keys[who])
    assert found is not None
    return found


async def received(world: World, code: str, numero: str) -> tuple[str, PrefectureMessage]:
    doc_id, tx = await world.acte(numero)
    world.send(tx, code)
    await world.collector.run_due()
    async with world.store.sessions() as session:
        message = (await session.execute(select(PrefectureMessage).where(
            PrefectureMessage.document_id == doc_id))).scalar_one()
    return doc_id, message


async def state(world: World, message_id: int) -> tuple[str, list[PrefectureReply]]:
    async with world.store.sessions() as session:
        message = await session.get(PrefectureMessage, message_id)
        replies = list((await session.execute(select(PrefectureReply).where(PrefectureReply.message_id == message_id)
                                              .order_by(PrefectureReply.generation))).scalars())
    assert message is not None
    return message.state, replies


async def run(world: World, rounds: int = 1) -> None:
    for _ in range(rounds):
        await world.runner.process_due()


async def until_due(world: World) -> None:
    """Wait for the retry / poll the runner scheduled (FAST settings: tens of milliseconds)."""
    await asyncio.sleep(0.3)


async def test_pieces_complementaires_sent_once_then_closed_by_the_3_5(world: World) -> None:
    doc_id, message = await received(world, "3-1", "REP_PIECES")
    wanted = ReplyRequest("pieces", upload("courrier.pdf"),
                          [upload("plan.pdf", minimal_pdf(["Plan de financement"]), "annexe"),
                           upload("avis.pdf", minimal_pdf(["Avis du comptable"]), "annexe")], ["99_DE", "21_DA"])
    reply = await request_reply(world.store, world.depositor, await key(world, "depositor"), doc_id, message.id, wanted)
    assert reply.code == "3-4" and reply.status == "intent"
    assert (await state(world, message.id))[0] == "received"  # nothing sent yet

    await run(world)
    current, [sent] = await state(world, message.id)
    assert current == "answered" and sent.status == "submitted" and sent.remote_id
    tx = world.server.app.state.sim.state.transactions[int(sent.remote_id)]
    parsed = read_acte_archive(tx.archive_data, name=tx.archive_name)
    assert parsed.message_root == "PieceComplementaire" and len(parsed.acte["documents"]) == 3
    with tarfile.open(fileobj=io.BytesIO(tx.archive_data)) as tar:
        names = tar.getnames()
    assert names[2].startswith("99_DE-") and names[3].startswith("21_DA-") and names[4].startswith("99_DE-")

    world.advance(3)  # the préfecture's 3-5
    await until_due(world)
    await run(world)
    current, [done] = await state(world, message.id)
    assert current == "closed" and done.status == "done" and done.acknowledged_at is not None
    ar = next(f for f in done.files if f["role"] == "prefecture_reply_ar")
    async with world.store.sessions() as session:
        row = (await session.execute(select(File).where(File.document_id == doc_id, File.name == ar["name"]))).scalar_one()
        events = [e.event for e in (await session.execute(select(JournalEntry).where(
            JournalEntry.document_id == doc_id).order_by(JournalEntry.seq))).scalars()]
    assert parse_actes_message(world.blobs.get(row.sha256), check_xsd=True).type_code == "3-5"
    assert events[-4:] == ["prefecture_message.received", "prefecture_reply.requested", "prefecture_message.answered",
                           "prefecture_message.closed"]
    assert world.calls()["reply_3-4"] == 1


async def test_a_reply_whose_answer_was_lost_is_found_at_s2low_and_not_sent_again(world: World) -> None:
    doc_id, message = await received(world, "4-1", "REP_LOST")
    _, other = await received(world, "4-1", "REP_OTHER")  # another acte's letter: not to be mistaken for ours
    await request_reply(world.store, world.depositor, await key(world, "operator"), doc_id, message.id,
                        ReplyRequest("reponse", upload("reponse.pdf")))
    # S²low makes the reply, then holds the answer past the connector's timeout.
    world.admin("POST", "/_admin/faults", json={"timeout_next": 1, "timeout_seconds": 4,
                                                "endpoint": "actes_transac_reponse_create.php"})
    await run(world)
    _, [pending] = await state(world, message.id)
    assert pending.status == "retry" and pending.remote_id is None and world.calls()["reply_4-4"] == 1
    world.admin("DELETE", "/_admin/faults")
    await until_due(world)
    await run(world)
    current, [found] = await state(world, message.id)
    assert current == "answered" and found.status == "submitted" and found.remote_id
    assert world.calls()["reply_4-4"] == 1  # found, not sent again
    async with world.store.sessions() as session:
        answered = (await session.execute(select(JournalEntry).where(
            JournalEntry.document_id == doc_id, JournalEntry.event == "prefecture_message.answered"))).scalar_one()
    assert answered.detail == {"message": message.id, "type": "4-1", "code": "4-4",
                               "reply_transaction_id": found.remote_id, "recovered": True}
    world.advance(3)
    await until_due(world)
    await run(world)
    assert (await state(world, message.id))[0] == "closed"
    assert (await state(world, other.id))[0] == "received"


async def test_a_reponse_to_a_courrier_simple_ends_when_transmitted(world: World) -> None:
    doc_id, message = await received(world, "2-1", "REP_CS")
    await request_reply(world.store, world.depositor, await key(world, "depositor"), doc_id, message.id,
                        ReplyRequest("reponse", upload("reponse.pdf")))
    await run(world)
    world.advance(3)
    await until_due(world)
    await run(world)
    current, [done] = await state(world, message.id)
    assert current == "closed" and done.status == "done"
    assert not [f for f in done.files if f["role"] == "prefecture_reply_ar"]  # a 2-2 gets no AR


async def test_a_reply_the_tdt_refuses_leaves_the_message_open_for_another(world: World) -> None:
    doc_id, message = await received(world, "3-1", "REP_KO")
    world.admin("POST", "/_admin/faults", json={"fail_next": 1, "fail_status": 400,
                                                "endpoint": "actes_transac_reponse_create.php"})
    depositor = await key(world, "depositor")
    await request_reply(world.store, world.depositor, depositor, doc_id, message.id,
                        ReplyRequest("refus", upload("refus.pdf")))
    await run(world)
    current, [failed] = await state(world, message.id)
    assert current == "received" and failed.status == "failed" and "400" in (failed.last_error or "")
    again = await request_reply(world.store, world.depositor, depositor, doc_id, message.id,
                                ReplyRequest("refus", upload("refus.pdf")))
    assert again.generation == 2
    await run(world)
    assert (await state(world, message.id))[0] == "answered" and world.calls()["reply_3-3"] == 1


async def refused(world: World, who: str, doc_id: str, message_id: int, wanted: ReplyRequest) -> tuple[int, str]:
    with pytest.raises(ReplyRefused) as info:
        await request_reply(world.store, world.depositor, await key(world, who), doc_id, message_id, wanted)
    return info.value.status, info.value.code


async def test_refusals_store_nothing(world: World) -> None:
    doc_id, demande = await received(world, "3-1", "REF_1")
    defere_doc, defere = await received(world, "5-1", "REF_2")
    courrier_doc, courrier = await received(world, "2-1", "REF_3")
    ok = ReplyRequest("pieces", upload("pieces.pdf"))
    async with world.store.sessions() as session:
        files_before = (await session.execute(select(func.count()).select_from(File))).scalar()
    cases = [
        ("reporter", doc_id, demande.id, ok, (403, "forbidden_role")),
        ("other", doc_id, demande.id, ok, (404, "document_not_found")),
        ("depositor", doc_id, 999_999, ok, (404, "message_not_found")),
        ("depositor", courrier_doc, demande.id, ok, (404, "message_not_found")),  # another acte's message
        ("depositor", defere_doc, defere.id, ReplyRequest("reponse", upload("r.pdf")), (409, "no_reply_expected")),
        ("depositor", courrier_doc, courrier.id, ReplyRequest("refus", upload("r.pdf")), (409, "reply_kind_not_allowed")),
        ("depositor", doc_id, demande.id, ReplyRequest("reponse", upload("r.pdf")), (409, "reply_kind_not_allowed")),
        ("depositor", doc_id, demande.id, ReplyRequest("merci", upload("r.pdf")), (422, "invalid_reply_kind")),
        ("depositor", doc_id, demande.id, ReplyRequest("pieces", None), (422, "document_required")),
        ("depositor", doc_id, demande.id, ReplyRequest("refus", upload("r.pdf"), [upload("a.pdf", role="annexe")]),
         (422, "annexes_not_allowed")),
        ("depositor", doc_id, demande.id, ReplyRequest("pieces", upload("r.pdf", b"<html>not a pdf</html>")),
         (415, "document_not_pdf")),
        ("depositor", doc_id, demande.id, ReplyRequest("pieces", upload("r.pdf"), [upload("a.exe", b"MZ\x90\x00")]),
         (415, "annexe_bad_type")),
        ("depositor", doc_id, demande.id, ReplyRequest("pieces", upload("r.pdf", b"")), (422, "empty_file")),
        ("depositor", doc_id, demande.id, ReplyRequest("pieces", upload("r.pdf", PDF[:60])),
         (422, "pdf_corrupt")),  # a truncated PDF is parsed, not only sniffed
        ("depositor", doc_id, demande.id, ReplyRequest("pieces", upload("../../.profile")), (422, "invalid_file_name")),
        ("depositor", doc_id, demande.id, ReplyRequest("pieces", upload("r.pdf"), [], ["99_XX", "12"]),
         (422, "typologie_count")),
        ("depositor", doc_id, demande.id, ReplyRequest("pieces", upload("r.pdf"), [], ["bad"]), (422, "invalid_typologie")),
        ("depositor", doc_id, demande.id, ReplyRequest("pieces", upload("r.pdf"), [upload("r.pdf", role="annexe")]),
         (422, "duplicate_file_name")),
    ]
    for who, doc, message_id, wanted, expected in cases:
        assert await refused(world, who, doc, message_id, wanted) == expected, (who, wanted.kind, expected)
    async with world.store.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(PrefectureReply))).scalar() == 0
        assert (await session.execute(select(func.count()).select_from(File))).scalar() == files_before

    # One reply at a time, none after it is sent, none to a closed message.
    depositor = await key(world, "depositor")
    await request_reply(world.store, world.depositor, depositor, doc_id, demande.id, ok)
    assert await refused(world, "operator", doc_id, demande.id, ok) == (409, "reply_pending")
    await run(world)
    assert await refused(world, "operator", doc_id, demande.id, ok) == (409, "already_answered")
    await close_message(world.store, depositor, courrier_doc, courrier.id)
    assert await refused(world, "depositor", courrier_doc, courrier.id,
                         ReplyRequest("reponse", upload("r.pdf"))) == (409, "message_closed")
    with pytest.raises(ReplyRefused) as info:
        await close_message(world.store, depositor, doc_id, demande.id)  # answered: nothing to close
    assert (info.value.status, info.value.code) == (409, "message_not_open")
