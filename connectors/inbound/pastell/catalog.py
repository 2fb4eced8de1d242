"""Read-only Pastell routes: version, entités, flux, connecteurs, document lists and counts, journal."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bus.store.models import (
    ApiKey,
    Collectivite,
    Document,
    JournalEntry,
    PastellDocument,
)
from bus.store.models import File as FileRow
from bus.store.pastell_admin import ensure_holders
from connectors.inbound.pastell import courriers
from connectors.inbound.pastell.documents import Documents, Loaded, stamp
from connectors.inbound.pastell.errors import PastellError
from connectors.inbound.pastell.flux import flux_ids, load_flux, native_flux
from connectors.inbound.pastell.native import view_row
from connectors.inbound.pastell.params import integer

VERSION = {
    "version": "2.0.16",
    "revision": "dematbus",
    "last_changed_date": "2021-10-07",
    "extensions_versions_accepted": ["2.0.0", "2.0.16"],
    "version_complete": "Version 2.0.16 - compatibilité dematbus",
}


def entite_row(id_e: int, coll: Collectivite) -> dict[str, Any]:
    return {"id_e": id_e, "denomination": coll.name, "siren": coll.siren, "type": "collectivite",
            "centre_de_gestion": 0, "entite_mere": 0, "is_active": 1}


class Catalog:
    def __init__(self, documents: Documents) -> None:
        self.documents = documents
        self.store = documents.store

    async def entites(self, key: ApiKey) -> list[dict[str, Any]]:
        async with self.store.transaction() as session:
            return [entite_row(id_e, coll) for id_e, coll in await self.documents.collectivites(session, key)]

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
        if flux.courriers:
            actions.update(courriers.ACTIONS)
        return actions

    # -- lists ------------------------------------------------------------------------------

    async def _rows(self, key: ApiKey, id_e: int | None, flux: str | None) -> list[tuple[Loaded, dict[str, Any]]]:
        """Every document the key sees in one entité (or all of them), once: a Pastell row, or
        the Pastell view of a document deposited natively."""
        async with self.store.transaction() as session:
            entites = await self.documents.collectivites(session, key)
            if id_e is not None:
                await self.documents.collectivite(session, key, id_e)
                entites = [(i, c) for i, c in entites if i == id_e]
            ids = {c.siren: i for i, c in entites}
            colls = {c.siren: c for _, c in entites}
            query = select(PastellDocument).where(PastellDocument.deleted.is_(False),
                                                  PastellDocument.siren.in_(list(ids)))
            if flux:
                query = query.where(PastellDocument.flux == flux)
            rows = list((await session.execute(query)).scalars())
            seen = set((await session.execute(select(PastellDocument.id_d).where(
                PastellDocument.siren.in_(list(ids))))).scalars())
            flows = [flow for flow, f in native_flux().items() if not flux or f.id == flux]
            docs = {d.id: d for d in (await session.execute(select(Document).where(
                Document.siren.in_(list(ids)), Document.flow.in_(flows)))).scalars()}
            deposited = [r.id_d for r in rows if r.deposited]
            docs.update({d.id: d for d in (await session.execute(
                select(Document).where(Document.id.in_(deposited)))).scalars()} if deposited else {})
            native = [d for d in docs.values() if d.id not in seen]
            names = await self._document_files(session, [d.id for d in native])
            rows += [r for d in native if (r := view_row(d, ids[d.siren], names.get(d.id, []))) is not None]
            letters = await courriers.letters_of(session, {r.id_d: load_flux(r.flux) for r in rows if r.id_d in docs})
        out = []
        for row in rows:
            loaded = Loaded(colls[row.siren], row, load_flux(row.flux), docs.get(row.id_d), [], [],
                            letters.get(row.id_d, {}))
            out.append((loaded, self._list_row(loaded, ids[row.siren])))
        return out

    def _list_row(self, loaded: Loaded, id_e: int) -> dict[str, Any]:
        row = loaded.row
        action, _, at, _ = self.documents.state(loaded)
        return {"id_d": row.id_d, "type": row.flux, "titre": row.titre, "creation": stamp(row.created_at),
                "modification": stamp(row.modified_at), "id_e": id_e, "role": "editeur",
                "last_action": action, "last_action_date": stamp(at), "last_action_display": action,
                **{k: v for k, v in entite_row(id_e, loaded.coll).items() if k not in ("id_e", "type")}}

    @staticmethod
    async def _document_files(session: Any, ids: list[str]) -> dict[str, list[FileRow]]:
        """The deposited files (document, annexes) of native documents, for their Pastell fields."""
        out: dict[str, list[FileRow]] = {}
        for chunk in range(0, len(ids), 500):
            for f in (await session.execute(select(FileRow).where(
                    FileRow.document_id.in_(ids[chunk:chunk + 500]), FileRow.role.in_(("document", "annexe")))
                    .order_by(FileRow.id))).scalars():
                out.setdefault(f.document_id, []).append(f)
        return out

    async def list_documents(self, key: ApiKey, id_e: int, filters: dict[str, str]) -> list[dict[str, Any]]:
        offset, limit = _page(filters)
        return (await self._filtered(key, id_e, filters))[offset: offset + limit]

    async def count_in(self, key: ApiKey, id_e: int, filters: dict[str, str]) -> str:
        """`GET /entite/{id_e}/document/count` (OpenAPI description only): how many documents the
        list with the same filters holds, as a string."""
        return str(len(await self._filtered(key, id_e, filters)))

    async def _filtered(self, key: ApiKey, id_e: int, filters: dict[str, str]) -> list[dict[str, Any]]:
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
        return out

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
        id_e = integer(filters["id_e"], "id_e") if filters.get("id_e") else None
        rows = {loaded.row.id_d: (loaded, row) for loaded, row in await self._rows(key, id_e, filters.get("type"))}
        if filters.get("id_d"):
            rows = {k: v for k, v in rows.items() if k == filters["id_d"]}
        offset, limit = _page(filters)
        async with self.store.transaction() as session:
            holders = {k: h.id_u for k, h in (await ensure_holders(session)).items()}
            entries = (await session.execute(
                select(JournalEntry).where(JournalEntry.document_id.in_(list(rows))).order_by(JournalEntry.id.desc())
                .offset(offset).limit(limit))).scalars().all()
        return [_journal_row(entry, *rows[entry.document_id], holders) for entry in entries]

    async def journal_entry(self, key: ApiKey, id_j: int) -> dict[str, Any]:
        missing = PastellError(404, f"L'entrée {id_j} du journal n'existe pas")
        async with self.store.transaction() as session:
            entry = await session.get(JournalEntry, id_j)
            doc = await session.get(Document, entry.document_id) if entry else None
            reached = {c.siren: i for i, c in await self.documents.collectivites(session, key)}
            if entry is None or doc is None or doc.siren not in reached:
                raise missing  # another collectivité's entry answers like a missing one
            holders = {k: h.id_u for k, h in (await ensure_holders(session)).items()}
            try:
                loaded = await self.documents.load(session, key, reached[doc.siren], doc.id)
            except PastellError:
                raise missing from None
        # No RFC 3161 token: the journal is hash-chained (`dematbus journal verify`), `preuve` stays empty.
        return {**_journal_row(entry, loaded, self._list_row(loaded, reached[doc.siren]), holders), "preuve": ""}


def _page(filters: dict[str, str]) -> tuple[int, int]:
    return (integer(filters.get("offset") or "0", "offset"), integer(filters.get("limit") or "100", "limit"))


def _journal_row(entry: JournalEntry, loaded: Loaded, row: dict[str, Any], holders: dict[str, int]) -> dict[str, Any]:
    actor = (entry.detail or {}).get("by")
    return {"id_j": entry.id, "type": 1, "id_e": row["id_e"], "id_u": holders.get(str(actor), 0),
            "id_d": entry.document_id, "action": entry.event, "message": f"{entry.event} : {entry.state}",
            "date": stamp(entry.at), "date_horodatage": stamp(entry.at), "message_horodate": entry.hash,
            "document_type": row["type"], "titre": row["titre"], "denomination": row["denomination"],
            "siren": row["siren"], "document_type_libelle": loaded.flux.nom, "action_libelle": entry.event}
