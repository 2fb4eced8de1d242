"""Pastell documents: drafts (fields and files kept until the starting action), then the
dematbus document of the same id seen through the flux mapping."""

from __future__ import annotations

import asyncio
import re
import secrets
import string
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bus.blobs import BlobStore
from bus.config import Settings
from bus.courriers.messages import Listed
from bus.deposits import Depositor, DepositRefused, Upload
from bus.flows.definition import flow_names, load_flow
from bus.store.db import Store
from bus.store.entites import ensure_ids
from bus.store.models import (
    ApiKey,
    Collectivite,
    Document,
    Effect,
    JournalEntry,
    PastellDocument,
    utcnow,
)
from bus.store.models import File as FileRow
from bus.store.outbox import emit_event
from connectors.inbound.pastell import courriers, external
from connectors.inbound.pastell.errors import PastellError, not_in_entite, not_permitted
from connectors.inbound.pastell.flux import Flux, load_flux
from connectors.inbound.pastell.history import build_history, signature_entries
from connectors.inbound.pastell.native import view_row
from connectors.inbound.pastell.params import FilePart
from connectors.inbound.pastell.scope import forbidden, reaches
from schemas.deposit import sniff_media_type
from schemas.errors import SchemaError
from schemas.events import Event

ID_CHARS = string.ascii_letters + string.digits
HISTORY = "iparapheur_historique"
WRITE_ROLES = ("depositor", "admin")


def new_id_d() -> str:
    return "".join(secrets.choice(ID_CHARS) for _ in range(7))


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Loaded:
    coll: Collectivite
    row: PastellDocument
    flux: Flux
    doc: Document | None
    files: list[FileRow]
    journal: list[JournalEntry]
    letters: dict[str, Listed] = dataclass_field(default_factory=dict)  # the préfecture's, by Pastell prefix


@dataclass
class Download:
    name: str
    data: bytes
    media_type: str


