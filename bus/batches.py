"""Accepting a batch (a month's payslips): the manifest and every PDF are checked first; then the
files are stored (sealed when the flow is encrypted) and ONE transaction creates the batch and
one document per line, each with its first journal entry and outbox event. A refusal stores
nothing the database references: the batch is accepted whole or not at all.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bus import moves
from bus.blobs import BlobStore
from bus.config import Settings
from bus.deposits import DepositRefused, Upload
from bus.flows.definition import FlowDefinition, flow_names, load_flow, resolve
from bus.metrics import observe_deposit
from bus.store import journal
from bus.store.db import Store
from bus.store.models import Batch, BatchDocument, Collectivite, Document
from bus.store.models import File as FileRow
from bus.store.outbox import emit_event
from schemas.deposit import check_file_name, check_metadata_text, sniff_media_type
from schemas.events import Event
from schemas.pdf import check_pdf
from schemas.rh.metadata import parse_batch_metadata
from schemas.siren import is_valid_siren

MAX_BATCH_BYTES = 1 << 30


@dataclass
class BatchDeposited:
    batch_id: str
    documents: list[tuple[str, str]]  # (matricule, document id), in manifest order
    created: bool


class BatchDepositor:
    def __init__(self, store: Store, blobs: BlobStore, settings: Settings) -> None:
        self.store, self.blobs, self.settings = store, blobs, settings

    async def deposit(self, *, flow: str, **kwargs: Any) -> BatchDeposited:
        try:
            result = await self._deposit(flow=flow, **kwargs)
        except Exception:
            observe_deposit(flow, False)
            raise
        if result.created:
            observe_deposit(flow, True)
        return result

    async def _deposit(self, *, flow: str, siren: str, metadata: dict[str, Any], manifest: Upload | None,
                       payslips: list[Upload], actor: str, idempotency_key: str | None = None) -> BatchDeposited:
        definition = _batch_flow(flow)
        if not is_valid_siren(siren):
            raise DepositRefused(422, "invalid_siren", f"SIREN invalide / invalid SIREN {siren!r}")
        async with self.store.sessions() as session:
            earlier = await self._by_idempotency(session, actor, idempotency_key)
            if earlier is not None:
                return earlier
            if await session.get(Collectivite, siren) is None:
                raise DepositRefused(404, "unknown_collectivite", f"Collectivité inconnue / unknown collectivité {siren}")
        check_metadata_text(metadata)
        periode = parse_batch_metadata(metadata).periode
        if manifest is None:
            raise DepositRefused(422, "manifest_missing", "Manifeste absent / a batch needs a 'manifest' file")
        names = [check_file_name(u.name) for u in payslips]
        if len(set(names)) != len(names):
            raise DepositRefused(422, "duplicate_file_name", "Nom de fichier en double / two payslips have the same name")
        manifest_bytes = await asyncio.to_thread(_read, manifest.chunks, 10 * 1024 * 1024)
        lines = resolve(definition.batch or "")(manifest_bytes, periode, names)
        max_bytes = (definition.max_file_mb or 20) * 1024 * 1024
        pdfs = await asyncio.to_thread(_read_pdfs, payslips, names, max_bytes)

        keys = [f"{periode}/{line.matricule}" for line in lines]
        async with self.store.sessions() as session:
            taken = (await session.execute(
                select(func.count()).select_from(Document)
                .where(Document.flow == flow, Document.siren == siren, Document.business_key.in_(keys))
            )).scalar_one()
        if taken:
            raise DepositRefused(409, "duplicate_payslip",
                                 f"{taken} bulletin(s) de {periode} déjà déposé(s) / already deposited for this period")

        seal_for = siren if definition.encrypted else None
        refs = await asyncio.to_thread(lambda: [self.blobs.put(pdfs[line.fichier], seal_for=seal_for) for line in lines])
        batch_id = str(uuid.uuid4())
        documents = [(line.matricule, str(uuid.uuid4())) for line in lines]
        try:
            await self._record(flow, siren, periode, lines, keys, refs, batch_id, documents, actor, idempotency_key)
        except IntegrityError:
            # A concurrent deposit won the race: same Idempotency-Key (answer with it) or same month.
            async with self.store.sessions() as session:
                earlier = await self._by_idempotency(session, actor, idempotency_key)
            if earlier is not None:
                return earlier
            raise DepositRefused(409, "duplicate_payslip", f"Bulletins de {periode} déjà déposés / already deposited") from None
        return BatchDeposited(batch_id, documents, created=True)

    async def _record(self, flow: str, siren: str, periode: str, lines: list[Any], keys: list[str], refs: list[Any],
                      batch_id: str, documents: list[tuple[str, str]], actor: str, idempotency_key: str | None) -> None:
        async with self.store.transaction() as session:
            session.add(Batch(id=batch_id, flow=flow, siren=siren, periode=periode, size=len(lines),
                              api_key_id=actor, idempotency_key=idempotency_key))
            rows: dict[str, Document] = {}
            for line, key, ref, (_, doc_id) in zip(lines, keys, refs, documents):
                meta = {"periode": periode, "matricule": line.matricule, "nom": line.nom, "prenom": line.prenom,
                        "coffre": line.coffre, "batch_id": batch_id, "objet": f"Bulletin de paie {periode}"}
                rows[doc_id] = Document(id=doc_id, flow=flow, siren=siren, state="deposited", meta=meta,
                                        api_key_id=actor, business_key=key)
                session.add(rows[doc_id])
            await session.flush()  # the rows below reference the batch and the documents
            for line, ref, (_, doc_id) in zip(lines, refs, documents):
                session.add(FileRow(document_id=doc_id, role="document", name=line.fichier, size=ref.size,
                                    sha256=ref.sha256, media_type="application/pdf"))
                session.add(BatchDocument(batch_id=batch_id, document_id=doc_id, matricule=line.matricule))
            await session.flush()
            for _, doc_id in documents:
                entry = await journal.append(session, doc_id, "deposited", "deposited", {"by": actor, "batch": batch_id})
                await moves.announce(session, rows[doc_id], entry)  # live counters and webhooks, as every deposit
                emit_event(session, Event(type="deposited", document_id=doc_id, siren=siren))

    async def _by_idempotency(self, session: Any, actor: str, idempotency_key: str | None) -> BatchDeposited | None:
        if not idempotency_key:
            return None
        batch = (await session.execute(
            select(Batch).where(Batch.api_key_id == actor, Batch.idempotency_key == idempotency_key)
        )).scalar_one_or_none()
        if batch is None:
            return None
        rows = (await session.execute(
            select(BatchDocument.matricule, BatchDocument.document_id).where(BatchDocument.batch_id == batch.id)
        )).all()
        return BatchDeposited(batch.id, [(m, d) for m, d in rows], created=False)


def _batch_flow(flow: str) -> FlowDefinition:
    if flow not in flow_names():
        raise DepositRefused(422, "unknown_flow", f"Flux inconnu / unknown flow {flow!r}")
    definition = load_flow(flow)
    if not definition.batch:
        raise DepositRefused(422, "not_a_batch_flow", f"Le flux {flow} ne prend pas de lot / {flow} takes no batch")
    return definition


def _read(chunks: Iterable[bytes], max_bytes: int) -> bytes:
    data = bytearray()
    for chunk in chunks:
        data.extend(chunk)
        if len(data) > max_bytes:
            raise DepositRefused(413, "file_too_large", f"Fichier trop gros / a file is larger than {max_bytes} bytes")
    return bytes(data)


def _read_pdfs(payslips: list[Upload], names: list[str], max_bytes: int) -> dict[str, bytes]:
    pdfs: dict[str, bytes] = {}
    total = 0
    for upload, name in zip(payslips, names):
        data = _read(upload.chunks, max_bytes)
        total += len(data)
        if total > MAX_BATCH_BYTES:
            raise DepositRefused(413, "batch_too_large", f"Lot trop gros / a batch holds at most {MAX_BATCH_BYTES} bytes")
        if sniff_media_type(data[:1024]) != "application/pdf":
            raise DepositRefused(415, "payslip_not_pdf", f"Le bulletin {name!r} n'est pas un PDF / is not a PDF")
        check_pdf(data, name)
        pdfs[name] = data
    return pdfs
