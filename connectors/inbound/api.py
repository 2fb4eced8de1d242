"""REST deposit API (`/api/v1`).

Authentication and scope are checked here; accepting the document is `bus.deposits.Depositor`'s
job (shared with the watched folders). The answer is 201 only once the document is stored, 200
for a retried deposit with the same `Idempotency-Key`. Every refusal is
`{"error": {"code", "message"}}` with a 4xx status.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException

from bus.batches import BatchDepositor
from bus.blobs import BlobStore
from bus.config import Settings
from bus.courriers import messages as prefecture_messages
from bus.deposits import Depositor, DepositRefused
from bus.flows.definition import all_states, flow_names, load_flow
from bus.health.api import health_router
from bus.scope import in_scope, restrict
from bus.store.db import Store
from bus.store.models import ApiKey, Document, JournalEntry
from bus.store.models import File as FileRow
from bus.store.throttle import Throttle
from connectors import console
from connectors.inbound import (
    annulation,
    batches,
    counters,
    courriers,
    groups,
    operations,
    pastell,
    publication,
    reports,
    webhooks,
)
from connectors.inbound.auth import (
    ApiError,
    Key,
    error_response,
    require_role,
    require_scope,
)
from connectors.inbound.headers import SecurityHeaders
from connectors.inbound.uploads import as_upload as _upload
from connectors.inbound.views import DocumentView, document_view
from schemas.errors import SchemaError
from schemas.siren import is_valid_siren

SCHEMA_ERROR_STATUS = {"document_not_pdf": 415, "annexe_bad_type": 415, "file_too_large": 413}


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    store = store or Store(settings.db_url)
    blobs = BlobStore(settings.blob_dir, settings.keys_dir)
    depositor = Depositor(store, blobs, settings)
    batch_depositor = BatchDepositor(store, blobs, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await store.migrate()
        yield
        await store.close()

    app = FastAPI(title="dematbus", version="0.1.0", lifespan=lifespan,
                  description="Deposit documents (ACTES…) and follow them to the préfecture and the archive.")
    app.state.store = store
    app.state.throttle = Throttle(store, limit=settings.auth_fail_limit, window=settings.auth_fail_window,
                                  lockout=settings.auth_lockout)
    app.add_middleware(SecurityHeaders)
    app.state.depositor = depositor
    app.include_router(operations.router)
    app.include_router(reports.router)
    app.include_router(batches.router)
    app.include_router(counters.router)
    app.include_router(groups.router)
    app.include_router(webhooks.router)
    app.include_router(annulation.router)
    app.include_router(courriers.router)
    console.mount(app, settings, blobs)
    pastell.mount(app, store, blobs, depositor, settings)
    publication.mount(app, settings, blobs)
    app.add_route("/metrics", counters.metrics_with_live_counters, include_in_schema=False)
    app.include_router(health_router(settings, store))  # /healthz, /readyz

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

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
        document: Annotated[UploadFile | None, File()] = None,
        annexes: Annotated[list[UploadFile] | None, File()] = None,
        manifest: Annotated[UploadFile | None, File()] = None,
        payslips: Annotated[list[UploadFile] | None, File()] = None,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> Any:
        require_role(key, "depositor", "admin")
        if not is_valid_siren(siren):
            raise ApiError(422, "invalid_siren", f"SIREN invalide (9 chiffres, clé de Luhn) / invalid SIREN {siren!r}")
        require_scope(key, siren)
        try:
            raw_meta = json.loads(metadata)
        except json.JSONDecodeError as exc:
            raise ApiError(422, "invalid_metadata_json", f"Métadonnées JSON illisibles / metadata is not JSON: {exc}")
        except RecursionError:
            raise ApiError(422, "invalid_metadata_json", "Métadonnées JSON trop imbriquées / metadata nests too deep") from None
        if not isinstance(raw_meta, dict):
            raise ApiError(422, "invalid_metadata_json", "Les métadonnées doivent être un objet JSON / metadata must be an object")
        if flow in flow_names() and load_flow(flow).batch:
            return await batches.deposit_batch(
                batch_depositor, key, flow=flow, siren=siren, metadata=raw_meta,
                manifest=_upload(manifest, "manifest") if manifest else None,
                payslips=[_upload(p, "payslip") for p in payslips or []], idempotency_key=idempotency_key)
        if document is None:
            raise ApiError(422, "invalid_request", "Requête invalide / invalid request: body.document Field required")
        uploads = [_upload(document, "document")] + [_upload(a, "annexe") for a in annexes or []]
        try:
            result = await depositor.deposit(flow=flow, siren=siren, metadata=raw_meta, uploads=uploads,
                                             actor=key.id, idempotency_key=idempotency_key)
        except DepositRefused as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None
        if result.written is not None:  # what was just written, as it was written: no read back
            written = result.written
            view = document_view(written.document, written.files, [written.entry])
        else:
            async with store.sessions() as session:
                view = await _view(session, result.document_id)
        return JSONResponse(view.model_dump(mode="json"), status_code=201 if result.created else 200)

    @app.get("/api/v1/documents/{document_id}", response_model=DocumentView)
    async def get_document(document_id: str, key: Key) -> Any:
        async with store.sessions() as session:
            doc = await _readable(session, key, document_id)
            view = await _view(session, document_id, batches.may_read_personal_data(key, doc))
            return view.model_copy(update={"metadata": batches.shown_metadata(key, doc)})

    @app.get("/api/v1/documents")
    async def list_documents(key: Key, siren: Annotated[str | None, Query(max_length=9)] = None,
                             state: Annotated[str | None, Query(max_length=30)] = None,
                             flow: Annotated[str | None, Query(max_length=60)] = None,
                             limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        if siren and not is_valid_siren(siren):
            raise ApiError(422, "invalid_siren", f"SIREN invalide / invalid SIREN {siren!r}")
        if state and state not in all_states():
            raise ApiError(422, "unknown_state", f"État inconnu / unknown state {state!r}")
        if flow and flow not in flow_names():
            raise ApiError(422, "unknown_flow", f"Flux inconnu / unknown flow {flow!r}")
        query = select(Document).order_by(Document.created_at.desc()).limit(limit)
        if siren:
            query = query.where(Document.siren == siren)
        if state:
            query = query.where(Document.state == state)
        if flow:
            query = query.where(Document.flow == flow)
        query = restrict(query, Document.siren, key)
        async with store.sessions() as session:
            docs = (await session.execute(query)).scalars().all()
        return {"documents": [{"id": d.id, "flow": d.flow, "siren": d.siren, "state": d.state,
                               "created_at": d.created_at.isoformat(), "updated_at": d.updated_at.isoformat()}
                              for d in docs]}

    @app.get("/api/v1/documents/{document_id}/files/{name}")
    async def get_file(document_id: str, name: str, key: Key) -> StreamingResponse:
        async with store.sessions() as session:
            batches.require_read_role(key, await _readable(session, key, document_id))
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


async def _readable(session: Any, key: ApiKey, document_id: str) -> Document:
    doc = await session.get(Document, document_id)
    # Another collectivité's document answers exactly like a missing one: no existence leak.
    if doc is None or not in_scope(key, doc.siren):
        raise ApiError(404, "document_not_found", f"Document introuvable / no document {document_id}")
    return doc


async def _view(session: Any, document_id: str, personal: bool = True) -> DocumentView:
    doc = await session.get(Document, document_id, populate_existing=True)
    files = (await session.execute(select(FileRow).where(FileRow.document_id == document_id).order_by(FileRow.id))).scalars().all()
    timeline = (await session.execute(
        select(JournalEntry).where(JournalEntry.document_id == document_id).order_by(JournalEntry.seq)
    )).scalars().all()
    return document_view(doc, list(files), list(timeline), await prefecture_messages.of_document(session, document_id),
                         personal)
