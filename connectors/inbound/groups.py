"""Collectivité groups (`/api/v1/groups`): a syndicat and its members, an EPCI and its communes.

Reading: reporter, operator or admin (members outside the key's scope are not shown). Changing:
operator or admin, and every SIREN added or removed must be in the key's scope.
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
                       for g in found]}


@router.put("/{name}")
async def put_group(name: str, body: GroupIn, request: Request, key: Key) -> dict[str, Any]:
    """Create or update a group; `members` is added to the current members."""
    require_role(key, *OPERATOR_ROLES)
    for siren in body.members:
        require_scope(key, siren)

    async def action(session: Any) -> list[str]:
        await save_group(session, name, body.label, body.kind)
        return await set_members(session, name, add=body.members)

    members = await _run(request, action)
    return {"name": name, "label": body.label, "kind": body.kind, "members": _visible(key, members)}


@router.post("/{name}/members")
async def change_members(name: str, body: MembersIn, request: Request, key: Key) -> dict[str, Any]:
    require_role(key, *OPERATOR_ROLES)
    for siren in body.add + body.remove:
        require_scope(key, siren)
    members = await _run(request, lambda session: set_members(session, name, add=body.add, remove=body.remove))
    return {"name": name, "members": _visible(key, members)}


@router.get("/{name}")
async def get_group(name: str, request: Request, key: Key) -> dict[str, Any]:
    require_role(key, *REPORT_ROLES)
    members = await _run(request, lambda session: group_members(session, name))
    return {"name": name, "members": _visible(key, members)}


@router.delete("/{name}", status_code=204)
async def remove_group(name: str, request: Request, key: Key) -> None:
    require_role(key, "admin")
    await _run(request, lambda session: delete_group(session, name))
