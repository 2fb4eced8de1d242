"""Who sees what in the console: the roles of each kind of page, and the one scope predicate every
page asks (so switching to the API keys' shared predicate is a change here only)."""

from __future__ import annotations

from sqlalchemy import select

from bus.replays import OPERATOR_ROLES
from bus.store.apikeys import in_scope
from bus.store.db import Store
from bus.store.models import ApiKey, Collectivite
from connectors.inbound.reports import REPORT_ROLES

DEPOSIT_ROLES = ("depositor", "admin")  # as `POST /api/v1/documents`
DOCUMENT_ROLES = (*OPERATOR_ROLES, "depositor")  # the documents list and pages
CONSOLE_ROLES = tuple(dict.fromkeys((*DOCUMENT_ROLES, *REPORT_ROLES)))  # any of them opens the console


def reaches(key: ApiKey, siren: str) -> bool:
    """Whether the key may see (and, with its roles, act on) this collectivité's documents."""
    return in_scope(key, siren)


def reachable_sirens(key: ApiKey) -> list[str] | None:
    """The key's collectivités, for a query's filter; None means every one."""
    return None if "*" in key.sirens else list(key.sirens)


async def collectivites(store: Store, key: ApiKey) -> list[Collectivite]:
    """The key's collectivités, by name."""
    query = select(Collectivite).order_by(Collectivite.name)
    if (sirens := reachable_sirens(key)) is not None:
        query = query.where(Collectivite.siren.in_(sirens))
    async with store.sessions() as db:
        return list((await db.execute(query)).scalars())


def landing_page(roles: list[str]) -> str:
    """Where a key lands after logging in: its main page."""
    if set(OPERATOR_ROLES) & set(roles):
        return "/console/documents"
    if "depositor" in roles:
        return "/console/deposer"
    return "/console/tableau-de-bord"
