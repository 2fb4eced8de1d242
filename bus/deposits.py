"""Accepting a document: the one path every inbound channel takes (REST API, watched folder,
Pastell API, console).

Files go to the blob store first; then ONE transaction inserts the document, its files, its first
journal entry and the outbox event. A refusal raises before that transaction: nothing is stored
but content-addressed blobs, which nothing references.

Whatever the flow, before that transaction: file names are plain names (`check_file_name`),
metadata strings hold no control character, and after the flow's own checks every file is read
as what its bytes say it is: a PDF is parsed (`schemas.pdf.check_pdf`), an XML file is parsed
streaming without DTD (`schemas.xml.check_xml_stream`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bus import moves
from bus.blobs import BlobRef, BlobStore, BlobTooLarge
from bus.collectivite_config import connectors_of
from bus.config import Settings
from bus.flows.definition import flow_names, load_flow, resolve
from bus.metrics import observe_deposit
from bus.store import journal
from bus.store.db import Store
from bus.store.models import Collectivite, Document, JournalEntry
from bus.store.models import File as FileRow
from bus.store.outbox import emit_event
from schemas.deposit import (
    DepositContext,
    DepositFile,
    check_file_name,
    check_metadata_text,
    sniff_media_type,
)
from schemas.errors import SchemaError
from schemas.events import Event
from schemas.pdf import check_pdf
from schemas.siren import is_valid_siren
from schemas.xml import check_xml_stream


class DepositRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class Upload:
    name: str
    role: str  # "document" or "annexe"
    chunks: Iterable[bytes]  # read in a worker thread
    content_type: str | None = None


@dataclass
class Deposited:
    document_id: str
    created: bool  # False when an earlier deposit with the same Idempotency-Key is returned
    # What the deposit's transaction wrote (when created): the answer is built from it rather
    # than read back.
    written: Written | None = None


@dataclass
class Written:
    document: Document
    files: list[FileRow]
    entry: JournalEntry


class Depositor:
    def __init__(self, store: Store, blobs: BlobStore, settings: Settings) -> None:
        self.store, self.blobs, self.settings = store, blobs, settings

    async def deposit(self, *, flow: str, **kwargs: Any) -> Deposited:
        try:
            result = await self._deposit(flow=flow, **kwargs)
        except (DepositRefused, SchemaError):
            observe_deposit(flow, False)
            raise
        if result.created:
            observe_deposit(flow, True)
        return result

    async def _deposit(self, *, flow: str, siren: str, metadata: dict[str, Any], uploads: list[Upload],
                       actor: str, idempotency_key: str | None = None,
                       document_id: str | None = None) -> Deposited:
        """`document_id` presets the id (the Pastell API deposits its drafts under their `id_d`)."""
        if flow not in flow_names():
            raise DepositRefused(422, "unknown_flow", f"Flux inconnu / unknown flow {flow!r}; flows: {', '.join(flow_names())}")
        if not is_valid_siren(siren):
            raise DepositRefused(422, "invalid_siren", f"SIREN invalide (9 chiffres, clé de Luhn) / invalid SIREN {siren!r}")
        check_metadata_text(metadata)
        async with self.store.sessions() as session:
            coll = await session.get(Collectivite, siren)
            existing = await self._by_idempotency(session, actor, idempotency_key)
        if existing is not None:
            return Deposited(existing, created=False)
        if coll is None:
            raise DepositRefused(404, "unknown_collectivite", f"Collectivité inconnue / unknown collectivité {siren}")
        if sum(1 for u in uploads if u.role == "annexe") > self.settings.max_annexes:
            raise DepositRefused(422, "too_many_annexes", f"Trop d'annexes / at most {self.settings.max_annexes} annexes")
        names = [u.name for u in uploads]
        if len(set(names)) != len(names):
            raise DepositRefused(422, "duplicate_file_name", "Nom de fichier en double / two files have the same name")

        definition = load_flow(flow)
        if definition.batch:
            raise DepositRefused(422, "batch_flow", f"Le flux {flow} se dépose par lot (manifest + fichiers) / {flow} takes a batch")
        max_bytes = definition.max_file_mb * 1024 * 1024 if definition.max_file_mb else self.settings.max_file_bytes
        seal_for = siren if definition.encrypted else None
        stored = [await self._store(u, max_bytes, seal_for) for u in uploads]
        meta = metadata
        context = DepositContext(
            siren=siren, classification_xml=coll.classification_xml,
            options=connectors_of(coll).flow_options(flow),
            path=self.blobs.path(stored[0][1].sha256),
        )
        for dotted in definition.deposit_checks:
            meta = await asyncio.to_thread(resolve(dotted), meta, stored[0][0], [s[0] for s in stored[1:]], context)
        for info, ref in stored:
            await asyncio.to_thread(self.check_content, info, ref, sealed=seal_for is not None)

        business_key = str(meta[definition.business_key]) if definition.business_key else None
        if business_key is not None:
            async with self.store.sessions() as session:
                if await self._by_business_key(session, flow, siren, business_key):
                    raise _duplicate(definition.business_key or "", business_key)

        doc_id = document_id or str(uuid.uuid4())
        try:
            async with self.store.transaction() as session:
                doc = Document(id=doc_id, flow=flow, siren=siren, state="deposited", meta=meta,
                               api_key_id=actor, idempotency_key=idempotency_key, business_key=business_key)
                session.add(doc)
                rows = [FileRow(document_id=doc_id, role=info.role, name=info.name, size=ref.size,
                                sha256=ref.sha256, media_type=info.media_type) for info, ref in stored]
                session.add_all(rows)
                await session.flush()
                entry = await journal.append(session, doc_id, "deposited", "deposited",
                                             {"by": actor, "files": len(stored)})
                await moves.announce(session, doc, entry)
                emit_event(session, Event(type="deposited", document_id=doc_id, siren=siren))
        except IntegrityError:
            # A concurrent deposit won the race: same Idempotency-Key (answer with its document)
            # or same business key (refuse).
            async with self.store.sessions() as session:
                existing = await self._by_idempotency(session, actor, idempotency_key)
            if existing is not None:
                return Deposited(existing, created=False)
            raise _duplicate(definition.business_key or "", business_key or "")
        return Deposited(doc_id, created=True, written=Written(doc, rows, entry))

    async def store_upload(self, upload: Upload, max_bytes: int,
                           seal_for: str | None = None) -> tuple[DepositFile, BlobRef]:
        """One file checked and stored as a deposit's are (name, size, emptiness, sniffed type);
        another path that takes files from outside (a reply to the préfecture) uses it too, then
        `check_content` once it has checked what the bytes are."""
        return await self._store(upload, max_bytes, seal_for)

    def check_content(self, info: DepositFile, ref: BlobRef, *, sealed: bool) -> None:
        """A stored PDF or XML file is parsed, not only sniffed (SchemaError: `pdf_corrupt`…)."""
        source = self.blobs.get(ref.sha256) if sealed else self.blobs.path(ref.sha256)
        if info.media_type == "application/pdf":
            check_pdf(source, info.name)
        elif info.media_type == "application/xml":
            check_xml_stream(source, info.name)

    async def _store(self, upload: Upload, max_bytes: int, seal_for: str | None = None) -> tuple[DepositFile, BlobRef]:
        name = check_file_name(upload.name)
        head = bytearray()

        def chunks() -> Iterable[bytes]:
            for chunk in upload.chunks:
                if len(head) < 1024:
                    head.extend(chunk[: 1024 - len(head)])
                yield chunk

        try:
            if seal_for:  # personal data: sealed with the collectivité's key (path= then holds ciphertext)
                ref = await asyncio.to_thread(self.blobs.put_sealed_stream, chunks(), seal_for, max_bytes=max_bytes)
            else:
                ref = await asyncio.to_thread(self.blobs.put_stream, chunks(), max_bytes=max_bytes)
        except BlobTooLarge:
            raise DepositRefused(413, "file_too_large", f"Fichier trop gros / {name!r} is larger than {max_bytes} bytes")
        if ref.size == 0:
            raise DepositRefused(422, "empty_file", f"Fichier vide / {name!r} is empty")
        # The stored media type is what the bytes are, not what the client claimed.
        media_type = sniff_media_type(bytes(head)) or upload.content_type or "application/octet-stream"
        return DepositFile(name=name, role=upload.role, media_type=media_type, size=ref.size, head=bytes(head)), ref

    @staticmethod
    async def _by_idempotency(session: Any, actor: str, idempotency_key: str | None) -> str | None:
        if not idempotency_key:
            return None
        return (await session.execute(
            select(Document.id).where(Document.api_key_id == actor, Document.idempotency_key == idempotency_key)
        )).scalar_one_or_none()

    @staticmethod
    async def _by_business_key(session: Any, flow: str, siren: str, value: str) -> str | None:
        return (await session.execute(
            select(Document.id).where(Document.flow == flow, Document.siren == siren, Document.business_key == value)
        )).scalar_one_or_none()


def _duplicate(field: str, value: str) -> DepositRefused:
    return DepositRefused(409, f"duplicate_{field}",
                          f"Un document portant le même {field} existe déjà / a document with {field}={value!r} already exists")
