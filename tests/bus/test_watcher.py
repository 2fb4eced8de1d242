"""Watched folders: files dropped by business software are deposited once, never lost."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import func, select

from bus.blobs import BlobStore
from bus.deposits import Depositor
from bus.store.models import Document
from connectors.inbound.watcher import FolderWatcher
from connectors.signature.pdf import make_pdf
from tests.conftest import SIREN_A


def meta(numero: str) -> str:
    return json.dumps({"nature": 1, "numero_interne": numero, "date_decision": date.today().isoformat(),
                       "objet": "Déposé dans un dossier surveillé", "classification": "1.1"})


def watcher(settings, store) -> FolderWatcher:  # type: ignore[no-untyped-def]
    return FolderWatcher(settings.inbox_dir, Depositor(store, BlobStore(settings.blob_dir), settings))


async def documents(store) -> int:  # type: ignore[no-untyped-def]
    async with store.sessions() as s:
        return (await s.execute(select(func.count()).select_from(Document))).scalar_one()


async def test_dropped_files_are_deposited_once_and_moved(settings, store, keys) -> None:  # type: ignore[no-untyped-def]
    folder = settings.inbox_dir / SIREN_A / "actes"
    folder.mkdir(parents=True)
    (folder / "del1.pdf").write_bytes(make_pdf("Délibération 1"))
    (folder / "del1.pdf.meta.json").write_text(meta("WATCH_1"))
    (folder / "bad.pdf").write_bytes(b"not a pdf at all")
    (folder / "bad.pdf.meta.json").write_text(meta("WATCH_2"))
    (folder / "upload.pdf.part").write_bytes(b"%PDF-1.4 half written")
    w = watcher(settings, store)

    first = await w.scan()  # files are only taken once they stayed the same for a whole scan
    assert first.deposited == [] and first.rejected == []
    second = await w.scan()
    assert len(second.deposited) == 1 and second.rejected == ["bad.pdf"]
    assert (folder / "done" / "del1.pdf").exists() and (folder / "done" / "del1.pdf.meta.json").exists()
    error = json.loads((folder / "rejected" / "bad.pdf.error.json").read_text())
    assert error["code"] == "document_not_pdf"
    assert (folder / "upload.pdf.part").exists()
    assert await documents(store) == 1
    assert (await w.scan()).deposited == []


async def test_crash_between_deposit_and_move_does_not_deposit_twice(settings, store, keys) -> None:  # type: ignore[no-untyped-def]
    folder = settings.inbox_dir / SIREN_A / "actes"
    folder.mkdir(parents=True)
    (folder / "del.pdf").write_bytes(make_pdf("Délibération"))
    (folder / "del.pdf.meta.json").write_text(meta("WATCH_3"))
    w = watcher(settings, store)
    await w.scan()
    doc_id = await w._deposit(SIREN_A, "actes", folder / "del.pdf")  # committed, then "crash" before the move
    restarted = watcher(settings, store)
    await restarted.scan()
    report = await restarted.scan()
    assert report.deposited == [doc_id]
    assert await documents(store) == 1
    assert (folder / "done" / "del.pdf").exists() and not (folder / "del.pdf").exists()
