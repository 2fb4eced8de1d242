"""The « Déposer » pages: a form per flow for keys holding the depositor role, deposited through
`bus.deposits.Depositor` like `POST /api/v1/documents` (same checks, same refusals, and the form's
token as the Idempotency-Key, so a double click deposits once).

A refusal re-displays the form with what was typed and the files received, and the message next
to the field it concerns, with its code; a deposit goes on to the document's page.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from bus.blobs import BlobTooLarge
from bus.deposits import Depositor, DepositRefused
from bus.flows.definition import load_flow
from bus.scope import in_scope
from bus.store.models import Collectivite
from connectors.console.access import DEPOSIT_ROLES, collectivites
from connectors.console.deposit_forms import (
    ANNEXES,
    DOCUMENT,
    FORMS,
    DepositForm,
    FieldError,
    Filled,
    Slot,
)
from connectors.console.session import Session, csrf_ok
from connectors.console.uploads import Kept, KeptFiles
from connectors.console.web import ConsoleError, ConsoleRoute, render, require
from schemas.errors import SchemaError
from schemas.siren import is_valid_siren

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
ANNEX_TYPOLOGIES = "typologies"  # the submit button that uploads the annexes to type them, and deposits nothing
Source = UploadFile | Kept
FILE_ROLES = {DOCUMENT: "document", ANNEXES: "annexe"}  # file field → the files' role, the document first


@dataclass(frozen=True)
class KeptRow:
    kept: Kept
    token: str
    typologie: str = ""


def _depositor(request: Request) -> Depositor:
    return request.app.state.console_depositor  # type: ignore[no-any-return]


def _kept_files(request: Request) -> KeptFiles:
    return request.app.state.console_kept_files  # type: ignore[no-any-return]


@router.get("/deposer")
async def choose(request: Request) -> Response:
    session = await require(request, *DEPOSIT_ROLES)
    flows = [(flow, load_flow(flow).label) for flow in FORMS]
    return render(request, "deposit_choose.html", collectivites=await collectivites(request.app.state.store, session.key), flows=flows)


async def _context(request: Request, siren: str, flow: str) -> tuple[Session, Collectivite, DepositForm]:
    session = await require(request, *DEPOSIT_ROLES)
    if not is_valid_siren(siren) or not in_scope(session.key, siren):
        raise ConsoleError(403, "siren_out_of_scope", f"Cette clé n'est pas autorisée pour le SIREN {siren}.")
    if flow not in FORMS:
        raise ConsoleError(404, "unknown_flow", f"La console n'a pas de formulaire de dépôt pour le flux {flow}.")
    async with request.app.state.store.sessions() as db:
        coll = await db.get(Collectivite, siren)
    if coll is None:
        raise ConsoleError(404, "unknown_collectivite", f"Collectivité inconnue : {siren}")
    return session, coll, FORMS[flow](coll)


@router.get("/deposer/{siren}/{flow}")
async def form_page(request: Request, siren: str, flow: str) -> Response:
    session, coll, form = await _context(request, siren, flow)
    return _page(request, coll, form, form.defaults(), {}, secrets.token_urlsafe(18))


@router.post("/deposer/{siren}/{flow}")
async def deposit(request: Request, siren: str, flow: str) -> Response:
    session, coll, form = await _context(request, siren, flow)
    settings = _depositor(request).settings
    try:
        data = await request.form(max_files=settings.max_annexes + 2, max_fields=100 + 3 * settings.max_annexes)
    except HTTPException as exc:  # Starlette's refusal of a malformed or oversized multipart body
        raise ConsoleError(400, "invalid_form", f"Formulaire illisible : {exc.detail}") from None
    try:
        if not csrf_ok(session, _text(data.get("csrf"))):
            raise ConsoleError(403, "invalid_csrf_token", "Formulaire expiré ou d'une autre origine : rechargez la page.")
        token = _text(data.get("jeton"))
        if not TOKEN.match(token):
            raise ConsoleError(422, "invalid_form_token", "Formulaire incomplet : rechargez la page.")
        filled, sources = _read(request, session, form, data)
        if data.get("action") == ANNEX_TYPOLOGIES:
            return await _again(request, session, coll, form, filled, sources, token, 200, {})
        errors = form.check(filled)
        if errors:
            return await _again(request, session, coll, form, filled, sources, token, 422, errors)
        kept_files = _kept_files(request)
        uploads = [kept_files.upload(s, role) for name, role in FILE_ROLES.items() for s in sources.get(name, [])]
        try:
            result = await _depositor(request).deposit(
                flow=form.flow, siren=coll.siren, metadata=form.metadata(filled), uploads=uploads,
                actor=session.key.id, idempotency_key=f"console-{token}")
        except (DepositRefused, SchemaError) as exc:
            name = form.field_of(exc.code, exc.message, filled) or ""
            return await _again(request, session, coll, form, filled, sources, token, _status(exc),
                                {name: FieldError(exc.code, exc.message)})
    finally:
        await data.close()
    target = f"/console/documents/{quote(result.document_id)}?depot={'1' if result.created else 'deja'}"
    return RedirectResponse(target, status_code=303)


def _status(exc: DepositRefused | SchemaError) -> int:
    if isinstance(exc, DepositRefused):
        return exc.status
    from connectors.inbound.api import (
        SCHEMA_ERROR_STATUS,  # the API's statuses (it imports the console)
    )

    return SCHEMA_ERROR_STATUS.get(exc.code, 422)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _read(request: Request, session: Session, form: DepositForm,
          data: FormData) -> tuple[Filled, dict[str, list[Source]]]:
    """The values typed and, per file field, the files: kept ones (unless removed) then new ones;
    a new file replaces a single file field's kept one."""
    kept_files = _kept_files(request)
    values = {f.name: _text(data.get(f.name)) for f in form.fields if f.metadata}
    filled, sources = Filled(values), {}
    for f in form.fields:
        if f.metadata:
            continue
        kept: list[tuple[Source, str]] = []
        for i, token in enumerate(data.getlist(f"{f.name}-garde")):
            found = kept_files.open(session.key.id, _text(token))
            if found is not None and data.get(f"{f.name}-{i}-retirer") != "on":
                kept.append((found, _text(data.get(f"{f.name}-{i}-typologie"))))
        new: list[tuple[Source, str]] = [(u, "") for u in data.getlist(f.name)
                                         if isinstance(u, UploadFile) and u.filename]
        chosen = (new[:1] or kept[:1]) if f.kind == "file" else kept + new
        sources[f.name] = [s for s, _ in chosen]
        filled.files[f.name] = [Slot(_name(s), _size(s), typologie) for s, typologie in chosen]
    return filled, sources


