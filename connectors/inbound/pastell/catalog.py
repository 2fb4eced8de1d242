"""Read-only Pastell routes: version, entités, flux, connecteurs, document lists and counts, journal."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bus.scope import in_scope
from bus.store.entites import ensure_ids
from bus.store.models import (
    ApiKey,
    Collectivite,
    Document,
    JournalEntry,
    PastellDocument,
)
from connectors.inbound.pastell.documents import Documents, Loaded, stamp
from connectors.inbound.pastell.errors import PastellError
from connectors.inbound.pastell.flux import flux_ids, load_flux

VERSION = {
    "version": "2.0.16",
    "revision": "dematbus",
    "last_changed_date": "2021-10-07",
    "extensions_versions_accepted": ["2.0.0", "2.0.16"],
    "version_complete": "Version 2.0.16 - compatibilité dematbus",
}
CONNECTOR_SLOTS = ("signature", "tdt", "tdt_helios", "sae", "signature_helios")
FAMILY = {"signature": "signature", "signature_helios": "signature", "tdt": "TdT", "tdt_helios": "TdT", "sae": "SAE"}
IMPLEMENTATION = {"iparapheur": "iParapheur", "pades": "signature-locale", "xades": "signature-locale",
                  "s2low": "s2low", "s2low_helios": "s2low", "asalae": "as@lae-rest"}


def entite_row(id_e: int, coll: Collectivite) -> dict[str, Any]:
    return {"id_e": id_e, "denomination": coll.name, "siren": coll.siren, "type": "collectivite",
            "centre_de_gestion": 0, "entite_mere": 0, "is_active": 1}


class Catalog:
    def __init__(self, documents: Documents) -> None:
        self.documents = documents
        self.store = documents.store

    async def entites(self, key: ApiKey) -> list[dict[str, Any]]:
        async with self.store.transaction() as session:
            ids = await ensure_ids(session)
            colls = {c.siren: c for c in (await session.execute(select(Collectivite))).scalars()}
        return [entite_row(id_e, colls[siren]) for siren, id_e in sorted(ids.items(), key=lambda x: x[1])
                if in_scope(key, siren)]

    async def entite(self, key: ApiKey, id_e: int) -> dict[str, Any]:
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
        return {**entite_row(id_e, coll), "entite_fille": []}

    # -- flux -------------------------------------------------------------------------------

    @staticmethod
    def flux_list() -> dict[str, Any]:
        return {f: {"type": load_flux(f).type, "nom": load_flux(f).nom} for f in flux_ids()}

    @staticmethod
    def flux_detail(flux_id: str) -> dict[str, Any]:
        try:
            flux = load_flux(flux_id)
        except KeyError:
            raise PastellError(404, f"Le type {flux_id} n'existe pas sur cette plateforme.") from None
        return {name: spec.schema() for name, spec in flux.fields.items()}

    @staticmethod
    def flux_actions(flux_id: str) -> dict[str, Any]:
        try:
            flux = load_flux(flux_id)
        except KeyError:
            raise PastellError(404, f"Le type {flux_id} n'existe pas sur cette plateforme.") from None
        actions: dict[str, Any] = {
            "creation": {"name-action": "Créer", "name": "Créé", "rule": {"no-last-action": True}},
            "modification": {"name-action": "Modifier", "name": "En cours de rédaction",
                             "rule": {"last-action": ["creation", "modification"]}},
            "supression": {"name-action": "Supprimer", "name": "Supprimé", "rule": {}},
        }
        for action, rule in flux.start.items():
            actions[action] = {"name-action": action, "name": rule.message or action,
                               "rule": {"last-action": ["creation", "modification"], "document_is_valide": True}}
        for view in flux.states.values():
            if view.action and view.action not in actions:
                actions[view.action] = {"name": view.message or view.action, "rule": {"role_id_e": "no-role"}}
            for possible in view.possible:
                actions.setdefault(possible, {"name-action": possible, "name": possible,
                                              "rule": {"last-action": [view.action]}})
        return actions

    # -- connecteurs ------------------------------------------------------------------------

    async def connecteurs(self, key: ApiKey, id_e: int) -> list[dict[str, Any]]:
        async with self.store.transaction() as session:
            coll = await self.documents.collectivite(session, key, id_e)
        out = []
        for i, slot in enumerate(CONNECTOR_SLOTS):
            cfg = (coll.connectors or {}).get(slot)
            if cfg:
                out.append({"id_ce": id_e * 10 + i, "id_e": id_e, "libelle": f"{slot} ({cfg.get('kind')})",
                            "id_connecteur": IMPLEMENTATION.get(cfg.get("kind", ""), cfg.get("kind")),
                            "type": FAMILY[slot], "frequence_en_minute": 1, "id_verrou": ""})
        return out

    async def connecteur(self, key: ApiKey, id_e: int, id_ce: int) -> tuple[dict[str, Any], Collectivite]:
        for row in await self.connecteurs(key, id_e):
            if row["id_ce"] == id_ce:
                async with self.store.transaction() as session:
                    coll = await self.documents.collectivite(session, key, id_e)
                return row, coll
        raise PastellError(404, f"Le connecteur {id_ce} n'appartient pas à l'entité {id_e}")

    # -- lists ------------------------------------------------------------------------------

    async def _rows(self, key: ApiKey, id_e: int | None, flux: str | None) -> list[tuple[Loaded, dict[str, Any]]]:
        async with self.store.transaction() as session:
            ids = await ensure_ids(session)
            query = select(PastellDocument).where(PastellDocument.deleted.is_(False))
            if id_e is not None:
                await self.documents.collectivite(session, key, id_e)
                query = query.where(PastellDocument.id_e == id_e)
            if flux:
                query = query.where(PastellDocument.flux == flux)
            rows = [r for r in (await session.execute(query)).scalars() if in_scope(key, r.siren)]
            docs = {d.id: d for d in (await session.execute(
                select(Document).where(Document.id.in_([r.id_d for r in rows if r.deposited])))).scalars()}
            colls = {c.siren: c for c in (await session.execute(select(Collectivite))).scalars()}
        out = []
        for row in rows:
            loaded = Loaded(colls[row.siren], row, load_flux(row.flux), docs.get(row.id_d), [], [])
            action, _, at, _ = self.documents.state(loaded)
            out.append((loaded, {
                "id_d": row.id_d, "type": row.flux, "titre": row.titre, "creation": stamp(row.created_at),
                "modification": stamp(row.modified_at), "id_e": ids[row.siren], "role": "editeur",
                "last_action": action, "last_action_date": stamp(at), "last_action_display": action,
                **{k: v for k, v in entite_row(ids[row.siren], colls[row.siren]).items() if k not in ("id_e", "type")},
            }))
        return out

    async def list_documents(self, key: ApiKey, id_e: int, filters: dict[str, str]) -> list[dict[str, Any]]:
        rows = await self._rows(key, id_e, filters.get("type"))
        wanted = {s for s in (filters.get("lastetat") or "").split(",") if s}
        begin, end = filters.get("last_state_begin"), filters.get("last_state_end")
        search = (filters.get("search") or "").lower()
        out = []
        for loaded, row in rows:
            if wanted and row["last_action"] not in wanted:
                continue
            if begin and row["last_action_date"][:10] < begin[:10]:
                continue
            if end and row["last_action_date"][:10] > end[:10]:
                continue
            if search and search not in row["titre"].lower():
                continue
            indexed = {k for k, f in loaded.flux.fields.items() if f.index}
            if any(k in filters and filters[k] not in str(loaded.row.fields.get(k, "")) for k in indexed):
                continue
            out.append(row)
        reverse = (filters.get("sens_tri") or "DESC").upper() != "ASC"
        order = "titre" if filters.get("tri") == "titre" else "last_action_date"
        out.sort(key=lambda r: r[order], reverse=reverse)
        offset, limit = int(filters.get("offset") or 0), int(filters.get("limit") or 100)
        return out[offset: offset + limit]

    async def count(self, key: ApiKey, id_e: int | None, flux: str | None) -> dict[str, Any]:
        entites = await self.entites(key)
        out: dict[str, Any] = {}
        for entite in entites:
            if id_e is not None and entite["id_e"] != id_e:
                continue
            out[str(entite["id_e"])] = {"flux": {}, "info": {k: str(v) for k, v in entite.items()}}
        for _, row in await self._rows(key, id_e, flux):
            counts = out[str(row["id_e"])]["flux"].setdefault(row["type"], {})
            counts[row["last_action"]] = counts.get(row["last_action"], 0) + 1
        return out

    async def journal(self, key: ApiKey, filters: dict[str, str]) -> list[dict[str, Any]]:
        id_e = int(filters["id_e"]) if (filters.get("id_e") or "").isdigit() else None
        rows = {loaded.row.id_d: (loaded, row) for loaded, row in await self._rows(key, id_e, filters.get("type"))}
        if filters.get("id_d"):
            rows = {k: v for k, v in rows.items() if k == filters["id_d"]}
        async with self.store.sessions() as session:
            entries = (await session.execute(
                select(JournalEntry).where(JournalEntry.document_id.in_(list(rows))).order_by(JournalEntry.id.desc())
            )).scalars().all()
        offset, limit = int(filters.get("offset") or 0), int(filters.get("limit") or 100)
        out = []
        for entry in entries[offset: offset + limit]:
            loaded, row = rows[entry.document_id]
            out.append({"id_j": entry.id, "type": 1, "id_e": row["id_e"], "id_u": 0, "id_d": entry.document_id,
                        "action": entry.event, "message": f"{entry.event} : {entry.state}", "date": stamp(entry.at),
                        "date_horodatage": stamp(entry.at), "message_horodate": entry.hash,
                        "document_type": row["type"], "titre": row["titre"], "denomination": row["denomination"],
                        "siren": row["siren"], "document_type_libelle": loaded.flux.nom,
                        "action_libelle": entry.event})
        return out
