"""Collectivité groups: a syndicat and its members, an EPCI and its communes.

Reports and live counters roll up over a group: asking for group G means asking for its members'
SIRENs (a collectivité may belong to several groups: a commune is in its EPCI and in its syndicat).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bus.store.models import Collectivite, CollectiviteGroup, CollectiviteGroupMember

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
KINDS = ("syndicat", "epci", "autre")


class GroupError(ValueError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Group:
    name: str
    label: str
    kind: str
    members: list[str]


async def save_group(session: AsyncSession, name: str, label: str = "", kind: str = "syndicat") -> None:
    if not NAME.match(name):
        raise GroupError(422, "invalid_group_name",
                         "Nom de groupe invalide (a-z, 0-9, _ . -) / invalid group name")
    if kind not in KINDS:
        raise GroupError(422, "invalid_group_kind", f"Type de groupe invalide / kind must be one of {', '.join(KINDS)}")
    group = await session.get(CollectiviteGroup, name)
    if group is None:
        session.add(CollectiviteGroup(name=name, label=label, kind=kind))
    else:
        group.label, group.kind = label or group.label, kind
    await session.flush()


async def set_members(session: AsyncSession, name: str, add: list[str] = (), remove: list[str] = ()) -> list[str]:  # type: ignore[assignment]
    if await session.get(CollectiviteGroup, name) is None:
        raise GroupError(404, "group_not_found", f"Groupe introuvable / no group {name!r}")
    known = set((await session.execute(select(Collectivite.siren).where(Collectivite.siren.in_(list(add) or [""]))))
                .scalars())
    unknown = sorted(set(add) - known)
    if unknown:
        raise GroupError(422, "unknown_collectivite",
                         f"Collectivité inconnue / unknown collectivité: {', '.join(unknown)}")
    current = set(await members(session, name))
    for siren in sorted(set(add) - current):
        session.add(CollectiviteGroupMember(group_name=name, siren=siren))
    if remove:
        await session.execute(delete(CollectiviteGroupMember).where(
            CollectiviteGroupMember.group_name == name, CollectiviteGroupMember.siren.in_(list(remove))))
    await session.flush()
    return await members(session, name)


async def members(session: AsyncSession, name: str) -> list[str]:
    return list((await session.execute(
        select(CollectiviteGroupMember.siren).where(CollectiviteGroupMember.group_name == name)
        .order_by(CollectiviteGroupMember.siren)
    )).scalars())


async def group_members(session: AsyncSession, name: str) -> list[str]:
    """The members of an existing group (GroupError 404 when there is no such group)."""
    if await session.get(CollectiviteGroup, name) is None:
        raise GroupError(404, "group_not_found", f"Groupe introuvable / no group {name!r}")
    return await members(session, name)


async def list_groups(session: AsyncSession) -> list[Group]:
    groups = (await session.execute(select(CollectiviteGroup).order_by(CollectiviteGroup.name))).scalars().all()
    return [Group(g.name, g.label, g.kind, await members(session, g.name)) for g in groups]


async def delete_group(session: AsyncSession, name: str) -> None:
    if await session.get(CollectiviteGroup, name) is None:
        raise GroupError(404, "group_not_found", f"Groupe introuvable / no group {name!r}")
    await session.execute(delete(CollectiviteGroupMember).where(CollectiviteGroupMember.group_name == name))
    await session.execute(delete(CollectiviteGroup).where(CollectiviteGroup.name == name))
