"""The store: migrations, the append-only hash-chained journal, the blob store."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bus.blobs import BlobCorrupted, BlobStore, BlobTooLarge
from bus.store import journal
from bus.store.models import Document
from tests.conftest import SIREN_A


async def _document(store, doc_id="d1"):  # type: ignore[no-untyped-def]
    async with store.transaction() as session:
        session.add(Document(id=doc_id, flow="actes", siren=SIREN_A, state="deposited", meta={}))
        await session.flush()
        for state in ("deposited", "transmitting", "transmitted"):
            await journal.append(session, doc_id, "test", state, {"x": state})


async def test_journal_chain_verifies_and_detects_tampering(store, keys) -> None:  # type: ignore[no-untyped-def]
    await _document(store)
    async with store.sessions() as session:
        report = await journal.verify_chain(session, "d1")
    assert report.valid and report.entries == 3

    # The database refuses to change history...
    async with store.sessions() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text("UPDATE journal SET state='archived' WHERE seq=2"))
        await session.rollback()
    # ...and if someone bypasses it (trigger dropped), the chain shows where.
    async with store.transaction() as session:
        drop = ("DROP TRIGGER journal_append_only ON journal" if store.url.startswith("postgresql")
                else "DROP TRIGGER journal_no_update")
        await session.execute(text(drop))
        await session.execute(text("UPDATE journal SET state='archived' WHERE document_id='d1' AND seq=2"))
    async with store.sessions() as session:
        report = await journal.verify_chain(session, "d1")
    assert not report.valid and report.broken_at == 2


async def test_journal_refuses_delete(store, keys) -> None:  # type: ignore[no-untyped-def]
    await _document(store)
    async with store.sessions() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text("DELETE FROM journal"))


def test_blob_store_is_content_addressed_and_verified(tmp_path) -> None:  # type: ignore[no-untyped-def]
    blobs = BlobStore(tmp_path)
    data = b"%PDF-1.4 hello" * 1000
    ref = blobs.put_stream(iter([data[:5000], data[5000:]]))
    assert ref.sha256 == hashlib.sha256(data).hexdigest() and ref.size == len(data)
    assert blobs.put(data) == ref  # same content, same blob
    assert blobs.get(ref.sha256) == data
    assert b"".join(blobs.iter_chunks(ref.sha256, 1000)) == data
    blobs.path(ref.sha256).write_bytes(b"tampered")
    with pytest.raises(BlobCorrupted):
        blobs.get(ref.sha256)
    with pytest.raises(BlobCorrupted):
        b"".join(blobs.iter_chunks(ref.sha256))


def test_blob_store_size_limit_leaves_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    blobs = BlobStore(tmp_path)
    with pytest.raises(BlobTooLarge):
        blobs.put_stream(iter([b"x" * 100, b"y" * 100]), max_bytes=150)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
