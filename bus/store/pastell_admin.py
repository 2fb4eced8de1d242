"""Pastell administration ids: who holds an API key (Pastell's `id_u`), the stable `id_ce` of a
connector, and the `id_fe` of a flux/connector-family association.

The facts stay where they are: a key's scope and roles in `api_keys`, a connector's configuration
in the collectivité's `connectors`. These tables add only what Pastell clients need on top: the
holder's name and e-mail, integer ids, a connector's label, and the configuration of a connector
that serves no flux yet (`parked`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bus.store.models import ApiKey, Base


class ApiKeyHolder(Base):
    """The person or software an API key was given to; `id_u` is its Pastell user id."""

    __tablename__ = "api_key_holders"

    id_u: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    api_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), unique=True)
    nom: Mapped[str] = mapped_column(String(200), default="")
    prenom: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(320), default="")


class PastellConnecteur(Base):
    """A connector of a collectivité: `slot` names its entry in `collectivites.connectors` ("tdt",
    "signature"…); a connector that serves no flux has no slot and keeps its configuration in
    `parked`."""

    __tablename__ = "pastell_connecteurs"
    __table_args__ = (UniqueConstraint("siren", "slot", name="uq_pastell_connecteur_slot"),)

    id_ce: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    siren: Mapped[str] = mapped_column(ForeignKey("collectivites.siren"), index=True)
    slot: Mapped[str | None] = mapped_column(String(60), nullable=True)
    id_connecteur: Mapped[str] = mapped_column(String(60))
    libelle: Mapped[str] = mapped_column(String(200), default="")
    parked: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)


class PastellAssociation(Base):
    """The id of "flux F uses the connector of family T" for a collectivité (the connector itself
    is whichever fills the slot F's flow reads for T)."""

    __tablename__ = "pastell_associations"
    __table_args__ = (UniqueConstraint("siren", "flux", "type", name="uq_pastell_association"),)

    id_fe: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    siren: Mapped[str] = mapped_column(ForeignKey("collectivites.siren"), index=True)
    flux: Mapped[str] = mapped_column(String(60))
    type: Mapped[str] = mapped_column(String(40))


async def ensure_holders(session: AsyncSession) -> dict[str, ApiKeyHolder]:
    """api key id -> holder for every key, numbering newcomers in creation order."""
    holders = {h.api_key_id: h for h in (await session.execute(select(ApiKeyHolder))).scalars()}
    keys = (await session.execute(select(ApiKey.id).order_by(ApiKey.created_at, ApiKey.id))).scalars().all()
    missing = [k for k in keys if k not in holders]
    if missing:
        try:
            async with session.begin_nested():
                session.add_all(ApiKeyHolder(api_key_id=k) for k in missing)
                await session.flush()
        except IntegrityError:
            pass  # a concurrent caller numbered them: read theirs
        holders = {h.api_key_id: h for h in (await session.execute(select(ApiKeyHolder))).scalars()}
    return holders


async def association_id(session: AsyncSession, siren: str, flux: str, family: str) -> int:
    """The stable `id_fe` of (collectivité, flux, family), given on first need."""
    query = select(PastellAssociation.id_fe).where(
        PastellAssociation.siren == siren, PastellAssociation.flux == flux, PastellAssociation.type == family)
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        try:
            async with session.begin_nested():
                session.add(PastellAssociation(siren=siren, flux=flux, type=family))
                await session.flush()
        except IntegrityError:
            pass
        found = (await session.execute(query)).scalar_one()
    return found