def _name(source: Source) -> str:
    return source.name if isinstance(source, Kept) else source.filename or ""


def _size(source: Source) -> int:
    return source.size if isinstance(source, Kept) else source.size or 0


async def _again(request: Request, session: Session, coll: Collectivite, form: DepositForm, filled: Filled,
                 sources: dict[str, list[Source]], token: str, status: int,
                 errors: dict[str, FieldError]) -> Response:
    """The form again, with its values, its errors, and its files kept in the blob store."""
    kept_files = _kept_files(request)
    definition = load_flow(form.flow)
    # The flow's size limit, as bus.deposits applies it.
    max_bytes = definition.max_file_mb * 1024 * 1024 if definition.max_file_mb else _depositor(request).settings.max_file_bytes
    rows: dict[str, list[KeptRow]] = {}
    for name, items in sources.items():
        for source, slot in zip(items, filled.files[name], strict=True):
            if isinstance(source, UploadFile):
                try:
                    source = await kept_files.keep(source, max_bytes)
                except BlobTooLarge:
                    errors.setdefault(name, FieldError("file_too_large", f"Fichier trop gros : {slot.name} "
                                                       f"dépasse {max_bytes // (1024 * 1024)} Mo."))
                    continue
            rows.setdefault(name, []).append(KeptRow(source, kept_files.token(session.key.id, source), slot.typologie))
    return _page(request, coll, form, filled, errors, token, rows, status)


def _page(request: Request, coll: Collectivite, form: DepositForm, filled: Filled, errors: dict[str, FieldError],
          token: str, kept: dict[str, list[KeptRow]] | None = None, status: int = 200) -> Response:
    response = render(request, "deposit_form.html", status, coll=coll, form=form, values=filled.values,
                      errors=errors, kept=kept or {}, token=token, annex_typologies=ANNEX_TYPOLOGIES,
                      typology_groups=form.typology_groups(filled),
                      action=f"/console/deposer/{coll.siren}/{quote(form.flow)}")
    if errors:
        response.headers["X-Error-Code"] = next(iter(errors.values())).code
    return response
