"""Pastell's connector and entité–flux routes on a collectivité's connector configuration.

An instance (`id_ce`) fills one slot of the configuration (`connecteurs.py`), or none while it
serves no flux. Associating it with (flux, family) moves it into the slot that flux's flow reads
for that family; the connector that was there is set aside. Several Pastell flux share a flow
(`actes-generique` and `actes-automatique` both read `tdt`), so they share the association.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bus.store.db import Store
from bus.store.models import ApiKey, Collectivite
from bus.store.pastell_admin import (
    PastellAssociation,
    PastellConnecteur,
    association_id,
)
from connectors.inbound.pastell import connecteurs as cfg
from connectors.inbound.pastell.documents import Documents
from connectors.inbound.pastell.errors import PastellError
from connectors.inbound.pastell.flux import flux_ids, load_flux
from connectors.inbound.pastell.scope import require_admin

CHECK = "test-configuration"  # the one action: can dematbus build this connector from its options?


def _family(row: PastellConnecteur) -> str:
    impl = cfg.BY_ID.get(row.id_connecteur)
    if impl is not None:
        return impl.family
    return cfg.slot_families().get(row.slot or "", row.id_connecteur)


class Connecteurs:
    def __init__(self, store: Store, documents: Documents) -> None:
        self.store, self.documents = store, documents

    # -- instances ------------------------------------------------------------------------------

    @staticmethod
    async def _instances(session: AsyncSession, coll: Collectivite) -> list[PastellConnecteur]:
        """The collectivité's instances, in step with its configuration: a slot set by the command
        line gets an id on first sight, an instance whose slot was removed there is gone."""
        rows = list((await session.execute(select(PastellConnecteur).where(
            PastellConnecteur.siren == coll.siren).order_by(PastellConnecteur.id_ce))).scalars())
        slots = cfg.configured_slots(coll)
        for row in [r for r in rows if r.slot is not None and r.slot not in slots]:
            await session.delete(row)
            rows.remove(row)
        known = {r.slot for r in rows}
        newcomers = [PastellConnecteur(siren=coll.siren, slot=slot, id_connecteur=_implementation_id(config["kind"]),
                                       libelle=f"{slot} ({config['kind']})")
                     for slot, config in sorted(slots.items(), key=lambda item: _rank(item[0])) if slot not in known]
        if newcomers:
            try:
                async with session.begin_nested():
                    session.add_all(newcomers)
                    await session.flush()
            except IntegrityError:  # a concurrent call numbered them: read theirs
                return await Connecteurs._instances(session, coll)
            rows += newcomers
        await session.flush()
        return rows

    async def _instance(self, session: AsyncSession, coll: Collectivite, id_e: int, id_ce: int) -> PastellConnecteur:
        for row in await self._instances(session, coll):
            if row.id_ce == id_ce:
                return row
        raise PastellError(404, f"Le connecteur {id_ce} n'appartient pas à l'entité {id_e}")

    @staticmethod
    def config_of(coll: Collectivite, row: PastellConnecteur) -> dict[str, Any]:
        return cfg.slot_config(coll, row.slot) if row.slot else dict(row.parked or {})

    @staticmethod
    def _row(id_e: int, row: PastellConnecteur) -> dict[str, Any]:
        return {"id_ce": str(row.id_ce), "id_e": str(id_e), "libelle": row.libelle, "id_connecteur": row.id_connecteur,
                "type": _family(row), "frequence_en_minute": "1", "id_verrou": ""}

    def _detail(self, coll: Collectivite, id_e: int, row: PastellConnecteur) -> dict[str, Any]:
        content = cfg.masked(self.config_of(coll, row), cfg.BY_ID.get(row.id_connecteur))
        # Pastell answers `data` / `action-possible`; its OpenAPI description says `content` / `action_possible`.
        return {**self._row(id_e, row), "global": False, "data": content, "content": content,
                "action-possible": [CHECK], "action_possible": [CHECK]}

    async def list(self, key: ApiKey, id_e: int) -> list[dict[str, Any]]:
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
            return [self._row(id_e, row) for row in await self._instances(session, coll)]

    async def all(self, key: ApiKey, id_connecteur: str | None) -> list[dict[str, Any]]:
        async with self.store.transaction() as session:
            out = []
            for id_e, coll in await self.documents.collectivites(session, key):
                out += [self._row(id_e, row) for row in await self._instances(session, coll)
                        if id_connecteur is None or row.id_connecteur == id_connecteur]
            return out

    async def detail(self, key: ApiKey, id_e: int, id_ce: int) -> dict[str, Any]:
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
            return self._detail(coll, id_e, await self._instance(session, coll, id_e, id_ce))

    async def options(self, key: ApiKey, id_e: int, id_ce: int) -> dict[str, Any]:
        """The instance's options, unmasked: for the choice lists of its external data."""
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
            return self.config_of(coll, await self._instance(session, coll, id_e, id_ce))

    # -- administration -------------------------------------------------------------------------

    async def create(self, key: ApiKey, id_e: int, id_connecteur: str, libelle: str) -> dict[str, Any]:
        require_admin(key, id_e, "connecteur:edition")
        impl = cfg.implementation(id_connecteur)
        if not libelle.strip():
            raise PastellError(400, "Le libellé est obligatoire.")
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
            row = PastellConnecteur(siren=coll.siren, slot=None, id_connecteur=impl.id_connecteur,
                                    libelle=libelle.strip()[:200], parked={})
            session.add(row)
            await session.flush()
            return self._detail(coll, id_e, row)

    async def edit(self, key: ApiKey, id_e: int, id_ce: int, libelle: str) -> dict[str, Any]:
        """`PATCH …/connecteur/{id_ce}`: the label (dematbus has no per-connector frequency or lock)."""
        require_admin(key, id_e, "connecteur:edition")
        if not libelle.strip():
            raise PastellError(400, "Le libellé est obligatoire.")
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
            row = await self._instance(session, coll, id_e, id_ce)
            row.libelle = libelle.strip()[:200]
            return self._detail(coll, id_e, row)

    async def edit_content(self, key: ApiKey, id_e: int, id_ce: int, values: dict[str, str],
                           lists: dict[str, list[str]]) -> dict[str, Any]:
        require_admin(key, id_e, "connecteur:edition")
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
            row = await self._instance(session, coll, id_e, id_ce)
            impl = cfg.BY_ID.get(row.id_connecteur)
            if impl is None:
                raise PastellError(400, f"Le connecteur {row.id_connecteur} se règle avec la commande dematbus")
            config = cfg.edited(self.config_of(coll, row), impl, values, lists)
            if row.slot:
                cfg.put_slot(coll, row.slot, config)
            else:
                row.parked = config
            return {**self._detail(coll, id_e, row), "result": "ok"}

    async def delete(self, key: ApiKey, id_e: int, id_ce: int) -> dict[str, Any]:
        require_admin(key, id_e, "connecteur:edition")
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
            row = await self._instance(session, coll, id_e, id_ce)
            if row.slot:
                raise PastellError(409, f"Le connecteur {id_ce} est utilisé ({row.slot}) : supprimez d'abord son "
                                        f"association au flux")
            await session.delete(row)
        return {"result": "ok"}

    async def action(self, key: ApiKey, id_e: int, id_ce: int, action: str) -> dict[str, Any]:
        require_admin(key, id_e, "connecteur:edition")
        if action != CHECK:
            raise PastellError(404, f"L'action {action} n'existe pas")
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
            row = await self._instance(session, coll, id_e, id_ce)
            config = self.config_of(coll, row)
        ok, message = await _buildable(row, config)
        return {"result": ok, "last_message": message}

    # -- associations -------------------------------------------------------------------------

    async def _association_rows(self, session: AsyncSession, coll: Collectivite, id_e: int) -> list[dict[str, Any]]:
        by_slot = {r.slot: r for r in await self._instances(session, coll) if r.slot}
        out = []
        for flux in flux_ids():
            flow = load_flux(flux).flow
            for family in cfg.flow_families(flow):
                row = by_slot.get(cfg.slot_for(flow, family))
                if row is not None:
                    out.append({"id_fe": str(await association_id(session, coll.siren, flux, family)),
                                "id_e": str(id_e), "flux": flux, "type": family, "id_ce": str(row.id_ce),
                                "num_same_type": "0"})
        return out

    async def associations(self, key: ApiKey, id_e: int, flux: str | None, family: str | None) -> list[dict[str, Any]]:
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
            rows = await self._association_rows(session, coll, id_e)
        return [r for r in rows if (not flux or r["flux"] == flux) and (not family or r["type"] == family)]

    async def associate(self, key: ApiKey, id_e: int, flux: str, id_ce: int, family: str | None) -> dict[str, Any]:
        require_admin(key, id_e, "connecteur:edition")
        flow = _flow(flux)
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
            row = await self._instance(session, coll, id_e, id_ce)
            family = family or _family(row)
            if family != _family(row):
                raise PastellError(400, f"Le connecteur {id_ce} est de la famille {_family(row)}, pas {family}")
            slot = cfg.slot_for(flow, family)
            if slot is None:
                raise PastellError(400, f"Le flux {flux} n'utilise pas de connecteur {family}")
            if row.slot not in (None, slot):
                raise PastellError(409, f"Le connecteur {id_ce} sert déjà « {row.slot} » : dans dematbus un connecteur "
                                        f"sert un usage, créez-en un second pour celui-ci")
            if row.slot is None:
                await self._move_in(session, coll, row, slot)
            return {"id_fe": str(await association_id(session, coll.siren, flux, family))}

    async def _move_in(self, session: AsyncSession, coll: Collectivite, row: PastellConnecteur, slot: str) -> None:
        for other in await self._instances(session, coll):
            if other.slot == slot:
                self._set_aside(coll, other)
        await session.flush()  # the slot is free before it is taken (unique per collectivité)
        config = dict(row.parked or {})
        impl = cfg.BY_ID.get(row.id_connecteur)
        config["kind"] = impl.kind_for(slot) if impl else config.get("kind", row.id_connecteur)
        cfg.put_slot(coll, slot, config)
        row.slot, row.parked = slot, None

    @staticmethod
    def _set_aside(coll: Collectivite, row: PastellConnecteur) -> None:
        assert row.slot is not None
        row.parked, row.slot = cfg.take_slot(coll, row.slot), None

    async def dissociate(self, key: ApiKey, id_e: int, id_fe: int) -> dict[str, Any]:
        require_admin(key, id_e, "connecteur:edition")
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
            association = await session.get(PastellAssociation, id_fe)
            missing = PastellError(404, f"L'association {id_fe} n'existe pas pour l'entité {id_e}")
            if association is None or association.siren != coll.siren:
                raise missing
            slot = cfg.slot_for(_flow(association.flux), association.type)
            row = next((r for r in await self._instances(session, coll) if slot and r.slot == slot), None)
            if row is None:
                raise missing
            self._set_aside(coll, row)
        return {"result": "ok"}

    async def flux_action(self, key: ApiKey, id_e: int, flux: str, family: str, action: str) -> dict[str, Any]:
        """`POST /entite/{id_e}/flux/{flux}/action`: the action of the connector the flux uses."""
        for row in await self.associations(key, id_e, flux, family):
            result = await self.action(key, id_e, int(row["id_ce"]), action)
            return {"result": result["result"], "message": result["last_message"]}
        raise PastellError(400, f"Le connecteur de type {family} n'existe pas pour le flux {flux}.")


