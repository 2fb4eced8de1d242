"""Stable integer `id_e` per collectivité (Pastell's entité id), given on first need."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bus.store.models import Collectivite, PastellEntite


async def ensure_ids(session: AsyncSession) -> dict[str, int]:
    """siren -> id_e for every collectivité, numbering newcomers in SIREN order."""
    known = dict((await session.execute(select(PastellEntite.siren, PastellEntite.id_e))).tuples().all())
    sirens = (await session.execute(select(Collectivite.siren).order_by(Collectivite.siren))).scalars().all()
    missing = [s for s in sirens if s not in known]
    if missing:
        try:
            async with session.begin_nested():
                session.add_all(PastellEntite(siren=s) for s in missing)
                await session.flush()
        except IntegrityError:
            pass  # a concurrent caller numbered them: read theirs
        known = dict((await session.execute(select(PastellEntite.siren, PastellEntite.id_e))).tuples().all())
    return known
