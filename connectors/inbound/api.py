"""REST deposit API (`/api/v1`).

A deposit is accepted only when everything is checked and stored: files in the blob store, then
ONE transaction with the document, its files, its first journal entry and the outbox event. Only
then the answer is 201. Every refusal is `{"error": {"code", "message"}}` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Header, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from bus.blobs import BlobStore, BlobTooLarge
from bus.config import Settings
from bus.flows.definition import flow_names, load_flow, resolve
from bus.store import journal
from bus.store.apikeys import find_key, in_scope
from bus.store.db import Store
from bus.store.models import ApiKey, Collectivite, Document, File as FileRow, JournalEntry
from bus.store.outbox import emit_event
from connectors.inbound.views import DocumentView, document_view
from schemas.deposit import DepositContext, DepositFile, sniff_media_type
from schemas.errors import SchemaError
from schemas.events import Event
from schemas.siren import is_valid_siren

CHUNK = 1 << 16


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def api_key(request: Request, authorization: Annotated[str | None, Header()] = None) -> ApiKey:
    if not authorization:
        raise ApiError(401, "missing_api_key", "Clé d'API absente / missing API key (Authorization: Bearer <key>)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "invalid_api_key", "Clé d'API invalide / invalid API key")
    async with request.app.state.store.sessions() as session:
        key = await find_key(session, token.strip())
    if key is None:
        raise ApiError(401, "invalid_api_key", "Clé d'API invalide / invalid API key")
    return key


Key = Annotated[ApiKey, Depends(api_key)]

SCHEMA_ERROR_STATUS = {"document_not_pdf": 415, "annexe_bad_type": 415, "file_too_large": 413}


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    store = store or Store(settings.db_url)
    blobs = BlobStore(settings.blob_dir)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await store.migrate()
        yield
        await store.close()

    app = FastAPI(title="dematbus", version="0.1.0", lifespan=lifespan,
                  description="Deposit documents (ACTES…) and follow them to the préfecture and the archive.")
    app.state.store = store

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(SchemaError)
    async def _schema_error(_: Request, exc: SchemaError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=SCHEMA_ERROR_STATUS.get(exc.code, 422))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(422, "invalid_request",
                              f"Requête invalide / invalid request: {where} {first.get('msg', '')}".strip())

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/documents", status_code=201, response_model=DocumentView)
    async def deposit(
        key: Key,
        flow: Annotated[str, Form()],
        siren: Annotated[str, Form()],
        metadata: Annotated[str, Form()],
        document: Annotated[UploadFile, File()],
        annexes: Annotated[list[UploadFile] | None, File()] = None,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> Any:
        if not {"depositor", "admin"} & set(key.roles):
            raise ApiError(403, "forbidden_role", "Cette clé ne peut pas déposer / this key cannot deposit documents")
        if flow not in flow_names():
            raise ApiError(422, "unknown_flow", f"Flux inconnu / unknown flow {flow!r}; flows: {', '.join(flow_names())}")
        if not is_valid_siren(siren):
            raise ApiError(422, "invalid_siren", f"SIREN invalide (9 chiffres, clé de Luhn) / invalid SIREN {siren!r}")
        if not in_scope(key, siren):
            raise ApiError(403, "siren_out_of_scope",
                           f"Cette clé n'est pas autorisée pour le SIREN {siren} / key not allowed for this collectivité")
        async with store.sessions() as session:
            coll = await session.get(Collectivite, siren)
            if idempotency_key:
                existing = await _by_idempotency(session, key.id, idempotency_key)
                if existing is not None:
                    return await _view(session, existing)
        if coll is None:
            raise ApiError(404, "unknown_collectivite", f"Collectivité inconnue / unknown collectivité {siren}")
        annexes = annexes or []
        if len(annexes) > settings.max_annexes:
            raise ApiError(422, "too_many_annexes", f"Trop d'annexes / at most {settings.max_annexes} annexes")
        try:
            raw_meta = json.loads(metadata)
        except json.JSONDecodeError as exc:
            raise ApiError(422, "invalid_metadata_json", f"Métadonnées JSON illisibles / metadata is not JSON: {exc}")
        if not isinstance(raw_meta, dict):
            raise ApiError(422, "invalid_metadata_json", "Les métadonnées doivent être un objet JSON / metadata must be an object")

        stored = [await _store_upload(blobs, upload, "document", settings.max_file_bytes) for upload in [document]]
        stored += [await _store_upload(blobs, upload, "annexe", settings.max_file_bytes) for upload in annexes]
        definition = load_flow(flow)
        check = resolve(definition.deposit_check) if definition.deposit_check else None
        context = DepositContext(
            siren=siren, classification_xml=coll.classification_xml,
            options=((coll.connectors or {}).get("flows") or {}).get(flow, {}), path=blobs.path(stored[0][1].sha256),
        )
        meta = (await asyncio.to_thread(check, raw_meta, stored[0][0], [s[0] for s in stored[1:]], context)
                if check else raw_meta)

        business_key = str(meta[definition.business_key]) if definition.business_key else None
        if business_key is not None:
            async with store.sessions() as session:
                if await _by_business_key(session, flow, siren, business_key):
                    raise _duplicate(definition.business_key or "", business_key)

        doc_id = str(uuid.uuid4())
        try:
            async with store.transaction() as session:
                doc = Document(id=doc_id, flow=flow, siren=siren, state="deposited", meta=meta,
                               api_key_id=key.id, idempotency_key=idempotency_key, business_key=business_key)
                session.add(doc)
                names: set[str] = set()
                for info, ref in stored:
                    if info.name in names:
                        raise ApiError(422, "duplicate_file_name", f"Nom de fichier en double / duplicate file name {info.name!r}")
                    names.add(info.name)
                    session.add(FileRow(document_id=doc_id, role=info.role, name=info.name, size=ref.size,
                                        sha256=ref.sha256, media_type=info.media_type))
                await session.flush()
                await journal.append(session, doc_id, "deposited", "deposited",
                                     {"api_key": key.id, "files": len(stored)})
                emit_event(session, Event(type="deposited", document_id=doc_id, siren=siren))
        except IntegrityError:
            # A concurrent deposit won the race: same Idempotency-Key (answer with its document)
            # or same business key (refuse).
            async with store.sessions() as session:
                existing = await _by_idempotency(session, key.id, idempotency_key) if idempotency_key else None
                if existing is not None:
                    return await _view(session, existing)
            raise _duplicate(definition.business_key or "", business_key or "")
        async with store.sessions() as session:
            return await _view(session, doc_id)

    @app.get("/api/v1/documents/{document_id}", response_model=DocumentView)
    async def get_document(document_id: str, key: Key) -> Any:
        async with store.sessions() as session:
            await _readable(session, key, document_id)
            return await _view(session, document_id)

    @app.get("/api/v1/documents")
    async def list_documents(key: Key, siren: str | None = None, state: str | None = None,
                             flow: str | None = None, limit: int = 100) -> dict[str, Any]:
        query = select(Document).order_by(Document.created_at.desc()).limit(min(limit, 1000))
        if siren:
            query = query.where(Document.siren == siren)
        if state:
            query = query.where(Document.state == state)
        if flow:
            query = query.where(Document.flow == flow)
        if "*" not in key.sirens:
            query = query.where(Document.siren.in_(key.sirens))
        async with store.sessions() as session:
            docs = (await session.execute(query)).scalars().all()
        return {"documents": [{"id": d.id, "flow": d.flow, "siren": d.siren, "state": d.state,
                               "created_at": d.created_at.isoformat(), "updated_at": d.updated_at.isoformat()}
                              for d in docs]}

    @app.get("/api/v1/documents/{document_id}/files/{name}")
    async def get_file(document_id: str, name: str, key: Key) -> StreamingResponse:
        async with store.sessions() as session:
            await _readable(session, key, document_id)
            row = (await session.execute(
                select(FileRow).where(FileRow.document_id == document_id, FileRow.name == name)
            )).scalar_one_or_none()
        if row is None:
            raise ApiError(404, "file_not_found", f"Fichier introuvable / no file {name!r} in this document")
        return StreamingResponse(blobs.iter_chunks(row.sha256), media_type=row.media_type,
                                 headers={"Content-Disposition": f'attachment; filename="{row.name}"',
                                          "X-Content-SHA256": row.sha256})

    @app.get("/api/v1/flows")
    async def flows(_: Key) -> dict[str, Any]:
        return {"flows": [load_flow(n).model_dump() for n in flow_names()]}

    return app


async def _store_upload(blobs: BlobStore, upload: UploadFile, role: str, max_bytes: int) -> tuple[DepositFile, Any]:
    name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    if not name or name.startswith(".") or len(name) > 200:
        raise ApiError(422, "invalid_file_name", f"Nom de fichier invalide / invalid file name {upload.filename!r}")
    head = await upload.read(1024)
    await upload.seek(0)

    def chunks() -> Any:
        while chunk := upload.file.read(CHUNK):
            yield chunk

    try:
        ref = await asyncio.to_thread(blobs.put_stream, chunks(), max_bytes=max_bytes)
    except BlobTooLarge:
        raise ApiError(413, "file_too_large", f"Fichier trop gros / {name!r} is larger than {max_bytes} bytes")
    if ref.size == 0:
        raise ApiError(422, "empty_file", f"Fichier vide / {name!r} is empty")
    # The stored media type is what the bytes are, not what the client claimed.
    media_type = sniff_media_type(head) or upload.content_type or "application/octet-stream"
    return DepositFile(name=name, role=role, media_type=media_type, size=ref.size, head=head), ref


def _duplicate(field: str, value: str) -> ApiError:
    return ApiError(409, f"duplicate_{field}",
                    f"Un document portant le même {field} existe déjà / a document with {field}={value!r} already exists")


async def _by_business_key(session: Any, flow: str, siren: str, value: str) -> str | None:
    return (await session.execute(
        select(Document.id).where(Document.flow == flow, Document.siren == siren, Document.business_key == value)
    )).scalar_one_or_none()


async def _by_idempotency(session: Any, key_id: str, idempotency_key: str) -> str | None:
    return (await session.execute(
        select(Document.id).where(Document.api_key_id == key_id, Document.idempotency_key == idempotency_key)
    )).scalar_one_or_none()


async def _readable(session: Any, key: ApiKey, document_id: str) -> Document:
    doc = await session.get(Document, document_id)
    # Another collectivité's document answers exactly like a missing one: no existence leak.
    if doc is None or not in_scope(key, doc.siren):
        raise ApiError(404, "document_not_found", f"Document introuvable / no document {document_id}")
    return doc


async def _view(session: Any, document_id: str) -> DocumentView:
    doc = await session.get(Document, document_id, populate_existing=True)
    files = (await session.execute(select(FileRow).where(FileRow.document_id == document_id).order_by(FileRow.id))).scalars().all()
    timeline = (await session.execute(
        select(JournalEntry).where(JournalEntry.document_id == document_id).order_by(JournalEntry.seq)
    )).scalars().all()
    return document_view(doc, list(files), list(timeline))
