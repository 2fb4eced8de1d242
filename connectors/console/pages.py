"""Operator pages: login, documents list and page, errors inbox, replay (one, or bulk with a dry run)."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from sqlalchemy import select
from starlette.responses import RedirectResponse, Response, StreamingResponse

from bus import replays
from bus.flows.definition import flow_names, load_flow
from bus.replays import OPERATOR_ROLES, ErrorFilter, ReplayRefused
from bus.scope import in_scope
from bus.search import DocumentFilter, search
from bus.store.models import Document, Effect, JournalEntry
from bus.store.models import File as FileRow
from connectors.console import annulation, courriers
from connectors.console.access import (
    CONSOLE_ROLES,
    DOCUMENT_ROLES,
    collectivites,
    landing_page,
)
from connectors.console.session import (
    Session,
    clear_cookie,
    csrf_ok,
    set_cookie,
)
from connectors.console.web import (
    ConsoleError,
    ConsoleRoute,
    render,
    require,
    sessions,
    state_choices,
)
from connectors.inbound.auth import client_address
from connectors.inbound.batches import may_read_personal_data, shown_metadata
from connectors.inbound.views import document_view

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
PER_PAGE = 50
BULK_LIMIT = 500  # a bulk replay lists and replays at most this many documents (one form field each)

Text = Annotated[str | None, Query(max_length=200)]


def _safe_next(target: str | None, session_roles: list[str]) -> str:
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return landing_page(session_roles)


def _check_csrf(session: Session, token: str | None) -> None:
    if not csrf_ok(session, token):
        raise ConsoleError(403, "invalid_csrf_token", "Formulaire expiré ou d'une autre origine : rechargez la page.")


@router.get("/login")
async def login_form(request: Request, next: Text = None) -> Response:
    return render(request, "login.html", next=next or "", error=None)


@router.post("/login")
async def login(request: Request, key: Annotated[str, Form(max_length=200)] = "",
                next: Annotated[str, Form(max_length=500)] = "") -> Response:
    throttle, client = request.app.state.throttle, client_address(request)
    if (wait := await throttle.retry_after("console", client)) is not None:
        response = render(request, "login.html", 429, next=next,
                          error=f"Trop de tentatives échouées : réessayez dans {wait} s.")
        response.headers.update({"X-Error-Code": "too_many_failed_logins", "Retry-After": str(wait)})
        return response
    found = await sessions(request).login(request.app.state.store, key) if key.strip() else None
    if found is None:
        await throttle.failed("console", client)
        response = render(request, "login.html", 401, next=next, error="Clé inconnue ou révoquée.")
        response.headers["X-Error-Code"] = "invalid_api_key"
        return response
    api_key, cookie = found
    if not set(CONSOLE_ROLES) & set(api_key.roles):
        response = render(request, "login.html", 403, next=next,
                          error="Cette clé n'ouvre pas la console (rôles depositor, operator, reporter ou admin).")
        response.headers["X-Error-Code"] = "forbidden_role"
        return response
    response = RedirectResponse(_safe_next(next, api_key.roles), status_code=303)
    set_cookie(response, cookie, secure=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    clear_cookie(response)
    return response


@router.get("/")
async def home(request: Request) -> Response:
    session = await require(request, *CONSOLE_ROLES)
    return RedirectResponse(_safe_next(None, session.key.roles), status_code=303)


def _scope_siren(session: Session, siren: str | None) -> str | None:
    if siren and not in_scope(session.key, siren):
        raise ConsoleError(403, "siren_out_of_scope", f"Cette clé n'est pas autorisée pour le SIREN {siren}.")
    return siren or None


async def _collectivites(request: Request, session: Session) -> list[tuple[str, str]]:
    """(SIREN, name) of the key's collectivités, for the filter's list."""
    return [(c.siren, c.name) for c in await collectivites(request.app.state.store, session.key)]


def _known_flow(flow: str | None) -> str | None:
    if flow and flow not in flow_names():
        raise ConsoleError(422, "unknown_flow", f"Flux inconnu : {flow}")
    return flow or None


@router.get("/documents")
async def documents(request: Request, siren: Text = None, flow: Text = None, state: Text = None,
                    du: Annotated[date | None, Query()] = None, au: Annotated[date | None, Query()] = None,
                    q: Text = None, page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    session = await require(request, *DOCUMENT_ROLES)
    if state and state not in state_choices():
        raise ConsoleError(422, "unknown_state", f"État inconnu : {state}")
    if du and au and du > au:
        raise ConsoleError(422, "invalid_period", "La date de début est après la date de fin.")
    where = DocumentFilter(siren=_scope_siren(session, siren), flow=_known_flow(flow), state=state or None,
                           since=du, until=au, text=q or None)
    found = await search(request.app.state.store, session.key, where, page=page, per_page=PER_PAGE)
    params = {k: v for k, v in {"siren": siren, "flow": flow, "state": state, "du": du, "au": au, "q": q}.items() if v}
    return render(request, "documents.html", found=found, params=params, query=urlencode(params),
                  flows=flow_names(), states=state_choices(), collectivites=await _collectivites(request, session))


async def _document(request: Request, session: Session, document_id: str) -> Document:
    async with request.app.state.store.sessions() as db:
        doc = await db.get(Document, document_id)
    # Another collectivité's document answers exactly like a missing one: no existence leak.
    if doc is None or not in_scope(session.key, doc.siren):
        raise ConsoleError(404, "document_not_found", f"Document introuvable : {document_id}")
    return doc


REFRESH_SECONDS = 5  # a document page refreshes itself (meta refresh) until its state is terminal


@router.get("/documents/{document_id}")
async def document(request: Request, document_id: str) -> Response:
    session = await require(request, *DOCUMENT_ROLES)
    doc = await _document(request, session, document_id)
    async with request.app.state.store.sessions() as db:
        files = list((await db.execute(select(FileRow).where(FileRow.document_id == doc.id).order_by(FileRow.id))).scalars())
        timeline = list((await db.execute(
            select(JournalEntry).where(JournalEntry.document_id == doc.id).order_by(JournalEntry.seq))).scalars())
        effects = list((await db.execute(
            select(Effect).where(Effect.document_id == doc.id).order_by(Effect.generation, Effect.id))).scalars())
        letters = await courriers.page_context(db, doc, session.has(*courriers.REPLY_ROLES),
                                               may_read_personal_data(session.key, doc))
    view = document_view(doc, files, timeline).model_copy(update={"metadata": shown_metadata(session.key, doc)})
    following = not load_flow(doc.flow).is_terminal(doc.state)
    return render(request, "document.html", doc=view, effects=effects, quote=quote,
                  operator=session.has(*OPERATOR_ROLES), can_annul=session.has(*OPERATOR_ROLES) and annulation.available(doc),
                  replayed=request.query_params.get("rejoue"), annulled=request.query_params.get("annulation"),
                  deposited=request.query_params.get("depot"),
                  courrier_flash=courriers.FLASH.get(request.query_params.get("courrier") or ""), **letters,
                  refresh=REFRESH_SECONDS if following and request.query_params.get("suivi") != "0" else None,
                  following=following)


@router.get("/documents/{document_id}/fichiers/{name}")
async def download(request: Request, document_id: str, name: str) -> Response:
    session = await require(request, *DOCUMENT_ROLES)
    doc = await _document(request, session, document_id)
    if not may_read_personal_data(session.key, doc):
        role = load_flow(doc.flow).read_role
        raise ConsoleError(403, f"{role}_role_required", f"Le rôle {role} est requis pour lire ces fichiers.")
    async with request.app.state.store.sessions() as db:
        row = (await db.execute(
            select(FileRow).where(FileRow.document_id == doc.id, FileRow.name == name))).scalar_one_or_none()
    if row is None:
        raise ConsoleError(404, "file_not_found", f"Fichier introuvable : {name}")
    return StreamingResponse(request.app.state.console_blobs.iter_chunks(row.sha256), media_type=row.media_type,
                             headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(row.name)}",
                                      "X-Content-SHA256": row.sha256})


@router.post("/documents/{document_id}/rejouer")
async def replay_document(request: Request, document_id: str,
                          csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    session = await require(request, *OPERATOR_ROLES)
    _check_csrf(session, csrf)
    try:
        await replays.replay_one(request.app.state.store, session.key, document_id)
    except ReplayRefused as exc:
        raise ConsoleError(exc.status, exc.code, exc.message) from None
    return RedirectResponse(f"/console/documents/{quote(document_id)}?rejoue=1", status_code=303)


@router.post("/documents/{document_id}/annuler")
async def cancel_document(request: Request, document_id: str,
                          csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    session = await require(request, *OPERATOR_ROLES)
    _check_csrf(session, csrf)
    doc = await _document(request, session, document_id)
    await annulation.request(request.app.state.store, session.key, doc)
    return RedirectResponse(f"/console/documents/{quote(document_id)}?annulation=1", status_code=303)


def _error_filter(session: Session, siren: str | None, flow: str | None, stage: str | None,
                  q: str | None) -> ErrorFilter:
    return ErrorFilter(siren=_scope_siren(session, siren), flow=_known_flow(flow), stage=stage or None,
                       reason_contains=q or None, limit=BULK_LIMIT)


def _filter_params(where: ErrorFilter) -> dict[str, str]:
    return {k: v for k, v in {"siren": where.siren, "flow": where.flow, "stage": where.stage,
                              "q": where.reason_contains}.items() if v}


@router.get("/erreurs")
async def errors(request: Request, siren: Text = None, flow: Text = None, stage: Text = None,
                 q: Text = None) -> Response:
    session = await require(request, *OPERATOR_ROLES)
    where = _error_filter(session, siren, flow, stage, q)
    docs = await replays.in_error(request.app.state.store, session.key, where)
    params = _filter_params(where)
    return render(request, "errors.html", groups=replays.group_by_cause(docs), total=len(docs), params=params,
                  query=urlencode(params), flows=flow_names(), limit=BULK_LIMIT,
                  collectivites=await _collectivites(request, session))


@router.get("/erreurs/rejouer")
async def bulk_dry_run(request: Request, siren: Text = None, flow: Text = None, stage: Text = None,
                       q: Text = None) -> Response:
    """The dry run: what a bulk replay of this filter would replay. Nothing changes."""
    session = await require(request, *OPERATOR_ROLES)
    where = _error_filter(session, siren, flow, stage, q)
    docs = await replays.replay_many(request.app.state.store, session.key, where, dry_run=True)
    return render(request, "bulk_replay.html", docs=docs, params=_filter_params(where), limit=BULK_LIMIT,
                  done=None, skipped=[])


@router.post("/erreurs/rejouer")
async def bulk_replay(request: Request, csrf: Annotated[str, Form(max_length=100)] = "",
                      ids: Annotated[list[str] | None, Form()] = None) -> Response:
    """Replays exactly the documents the dry run listed (those still in error)."""
    session = await require(request, *OPERATOR_ROLES)
    _check_csrf(session, csrf)
    ids = list(dict.fromkeys(ids or []))
    if not ids:
        raise ConsoleError(422, "nothing_to_replay", "Aucun document à rejouer.")
    if len(ids) > BULK_LIMIT:
        raise ConsoleError(422, "too_many_documents", f"Au plus {BULK_LIMIT} documents par rejeu groupé.")
    done, skipped = await replays.replay_ids(request.app.state.store, session.key, [i[:36] for i in ids])
    return render(request, "bulk_replay.html", docs=done, params={}, limit=BULK_LIMIT, done=True, skipped=skipped)
