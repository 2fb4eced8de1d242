"""Which SIRENs a reporting request covers: explicit SIRENs, a group's members, or every SIREN of
the key. Shared by the reports and live counters endpoints."""

from __future__ import annotations

from fastapi import Request

from bus.groups import GroupError, group_members
from bus.scope import scope_sirens
from bus.store.models import ApiKey
from connectors.inbound.auth import ApiError, require_scope


async def requested_sirens(request: Request, key: ApiKey, sirens: list[str] | None,
                           group: str | None) -> list[str] | None:
    """None means every collectivité (a key for "*" asking for no filter)."""
    wanted: list[str] | None = list(dict.fromkeys(sirens)) if sirens else None
    if group:
        async with request.app.state.store.sessions() as session:
            try:
                found = await group_members(session, group)
            except GroupError as exc:
                raise ApiError(exc.status, exc.code, exc.message) from exc
        wanted = found if wanted is None else [s for s in wanted if s in found]
    if wanted is not None:
        for s in wanted:
            require_scope(key, s)
        return wanted
    return scope_sirens(key)