class Documents:
    def __init__(self, store: Store, blobs: BlobStore, depositor: Depositor, settings: Settings) -> None:
        self.store, self.blobs, self.depositor, self.settings = store, blobs, depositor, settings
        # A draft file may be as large as the most generous flow allows; the deposit applies the
        # limit of the document's own flow.
        self.max_bytes = max([settings.max_file_bytes] + [
            (load_flow(name).max_file_mb or 0) * 1024 * 1024 for name in flow_names()])

    # -- scope ------------------------------------------------------------------------------

    async def collectivite(self, session: AsyncSession, key: ApiKey, id_e: int) -> Collectivite:
        """The collectivité of `id_e`; unknown and out of scope answer alike (no existence leak)."""
        ids = await ensure_ids(session)
        siren = next((s for s, i in ids.items() if i == id_e), None)
        if siren is None or not reaches(key, siren):
            raise forbidden(id_e, "entite:lecture")
        coll = await session.get(Collectivite, siren, populate_existing=True)
        assert coll is not None
        return coll

    async def collectivites(self, session: AsyncSession, key: ApiKey) -> list[tuple[int, Collectivite]]:
        """(id_e, collectivité) for every collectivité the key reaches, in id_e order."""
        ids = await ensure_ids(session)
        colls = {c.siren: c for c in (await session.execute(select(Collectivite))).scalars()}
        return [(id_e, colls[siren]) for siren, id_e in sorted(ids.items(), key=lambda x: x[1])
                if reaches(key, siren)]

    async def load(self, session: AsyncSession, key: ApiKey, id_e: int, id_d: str) -> Loaded:
        coll = await self.collectivite(session, key, id_e)
        row = await session.get(PastellDocument, id_d, populate_existing=True)
        if row is not None and (row.id_e != id_e or row.deleted):
            raise not_in_entite(id_d, id_e)
        doc = await session.get(Document, id_d, populate_existing=True) if row is None or row.deposited else None
        if row is None and (doc is None or doc.siren != coll.siren):
            raise not_in_entite(id_d, id_e)
        files: list[FileRow] = []
        journal: list[JournalEntry] = []
        if doc is not None:
            files = list((await session.execute(
                select(FileRow).where(FileRow.document_id == id_d).order_by(FileRow.id))).scalars())
            journal = list((await session.execute(
                select(JournalEntry).where(JournalEntry.document_id == id_d).order_by(JournalEntry.seq))).scalars())
        if row is None:  # deposited natively: seen through the flux that shows its flow
            assert doc is not None
            row = view_row(doc, id_e, files)
            if row is None:
                raise not_in_entite(id_d, id_e)
        flux = load_flux(row.flux)
        letters = await courriers.letters(session, flux, id_d) if doc is not None else {}
        return Loaded(coll, row, flux, doc, files, journal, letters)

    @staticmethod
    def writable(key: ApiKey) -> None:
        if not set(WRITE_ROLES) & set(key.roles):
            raise PastellError(403, "Acces interdit : cette clé ne peut pas modifier de document (rôle depositor)")

    # -- detail -----------------------------------------------------------------------------

    async def detail(self, key: ApiKey, id_e: int, id_d: str) -> dict[str, Any]:
        async with self.store.sessions() as session:
            loaded = await self.load(session, key, id_e, id_d)
            return await self._detail(session, loaded)

    async def _detail(self, session: AsyncSession, loaded: Loaded) -> dict[str, Any]:
        row, doc = loaded.row, loaded.doc
        data: dict[str, Any] = dict(row.fields)
        for field, entries in row.files.items():
            data[field] = [e["name"] for e in entries]
        if doc is not None:
            data.update(await self._results(session, loaded))
        last_action, message, at, possible = self.state(loaded)
        return {
            "info": {"id_d": row.id_d, "type": row.flux, "titre": row.titre, "creation": stamp(row.created_at),
                     "modification": stamp(row.modified_at)},
            "data": data or None,
            "action_possible": possible,
            "action-possible": possible,
            "last_action": {"action": last_action, "message": message, "date": stamp(at)},
        }

    def state(self, loaded: Loaded) -> tuple[str, str, datetime, list[str]]:
        row, flux, doc = loaded.row, loaded.flux, loaded.doc
        if doc is None:
            possible = ["modification", "supression"]
            if not flux.validate_form(row.fields, row.files):
                possible += flux.listed_starts(row.fields)
            return row.last_action, row.last_message, row.last_action_at, possible
        view = flux.state_view(doc.state, doc.stage)
        if view.action is None:
            return courriers.adjust(loaded, (row.last_action, row.last_message, row.last_action_at, list(view.possible)))
        message = view.message.format(reason=doc.reason or "", date=doc.updated_at.strftime("%d/%m/%Y %H:%M:%S"))
        return courriers.adjust(loaded, (view.action, message or doc.reason or "", doc.updated_at, list(view.possible)))

    def _result_files(self, loaded: Loaded, field: str) -> list[FileRow] | None:
        """Files a result field shows: None when the field is not a result (or has none yet)."""
        roles = loaded.flux.results.get(field)
        if not roles or loaded.doc is None:
            return None
        rows = [f for f in loaded.files if f.role in roles]
        if "@document" in roles:
            rows += [f for f in loaded.files if f.role == "document"]
        return rows or None

    async def _results(self, session: AsyncSession, loaded: Loaded) -> dict[str, Any]:
        doc = loaded.doc
        assert doc is not None
        out: dict[str, Any] = {}
        for field in loaded.flux.results:
            rows = self._result_files(loaded, field)
            if rows:
                out[field] = [f.name for f in rows]
        if HISTORY in loaded.flux.fields and signature_entries(loaded.journal):
            out[HISTORY] = [f"{HISTORY}.xml"]
        roles = {f.role for f in loaded.files}
        for field, rule in loaded.flux.data.items():
            if "reply" in rule and doc.replies.get(rule["reply"]) is not None:
                out[field] = str(doc.replies[rule["reply"]])
            elif "role" in rule:
                if rule["role"] in roles:
                    out[field] = rule.get("value", "1")
                elif "otherwise" in rule:
                    out[field] = rule["otherwise"]
            elif "state_in" in rule:
                out[field] = rule["value"] if doc.state in rule["state_in"] else rule["otherwise"]
            elif "effect" in rule:
                remote = (await session.execute(
                    select(Effect.remote_id).where(Effect.document_id == doc.id, Effect.stage == rule["effect"],
                                                   Effect.remote_id.is_not(None))
                    .order_by(Effect.generation.desc()).limit(1))).scalar_one_or_none()
                if remote:
                    out[field] = remote
        out.update(courriers.data(loaded))
        return out

    # -- creation and edition ---------------------------------------------------------------

    async def create(self, key: ApiKey, id_e: int, flux_id: str | None, idempotency_key: str | None) -> dict[str, Any]:
        self.writable(key)
        if not flux_id:
            raise PastellError(400, "Le paramètre type est obligatoire")
        try:
            load_flux(flux_id)
        except KeyError:
            raise PastellError(400, f"Le type {flux_id} n'existe pas sur cette plateforme.") from None
        try:
            id_d = await self._create(key, id_e, flux_id, idempotency_key)
        except IntegrityError:  # a concurrent create with the same Idempotency-Key won
            async with self.store.sessions() as session:
                id_d = await self._by_idempotency(session, key, idempotency_key) or ""
            if not id_d:
                raise
        detail = await self.detail(key, id_e, id_d)
        return {**detail, "id_d": id_d}

    async def _create(self, key: ApiKey, id_e: int, flux_id: str, idempotency_key: str | None) -> str:
        async with self.store.transaction() as session:
            coll = await self.collectivite(session, key, id_e)
            existing = await self._by_idempotency(session, key, idempotency_key)
            if existing is None:
                now = utcnow()
                row = PastellDocument(id_d=new_id_d(), id_e=id_e, siren=coll.siren, flux=flux_id, titre="",
                                      fields={}, files={}, last_action="creation",
                                      last_message="Création du document [webservice]", last_action_at=now,
                                      deposited=False, deleted=False, api_key_id=key.id,
                                      idempotency_key=idempotency_key, created_at=now, modified_at=now)
                session.add(row)
                id_d = row.id_d
            else:
                id_d = existing
        return id_d

    @staticmethod
    async def _by_idempotency(session: AsyncSession, key: ApiKey, idempotency_key: str | None) -> str | None:
        if not idempotency_key:
            return None
        return (await session.execute(select(PastellDocument.id_d).where(
            PastellDocument.api_key_id == key.id, PastellDocument.idempotency_key == idempotency_key))).scalar_one_or_none()

    async def modify(self, key: ApiKey, id_e: int, id_d: str, fields: dict[str, str],
                     files: dict[str, list[FilePart]], *, append: bool = False) -> dict[str, Any]:
        """PATCH (and V1 modif-document.php): known fields are set, unknown ones ignored; a file
        part named after a field replaces it, or is appended to a multiple field (`append`)."""
        self.writable(key)
        stored = {field: [await self._put_blob(part, field) for part in parts] for field, parts in files.items()}
        async with self.store.transaction() as session:
            loaded = await self._editable(session, key, id_e, id_d, [*fields, *stored])
            row, flux = loaded.row, loaded.flux
            new_fields, new_files = dict(row.fields), {k: list(v) for k, v in row.files.items()}
            for name, value in fields.items():
                spec = flux.fields.get(name)
                if spec is not None and spec.type != "file":
                    new_fields[name] = value
            for name, entries in stored.items():
                spec = flux.fields.get(name)
                if spec is None or spec.type != "file":
                    continue
                if spec.multiple:
                    new_files[name] = new_files.get(name, []) + entries if append else entries
                else:
                    new_files[name] = entries[-1:]
            self._touch(row, flux, new_fields, new_files)
            return await self._envelope(session, loaded)

    async def put_file(self, key: ApiKey, id_e: int, id_d: str, field: str, num: int,
                       part: FilePart | None, file_name: str | None) -> dict[str, Any]:
        self.writable(key)
        if part is None:
            raise PastellError(400, "Le paramètre file_content est obligatoire")
        if file_name:
            part = FilePart(file_name, part.data, part.content_type)
        entry = await self._put_blob(part, field)
        async with self.store.transaction() as session:
            loaded = await self._editable(session, key, id_e, id_d, [field])
            spec = loaded.flux.fields.get(field)
            if spec is None or spec.type != "file":
                raise PastellError(400, f"Le champ {field} n'est pas un champ fichier du type {loaded.row.flux}")
            entries = list(loaded.row.files.get(field, []))
            if not spec.multiple:
                entries = [entry]
            elif num < len(entries):
                entries[num] = entry
            else:
                entries.append(entry)
            self._touch(loaded.row, loaded.flux, dict(loaded.row.fields), {**loaded.row.files, field: entries})
            return await self._envelope(session, loaded)

    async def delete_file(self, key: ApiKey, id_e: int, id_d: str, field: str, num: int) -> dict[str, Any]:
        self.writable(key)
        async with self.store.transaction() as session:
            loaded = await self._editable(session, key, id_e, id_d, [field])
            entries = list(loaded.row.files.get(field, []))
            if num >= len(entries):
                raise PastellError(404, f"Ce fichier n'existe pas : {field}/{num}")
            del entries[num]
            self._touch(loaded.row, loaded.flux, dict(loaded.row.fields), {**loaded.row.files, field: entries})
            return await self._envelope(session, loaded)

    async def _editable(self, session: AsyncSession, key: ApiKey, id_e: int, id_d: str,
                        fields: list[str] | None = None) -> Loaded:
        loaded = await self.load(session, key, id_e, id_d)
        if loaded.row.deposited:
            if not courriers.editable(loaded, fields or []):
                raise not_permitted("modification", "last-action n'est pas vérifiée")
            if await session.get(PastellDocument, id_d) is None:  # a native acte's view: kept from now on
                session.add(loaded.row)
        return loaded

    def _touch(self, row: PastellDocument, flux: Flux, fields: dict[str, str], files: dict[str, Any]) -> None:
        now = utcnow()
        row.fields, row.files = fields, files
        title = flux.title_field()
        row.titre = (fields.get(title, "") if title else "")[:500]
        row.last_action, row.last_message, row.last_action_at, row.modified_at = (
            "modification", "Modification du document [WS]", now, now)

    async def _envelope(self, session: AsyncSession, loaded: Loaded) -> dict[str, Any]:
        await session.flush()
        message = loaded.flux.validate_form(loaded.row.fields, loaded.row.files)
        return {"result": "ok", "formulaire_ok": 0 if message else 1, "message": message,
                "content": await self._detail(session, loaded)}

    async def _put_blob(self, part: FilePart, field: str) -> dict[str, Any]:
        if len(part.data) > self.max_bytes:
            raise PastellError(413, f"Le fichier {part.filename or field} dépasse la taille maximale "
                                    f"({self.max_bytes} octets)")
        name = (part.filename or field).replace("\\", "/").rsplit("/", 1)[-1][:200] or field
        name = re.sub(r'[\x00-\x1f"]', "_", name)  # it goes back out in a Content-Disposition header
        ref = await asyncio.to_thread(self.blobs.put, part.data)
        media = sniff_media_type(part.data[:1024]) or part.content_type or "application/octet-stream"
        return {"name": name, "sha256": ref.sha256, "size": ref.size, "media_type": media}

    # -- files ------------------------------------------------------------------------------

    async def download(self, key: ApiKey, id_e: int, id_d: str, field: str, num: int) -> Download:
        async with self.store.sessions() as session:
            loaded = await self.load(session, key, id_e, id_d)
        if field == HISTORY and loaded.doc is not None and signature_entries(loaded.journal) and num == 0:
            return Download(f"{HISTORY}.xml", build_history(loaded.journal), "application/xml")
        results = courriers.result_files(loaded, field)
        if results is None:
            results = self._result_files(loaded, field)
        if results is not None:
            if num >= len(results):
                raise PastellError(404, f"Ce fichier n'existe pas : {field}/{num}")
            row = results[num]
            data = await asyncio.to_thread(self.blobs.get, row.sha256)
            return Download(row.name, data, row.media_type)
        entries = loaded.row.files.get(field) or []
        if num >= len(entries):
            raise PastellError(404, f"Ce fichier n'existe pas : {field}/{num}")
        entry = entries[num]
        data = await asyncio.to_thread(self.blobs.get, entry["sha256"])
        return Download(entry["name"], data, entry["media_type"])

    # -- actions ----------------------------------------------------------------------------

    async def action(self, key: ApiKey, id_e: int, id_d: str, action: str) -> dict[str, Any]:
        self.writable(key)
        async with self.store.sessions() as session:
            loaded = await self.load(session, key, id_e, id_d)
        row, flux = loaded.row, loaded.flux
        _, _, _, possible = self.state(loaded)
        if action == "supression":
            if "supression" not in possible:
                raise not_permitted(action, "last-action n'est pas vérifiée")
            await self._keep_view(row)
            await self._mark(id_d, deleted=True, action=action, message="Le document a été supprimé")
            return {"result": True, "message": f"Le document « {row.titre} » a été supprimé"}
        if loaded.doc is None and action in flux.start:
            problem = flux.validate_form(row.fields, row.files)
            if problem:
                raise not_permitted(action, f"document_is_valide n'est pas vérifiée ({problem})")
            message = flux.start[action].message or f"L'action {action} a été lancée"
            await self._deposit(key, loaded, action)
            await self._mark(id_d, deposited=True, action=action, message=message)
            return {"result": True, "message": message}
        if action == "modification" and loaded.doc is None:
            return {"result": True, "message": "Modification du document"}
        if action not in possible:
            raise not_permitted(action, "last-action n'est pas vérifiée")
        if action in courriers.ACTIONS:
            return await courriers.act(self, key, loaded, action)
        if action.startswith("verif-"):
            await self.poll_now(id_d, row.siren)
            return {"result": True, "message": "Vérification demandée"}
        raise not_permitted(action, "action non prise en charge par dematbus")

    async def _keep_view(self, row: PastellDocument) -> None:
        """A native document's Pastell view becomes a row of its own before it changes."""
        async with self.store.transaction() as session:
            if await session.get(PastellDocument, row.id_d) is None:
                session.add(row)

    async def _mark(self, id_d: str, *, action: str, message: str, deposited: bool | None = None,
                    deleted: bool | None = None) -> None:
        now = utcnow()
        values: dict[str, Any] = {"last_action": action, "last_message": message, "last_action_at": now,
                                  "modified_at": now}
        if deposited is not None:
            values["deposited"] = deposited
        if deleted is not None:
            values["deleted"] = deleted
        async with self.store.transaction() as session:
            await session.execute(update(PastellDocument).where(PastellDocument.id_d == id_d).values(**values))

    async def _deposit(self, key: ApiKey, loaded: Loaded, action: str) -> None:
        row, flux = loaded.row, loaded.flux
        async with self.store.sessions() as session:
            if await session.get(Document, row.id_d) is not None:
                return  # deposited by an earlier attempt whose answer was lost
        uploads: list[Upload] = []
        for field in flux.file_fields():
            role = flux.fields[field].role
            if role is None:
                continue
            for entry in row.files.get(field, []):
                uploads.append(Upload(name=entry["name"], role=role, chunks=self.blobs.iter_chunks(entry["sha256"]),
                                      content_type=entry["media_type"]))
        uploads.sort(key=lambda u: u.role != "document")
        meta = flux.to_metadata(row.fields, action)
        try:
            await self.depositor.deposit(flow=flux.flow, siren=row.siren, metadata=meta, uploads=uploads,
                                         actor=key.id, document_id=row.id_d)
        except (DepositRefused, SchemaError) as exc:
            async with self.store.sessions() as session:
                if await session.get(Document, row.id_d) is not None:
                    return  # a concurrent call deposited it
            # Pastell's body has no code: the machine-readable one rides in a header.
            raise PastellError(400, f"L'action « {action} »  n'est pas permise : {exc.message}",
                               {"X-Error-Code": exc.code}) from None

    async def poll_now(self, id_d: str, siren: str) -> None:
        """`verif-*`: the worker asks the remote side now (bus.stages.runner.StageRunner.poll_now)."""
        async with self.store.transaction() as session:
            emit_event(session, Event(type="poll", document_id=id_d, siren=siren))

    # -- external data ----------------------------------------------------------------------

    async def external_data(self, key: ApiKey, id_e: int, id_d: str, field: str) -> Any:
        async with self.store.sessions() as session:
            loaded = await self.load(session, key, id_e, id_d)
        return external.choices(loaded, field)

    async def set_external_data(self, key: ApiKey, id_e: int, id_d: str, field: str,
                                values: dict[str, str], lists: dict[str, list[str]]) -> dict[str, Any]:
        self.writable(key)
        async with self.store.transaction() as session:
            loaded = await self._editable(session, key, id_e, id_d)
            fields = external.chosen(loaded, field, values, lists)
            self._touch(loaded.row, loaded.flux, fields, dict(loaded.row.files))
            await session.flush()
            return {**await self._detail(session, loaded), "result": "ok"}