def _implementation_id(kind: str) -> str:
    impl = cfg.implementation_of_kind(kind)
    return impl.id_connecteur if impl else kind


def _rank(slot: str) -> int:
    """Newcomers are numbered with the slots Pastell flux use first (clients take the first
    signature connector they see)."""
    used = [cfg.slot_for(load_flux(f).flow, family) for f in flux_ids() for family in cfg.flow_families(load_flux(f).flow)]
    ordered = list(dict.fromkeys(s for s in used if s))
    return ordered.index(slot) if slot in ordered else len(ordered)


def _flow(flux: str) -> str:
    try:
        return load_flux(flux).flow
    except KeyError:
        raise PastellError(400, f"Le type de flux « {flux} » n'existe pas sur cette plateforme.") from None


async def _buildable(row: PastellConnecteur, config: dict[str, Any]) -> tuple[bool, str]:
    """Build the connector the way the worker will (no remote call): missing options, unreadable
    certificates or an unknown kind show up here."""
    from connectors.config import InvalidConnectorConfig, parse_connector
    from connectors.registry import FACTORIES

    if not row.slot:
        return False, "Ce connecteur ne sert aucun flux : associez-le pour qu'il soit utilisé"
    try:
        typed = parse_connector(config)
        connector = FACTORIES[typed.kind](typed, 5.0)
    except InvalidConnectorConfig as exc:
        return False, f"Configuration incomplète : {exc}"
    except Exception as exc:  # noqa: BLE001 - whatever stops the build is the answer to give
        return False, f"Configuration inutilisable : {exc}"
    await connector.aclose()
    return True, f"La configuration du connecteur {row.libelle} est complète"
