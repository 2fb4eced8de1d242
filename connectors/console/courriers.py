"""The préfecture's letters in the console (bus/courriers): on the acte's page each message with its
files and reply, a « Répondre » form (kind, the letter, the pièces with their typologies) and
« Classer sans réponse »; the inbox of the messages waiting for an answer (`/console/courriers`).
Replies and closings go through bus/courriers/replies.py, as the API's do; a refusal is an error
page with its code."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from bus.courriers import messages, rules
from bus.courriers.replies import (
    REPLY_ROLES,
    ReplyRefused,
    ReplyRequest,
    close_message,
    request_reply,
)
from bus.deposits import Upload
from bus.store.models import Collectivite, Document
from bus.store.models import File as FileRow
from connectors.console.access import DOCUMENT_ROLES
from connectors.console.deposit_forms import Group, Option
from connectors.console.session import csrf_ok
from connectors.console.web import (
    ConsoleError,
    ConsoleRoute,
    render,
    require,
    templates,
)
from connectors.inbound.batches import shown_metadata
from connectors.inbound.uploads import as_upload
from connectors.inbound.views import PrefectureMessageView, message_view
from schemas.actes.classification import Classification
from schemas.actes.naming import NATURES

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
ANNEX_SLOTS = 3  # pièces sent with a 3-4 from the console (the API takes any number)
FLASH = {"repondu": "Réponse enregistrée : elle part à la préfecture.", "classe": "Message classé sans réponse."}

templates.env.globals["courrier_state"] = lambda state: rules.STATE_LABELS.get(state, state)
templates.env.globals["reply_kind"] = lambda kind: rules.KIND_LABELS.get(kind, kind)


def typology_choices(coll: Collectivite | None, nature: int) -> tuple[Group, ...]:
    """The typologies of the acte's nature in the collectivité's classification, its default first."""
    default = NATURES[nature].typologie if nature in NATURES else "99_AU"
    found = Classification.parse(coll.classification_xml).natures.get(nature) if coll and coll.classification_xml else None
    options = tuple(Option(code, f"{code} {text}") for code, text in (found.typologies if found else ()))
    ordered = sorted(options, key=lambda o: o.value != default) or [Option(default, default)]
    return (Group("", tuple(ordered)),)


async def page_context(db: AsyncSession, doc: Document, may_reply: bool, personal: bool) -> dict[str, Any]:
    """What the acte's page shows of its messages (connectors/console/templates/_courriers.html)."""
    listed = await messages.of_document(db, doc.id)
    if not listed:
        return {"courriers": []}
    files = {f.name: f for f in (await db.execute(select(FileRow).where(FileRow.document_id == doc.id))).scalars()}
    coll = await db.get(Collectivite, doc.siren)
    views: list[PrefectureMessageView] = [message_view(m, files, personal) for m in listed]
    return {"courriers": views, "may_reply": may_reply, "annex_slots": range(1, ANNEX_SLOTS + 1),
            "typologies": typology_choices(coll, int((doc.meta or {}).get("nature") or 0))}


@router.get("/courriers")
async def inbox(request: Request) -> Response:
    session = await require(request, *DOCUMENT_ROLES)
    async with request.app.state.store.sessions() as db:
        rows = await messages.listed(db, session.key, rules.RECEIVED)
        names = dict((await db.execute(select(Collectivite.siren, Collectivite.name))).tuples().all())
    return render(request, "courriers.html", rows=[(message_view(m, {}), d, shown_metadata(session.key, d))
                                                   for m, d in rows], names=names)


def _file(value: Any, role: str) -> Upload | None:
    return as_upload(value, role) if isinstance(value, UploadFile) and value.filename else None  # type: ignore[arg-type]


@router.post("/documents/{document_id}/courriers/{message_id}/repondre")
async def reply(request: Request, document_id: str, message_id: int) -> Response:
    session = await require(request, *REPLY_ROLES)
    try:
        data = await request.form(max_files=ANNEX_SLOTS + 1, max_fields=30)
    except HTTPException as exc:
        raise ConsoleError(400, "invalid_form", f"Formulaire illisible : {exc.detail}") from None
    try:
        if not csrf_ok(session, str(data.get("csrf") or "")):
            raise ConsoleError(403, "invalid_csrf_token", "Formulaire expiré ou d'une autre origine : rechargez la page.")
        annexes, typologies = [], [str(data.get("typologie_document") or "")]
        for slot in range(1, ANNEX_SLOTS + 1):
            annexe = _file(data.get(f"annexe_{slot}"), "annexe")
            if annexe is not None:
                annexes.append(annexe)
                typologies.append(str(data.get(f"typologie_{slot}") or ""))
        default = await _default_typology(request, document_id)
        wanted = ReplyRequest(kind=str(data.get("kind") or ""), document=_file(data.get("document"), "document"),
                              annexes=annexes, typologies=[t or default for t in typologies])
        await request_reply(request.app.state.store, request.app.state.depositor, session.key, document_id,
                            message_id, wanted)
    except ReplyRefused as exc:
        raise ConsoleError(exc.status, exc.code, exc.message) from None
    finally:
        await data.close()
    return RedirectResponse(f"/console/documents/{quote(document_id)}?courrier=repondu#courrier-{message_id}",
                            status_code=303)


async def _default_typology(request: Request, document_id: str) -> str:
    async with request.app.state.store.sessions() as db:
        doc = await db.get(Document, document_id)
    nature = int(((doc.meta if doc else None) or {}).get("nature") or 0)
    return NATURES[nature].typologie if nature in NATURES else "99_AU"


@router.post("/documents/{document_id}/courriers/{message_id}/classer")
async def close(request: Request, document_id: str, message_id: int) -> Response:
    session = await require(request, *REPLY_ROLES)
    form = await request.form(max_files=0, max_fields=5)
    if not csrf_ok(session, str(form.get("csrf") or "")):
        raise ConsoleError(403, "invalid_csrf_token", "Formulaire expiré ou d'une autre origine : rechargez la page.")
    try:
        await close_message(request.app.state.store, session.key, document_id, message_id)
    except ReplyRefused as exc:
        raise ConsoleError(exc.status, exc.code, exc.message) from None
    return RedirectResponse(f"/console/documents/{quote(document_id)}?courrier=classe#courrier-{message_id}",
                            status_code=303)
