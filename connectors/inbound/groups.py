"""Collectivité groups (`/api/v1/groups`): a syndicat and its members, an EPCI and its communes.

Reading: reporter, operator or admin (members outside the key's scope are not shown, and a group
none of whose members the key sees is not shown at all). Changing: operator or admin (deleting:
admin), every SIREN added or removed must be in the key's scope, and an existing group with
members changes only for a key that covers all of them (`group_out_of_scope`): a commune's key
does not rename nor delete its syndicat's group.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from bus.groups import (
    GroupError,
    delete_group,
    group_members,
    list_groups,
    save_group,
    set_members,
)
from bus.scope import in_scope
from bus.store.models import ApiKey
from connectors.inbound.auth import ApiError, Key, require_role, require_scope
from connectors.inbound.operations import OPERATOR_ROLES
from connectors.inbound.reports import REPORT_ROLES

router = APIRouter(prefix="/api/v1/groups", tags=["groups"])


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field("", max_length=200)
    kind: str = "syndicat"
    members: list[str] = Field(default_factory=list, max_length=5000)


class MembersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    add: list[str] = Field(default_factory=list, max_length=5000)
    remove: list[str] = Field(default_factory=list, max_length=5000)


def _visible(key: ApiKey, sirens: list[str]) -> list[str]:
    return [s for s in sirens if in_scope(key, s)]


def _shown(key: ApiKey, sirens: list[str]) -> bool:
    return not sirens or bool(_visible(key, sirens))


async def _require_all(session: Any, key: ApiKey, name: str) -> None:
    try:
        current = await group_members(session, name)
    except GroupError:
        return  # a new group (or one the action itself will refuse as unknown)
    if any(not in_scope(key, siren) for siren in current):
        raise GroupError(403, "group_out_of_scope", "Ce groupe compte des collectivités hors de la portée de cette clé "
                                                    "/ this group has members outside this key's scope")


async def _run(request: Request, action: Any) -> Any:
    try:
        async with request.app.state.store.transaction() as session:
            return await action(session)
    except GroupError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc


@router.get("")
async def groups(request: Request, key: Key) -> dict[str, Any]:
    require_role(key, *REPORT_ROLES)
    found = await _run(request, list_groups)
    return {"groups": [{"name": g.name, "label": g.label, "kind": g.kind, "members": _visible(key, g.members)}
                       for g in found if _shown(key, g.members)]}


@router.put("/{name}")
async def put_group(name: str, body: GroupIn, request: Request, key: Key) -> dict[str, Any]:
    """Create or update a group; `members` is added to the current members."""
    require_role(key, *OPERATOR_ROLES)
    for siren in body.members:
        require_scope(key, siren)

    async def action(session: Any) -> list[str]:
        await _require_all(session, key, name)
        await save_group(session, name, body.label, body.kind)
        return await set_members(session, name, add=body.members)

    members = await _run(request, action)
    return {"name": name, "label": body.label, "kind": body.kind, "members": _visible(key, members)}


@router.post("/{name}/members")
async def change_members(name: str, body: MembersIn, request: Request, key: Key) -> dict[str, Any]:
    require_role(key, *OPERATOR_ROLES)
    for siren in body.add + body.remove:
        require_scope(key, siren)
    async def action(session: Any) -> list[str]:
        await _require_all(session, key, name)
        return await set_members(session, name, add=body.add, remove=body.remove)

    members = await _run(request, action)
    return {"name": name, "members": _visible(key, members)}


@router.get("/{name}")
async def get_group(name: str, request: Request, key: Key) -> dict[str, Any]:
    require_role(key, *REPORT_ROLES)
    members = await _run(request, lambda session: group_members(session, name))
    if not _shown(key, members):
        raise ApiError(404, "group_not_found", f"Groupe introuvable / no group {name!r}")
    return {"name": name, "members": _visible(key, members)}


@router.delete("/{name}", status_code=204)
async def remove_group(name: str, request: Request, key: Key) -> None:
    require_role(key, "admin")
    async def action(session: Any) -> None:
        await _require_all(session, key, name)
        await delete_group(session, name)

    await _run(request, action)
