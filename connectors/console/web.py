"""What every console page shares: templates, the logged-in session, and refusals rendered as
HTML pages that still carry a machine-readable code (`data-error-code`, `X-Error-Code`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from bus.flows.definition import all_states
from bus.reports import fmt_int
from connectors.console.session import Session, Sessions

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["n"] = fmt_int

# French labels of the states the flow files declare (bus/flows/*.yaml); a test checks each has one.
STATE_LABELS = {
    "deposited": "déposé", "signing": "en signature", "signed": "signé", "transmitting": "en transmission",
    "transmitted": "transmis", "acknowledged": "acquitté", "rejected": "rejeté", "archiving": "en archivage",
    "archived": "archivé", "delivered": "remis", "error": "en erreur", "cancelled": "annulé",
    "sealing": "en scellement", "sealed": "scellé", "delivering": "en remise", "undeliverable": "non remis",
    "publishing": "en publication", "published": "publié",
}


def state_label(state: str) -> str:
    return STATE_LABELS.get(state, state)


def state_choices() -> dict[str, str]:
    """Every state of every flow, with its label, in stage order (the documents filter)."""
    return {state: state_label(state) for state in all_states()}


templates.env.globals["state_label"] = state_label


class ConsoleError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class LoginRequired(Exception):
    pass


# Pages run no script, come only from here, are never framed and never cached (they show
# documents of collectivités).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def guarded(response: Response) -> Response:
    response.headers.update(PAGE_HEADERS)
    return response


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    context.setdefault("session", getattr(request.state, "console", None))
    return guarded(templates.TemplateResponse(request, template, context, status_code=status))


def error_page(request: Request, status: int, code: str, message: str) -> Response:
    response = render(request, "error.html", status, code=code, message=message)
    response.headers["X-Error-Code"] = code
    return response


class ConsoleRoute(APIRoute):
    """Console routes answer in HTML: a refusal is an error page, a missing login a redirect."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/console/login?next={quote(target)}", status_code=303)
            except ConsoleError as exc:
                return error_page(request, exc.status, exc.code, exc.message)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body"))
                return error_page(request, 422, "invalid_request",
                                  f"Paramètre invalide : {where} ({first.get('msg', '')})")

        return route


def sessions(request: Request) -> Sessions:
    return request.app.state.console_sessions  # type: ignore[no-any-return]


async def require(request: Request, *roles: str) -> Session:
    """The logged-in session, with one of `roles`."""
    session = await sessions(request).current(request)
    if session is None:
        raise LoginRequired()
    request.state.console = session
    if not session.has(*roles):
        raise ConsoleError(403, "forbidden_role", f"Rôle requis : {', '.join(roles)}")
    return session
