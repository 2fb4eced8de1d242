"""Who sees what in the console: the roles of each kind of page. Which collectivités a key reaches
is the bus's one scope predicate (bus/scope.py)."""

from __future__ import annotations

from sqlalchemy import select

from bus.replays import OPERATOR_ROLES
from bus.scope import restrict
from bus.store.db import Store
from bus.store.models import ApiKey, Collectivite
from connectors.inbound.reports import REPORT_ROLES

DEPOSIT_ROLES = ("depositor", "admin")  # as `POST /api/v1/documents`
DOCUMENT_ROLES = (*OPERATOR_ROLES, "depositor")  # the documents list and pages
CONSOLE_ROLES = tuple(dict.fromkeys((*DOCUMENT_ROLES, *REPORT_ROLES)))  # any of them opens the console


async def collectivites(store: Store, key: ApiKey) -> list[Collectivite]:
    """The key's collectivités, by name."""
    query = restrict(select(Collectivite).order_by(Collectivite.name), Collectivite.siren, key)
    async with store.sessions() as db:
        return list((await db.execute(query)).scalars())


def landing_page(roles: list[str]) -> str:
    """Where a key lands after logging in: its main page."""
    if set(OPERATOR_ROLES) & set(roles):
        return "/console/documents"
    if "depositor" in roles:
        return "/console/deposer"
    return "/console/tableau-de-bord"
