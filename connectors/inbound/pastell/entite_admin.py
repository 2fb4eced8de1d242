"""Pastell's entité administration on dematbus collectivités: create, edit, delete.

dematbus collectivités sit side by side (no mother entité, no service) and need what the
préfecture routes on: the département (and the arrondissement, the nature of the authority).
A collectivité created here has no connector: they are added through the connector routes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select

from bus.collectivites import InvalidCollectivite, add_collectivite
from bus.store.db import Store
from bus.store.entites import ensure_ids
from bus.store.models import (
    ApiKey,
    Batch,
    Collectivite,
    CollectiviteGroupMember,
    Document,
    PastellDocument,
    PastellEntite,
    Webhook,
)
from bus.store.pastell_admin import PastellAssociation, PastellConnecteur
from connectors.inbound.pastell.catalog import entite_row
from connectors.inbound.pastell.documents import Documents
from connectors.inbound.pastell.errors import PastellError
from connectors.inbound.pastell.scope import require_admin, require_root_admin

FLAT = "Dans dematbus, les collectivités sont à la racine : pas d'entité mère ni de service"


def _flat(values: dict[str, str]) -> None:
    if (values.get("entite_mere") or "0") != "0" or values.get("type") == "service":
        raise PastellError(400, FLAT)
    if (values.get("is_active") or "1") != "1":
        raise PastellError(400, "dematbus ne désactive pas une collectivité : retirez ses clés d'API")


class Entites:
    def __init__(self, store: Store, documents: Documents) -> None:
        self.store, self.documents = store, documents

    async def create(self, key: ApiKey, values: dict[str, str]) -> dict[str, Any]:
        require_root_admin(key, "entite:edition")
        _flat(values)
        siren = (values.get("siren") or "").strip()
        name = (values.get("denomination") or "").strip()
        if not name:
            raise PastellError(400, "Le nom (denomination) est obligatoire")
        if not values.get("departement"):
            raise PastellError(400, "dematbus a besoin du département de la préfecture (departement, ex. 034)")
        async with self.store.transaction() as session:
            if await session.get(Collectivite, siren) is not None:
                raise PastellError(409, f"Une entité avec le SIREN {siren} existe déjà")
            try:
                await add_collectivite(session, siren=siren, name=name[:200], departement=values["departement"],
                                       arrondissement=values.get("arrondissement") or "0",
                                       nature_code=values.get("nature") or "31", connectors={})
            except InvalidCollectivite as exc:
                raise PastellError(400, str(exc)) from None
            id_e = (await ensure_ids(session))[siren]
        return await self._info(key, id_e)

    async def _info(self, key: ApiKey, id_e: int) -> dict[str, Any]:
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
        return {**entite_row(id_e, coll), "entite_fille": []}

    async def modify(self, key: ApiKey, id_e: int, values: dict[str, str]) -> dict[str, Any]:
        require_admin(key, id_e, "entite:edition")
        _flat(values)
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
            if values.get("siren") and values["siren"] != coll.siren:
                raise PastellError(400, "Le SIREN d'une collectivité ne change pas dans dematbus : créez-en une autre")
            try:
                await add_collectivite(
                    session, siren=coll.siren, name=(values.get("denomination") or coll.name)[:200],
                    departement=values.get("departement") or coll.departement,
                    arrondissement=values.get("arrondissement") or coll.arrondissement,
                    nature_code=values.get("nature") or coll.nature_code,
                    classification_xml=coll.classification_xml, connectors=dict(coll.connectors or {}))
            except InvalidCollectivite as exc:
                raise PastellError(400, str(exc)) from None
        return {**await self._info(key, id_e), "result": "ok"}

    async def delete(self, key: ApiKey, id_e: int) -> dict[str, Any]:
        """Only a collectivité without any history: its documents, batches and webhooks stay."""
        require_root_admin(key, "entite:edition")
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
            for table in (Document, PastellDocument, Batch, Webhook):
                used = (await session.execute(select(func.count()).select_from(table).where(
                    table.siren == coll.siren))).scalar_one()
                if used:
                    raise PastellError(409, f"L'entité {id_e} a un historique ({table.__tablename__}) : dematbus "
                                            f"la garde")
            for table in (PastellConnecteur, PastellAssociation, CollectiviteGroupMember, PastellEntite):
                await session.execute(delete(table).where(table.siren == coll.siren))
            await session.delete(coll)
        return {"result": "ok"}
