"""`dematbus journal verify [--id ID]` detects a tampered journal row and says which entry broke.

The append-only triggers forbid UPDATE: the test drops them on purpose (as an attacker with
database access would), changes one entry, and puts them back."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text, update
from typer.testing import CliRunner

from bus.cli import app as cli
from bus.store import journal
from bus.store.models import Document, JournalEntry
from tests.conftest import SIREN_A

runner = CliRunner()

SQLITE_TRIGGER = ("CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal "
                  "BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END")


async def _documents(store, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    ids = []
    async with store.transaction() as session:
        for i in range(n):
            doc_id = str(uuid.uuid4())
            session.add(Document(id=doc_id, flow="actes", siren=SIREN_A, state="deposited", meta={}))
            await session.flush()
            for event, state in (("deposited", "deposited"), ("stage.started", "transmitting"),
                                 ("stage.submitted", "transmitted"), ("stage.done", "acknowledged")):
                await journal.append(session, doc_id, event, state, {"n": i})
            ids.append(doc_id)
    return ids


async def _tamper(store, document_id: str, seq: int) -> None:  # type: ignore[no-untyped-def]
    async with store.transaction() as session:
        dialect = session.bind.dialect.name
        if dialect == "sqlite":
            await session.execute(text("DROP TRIGGER journal_no_update"))
        else:
            await session.execute(text("ALTER TABLE journal DISABLE TRIGGER journal_append_only"))
        await session.execute(update(JournalEntry).where(JournalEntry.document_id == document_id,
                                                         JournalEntry.seq == seq)
                              .values(detail={"n": 999}))
        if dialect == "sqlite":
            await session.execute(text(SQLITE_TRIGGER))
        else:
            await session.execute(text("ALTER TABLE journal ENABLE TRIGGER journal_append_only"))


async def verify(settings, *args: str):  # type: ignore[no-untyped-def]
    return await asyncio.to_thread(runner.invoke, cli, ["journal", "verify", *args,
                                                        "--data-dir", str(settings.data_dir)])


def broken_ids(output: str) -> set[str]:
    words = " ".join(output.split()).split("journal of ")
    return {w.split(" ")[0] for w in words[1:] if "BROKEN" in w}


async def test_verify_every_chain_names_the_tampered_entry(settings, store, keys) -> None:  # type: ignore[no-untyped-def]
    ids = await _documents(store, 3)
    before = await verify(settings)
    # A fresh SQLite store is intact; a shared PostgreSQL may hold other tests' tampered chains.
    assert before.exit_code == 0 or store.engine.dialect.name != "sqlite", before.output
    assert not broken_ids(before.output) & set(ids)

    await _tamper(store, ids[1], 2)
    after = await verify(settings)
    assert after.exit_code == 1
    assert broken_ids(after.output) - broken_ids(before.output) == {ids[1]}
    assert f"journal of {ids[1]} is BROKEN at entry 2" in " ".join(after.output.split())

    one = await verify(settings, "--id", ids[1])
    assert one.exit_code == 1 and "entry 2" in one.output
    fine = await verify(settings, "--id", ids[0])
    assert fine.exit_code == 0 and "intact" in fine.output
    positional = await verify(settings, ids[2])
    assert positional.exit_code == 0
    missing = await verify(settings, "--id", "no-such-document")
    assert missing.exit_code == 1 and "no journal" in missing.output

    # The triggers are back: the journal refuses UPDATE again.
    async with store.transaction() as session:
        try:
            await session.execute(update(JournalEntry).where(JournalEntry.document_id == ids[0])
                                  .values(event="x"))
        except Exception as exc:  # noqa: BLE001 - the database's own refusal, whatever its class
            assert "append-only" in str(exc)
        else:
            raise AssertionError("the journal accepted an UPDATE")
