"""API keys: shown once at creation, stored as SHA-256 only; scoped to SIRENs and roles."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bus.store.models import ApiKey

ROLES = ("depositor", "operator", "reporter", "admin", "rh")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(session: AsyncSession, sirens: list[str], roles: list[str], name: str = "") -> str:
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}; roles are {', '.join(ROLES)}")
    key_id = secrets.token_hex(6)
    key = f"dmb_{key_id}_{secrets.token_urlsafe(24)}"
    session.add(ApiKey(id=key_id, key_hash=hash_key(key), name=name, roles=list(roles), sirens=list(sirens)))
    await session.flush()
    return key


async def find_key(session: AsyncSession, key: str) -> ApiKey | None:
    row = (await session.execute(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    return row


