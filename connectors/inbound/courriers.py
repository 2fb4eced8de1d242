"""The préfecture's letters about an acte and the replies (bus/courriers), over the REST API.

- `GET  /api/v1/prefecture-messages?state=received`: the messages of the key's collectivités
  (the operators' inbox: waiting for an answer first, nearest due date first);
- `GET  /api/v1/documents/{id}/prefecture-messages[/{message_id}]`: an acte's messages (also in
  `GET /api/v1/documents/{id}`, `prefecture_messages`);
- `POST /api/v1/documents/{id}/prefecture-messages/{message_id}/reply`, multipart: `kind` =
  `pieces` (3-4: `document` + optional `annexes`), `refus` (3-3 / 4-3: `document`, the letter
  that refuses) or `reponse` (2-2 / 4-4: `document`); `typologies` repeated, the document's then
  each annexe's (default: the acte's nature's). 202: recorded, the worker sends it;
- `POST …/{message_id}/close`: closed without a reply (a courrier simple that wants none, a déféré
  taken note of).

Another collectivité's acte answers 404 like a missing one; a key of the collectivité without the
depositor or operator role 403. A message that takes no reply (5-1), or no more (closed,
answered), 409 with its code.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from sqlalchemy import select

from bus.courriers import messages, rules
from bus.courriers.replies import (
    ReplyRefused,
    ReplyRequest,
    close_message,
    load_document,
    load_message,
    request_reply,
)
from bus.store.models import Document
from bus.store.models import File as FileRow
from connectors.inbound import batches
from connectors.inbound.auth import ApiError, Key
from connectors.inbound.batches import may_read_personal_data
from connectors.inbound.uploads import as_upload
from connectors.inbound.views import PrefectureMessageView, message_view

router = APIRouter(prefix="/api/v1", tags=["préfecture"])
BASE = "/documents/{document_id}/prefecture-messages"


async def _views(request: Request, key: Key, doc: Document) -> list[PrefectureMessageView]:
    async with request.app.state.store.sessions() as session:
        listed = await messages.of_document(session, doc.id)
        files = {f.name: f for f in (await session.execute(
            select(FileRow).where(FileRow.document_id == doc.id))).scalars()}
    return [message_view(m, files, may_read_personal_data(key, doc)) for m in listed]


async def _refusing(call: Any) -> Any:
    try:
        return await call
    except ReplyRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None


@router.get("/prefecture-messages")
async def inbox(request: Request, key: Key, state: str = rules.RECEIVED, limit: int = 500) -> dict[str, Any]:
    if state not in rules.STATE_LABELS:
        raise ApiError(422, "unknown_state", f"État inconnu / state must be one of {', '.join(rules.STATE_LABELS)}")
    async with request.app.state.store.sessions() as session:
        rows = await messages.listed(session, key, state, min(max(limit, 1), 1000))
    return {"messages": [{"document_id": d.id, "siren": d.siren, "flow": d.flow,
                          "numero_interne": (d.meta or {}).get("numero_interne"),
                          "objet": batches.shown_metadata(key, d).get("objet"),
                          **message_view(m, {}, may_read_personal_data(key, d)).model_dump(mode="json", exclude={"files"})}
                         for m, d in rows]}


@router.get(BASE)
async def of_document(document_id: str, request: Request, key: Key) -> dict[str, Any]:
    doc = await _refusing(load_document(request.app.state.store, key, document_id))
    return {"prefecture_messages": [v.model_dump(mode="json") for v in await _views(request, key, doc)]}


@router.get(BASE + "/{message_id}")
async def one(document_id: str, message_id: int, request: Request, key: Key) -> dict[str, Any]:
    doc, _, _ = await _refusing(load_message(request.app.state.store, key, document_id, message_id))
    view = next(v for v in await _views(request, key, doc) if v.id == message_id)
    return view.model_dump(mode="json")


@router.post(BASE + "/{message_id}/reply", status_code=202)
async def reply(
    document_id: str, message_id: int, request: Request, key: Key,
    kind: Annotated[str, Form(max_length=20)],
    document: Annotated[UploadFile | None, File()] = None,
    annexes: Annotated[list[UploadFile] | None, File()] = None,
    typologies: Annotated[list[str] | None, Form()] = None,
) -> dict[str, Any]:
    wanted = ReplyRequest(kind=kind, document=as_upload(document, "document") if document else None,
                          annexes=[as_upload(a, "annexe") for a in annexes or []], typologies=list(typologies or []))
    made = await _refusing(request_reply(request.app.state.store, request.app.state.depositor, key, document_id, message_id,
                                         wanted))
    return {"id": message_id, "document_id": document_id, "reply": {"kind": made.kind, "code": made.code,
                                                                     "status": made.status}}


@router.post(BASE + "/{message_id}/close")
async def close(document_id: str, message_id: int, request: Request, key: Key) -> dict[str, Any]:
    await _refusing(close_message(request.app.state.store, key, document_id, message_id))
    return {"id": message_id, "document_id": document_id, "state": rules.CLOSED}
