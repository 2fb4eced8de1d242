"""Collecting the préfecture's messages about acknowledged actes (docs/protocols.md §2.2).

One `list_document_prefecture.php` per collectivité and interval (`prefecture_poll_interval`),
whatever the number of its actes: the TdT lists the collectivité's unread messages, each with the
acte's transaction and numéro, and a message is matched to its acte by the numéro (the flow's
business key) and checked against the acte's transaction. The collectivités asked are those with
at least one acknowledged acte and a TdT connector; the `prefecture_polls` lease keeps it to one
listing per interval across workers.

For each message, in this order, so that a worker dying anywhere loses nothing and records
nothing twice:
1. already recorded (same collectivité and remote id)? Then only mark it read: a worker died
   after the record and before the TdT heard of it;
2. download its archive, parse and XSD-check it (the connector), put its files in the blob store
   (sealed when the flow is encrypted);
3. ONE transaction: the `prefecture_messages` row (unique on the remote id), its files, the
   acte's journal entry and the announced move;
4. only then mark it read at the TdT.
A message whose archive is hostile or broken for good is recorded without files, with the reason,
so that the collectivité still sees the préfecture wrote; a transient failure leaves it unread for
the next round.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bus.blobs import BlobStore
from bus.collectivite_config import ConnectorsConfig
from bus.courriers import ledger, messages, rules
from bus.flows.definition import flow_names, load_flow
from bus.store.db import Store
from bus.store.models import Collectivite, Document, Effect, PrefectureMessage
from connectors.base import ConnectorError, OutputFile, PermanentConnectorError
from connectors.registry import ConnectorRegistry
from connectors.tdt.s2low_prefecture import PrefectureMessage as Downloaded
from connectors.tdt.s2low_prefecture import PrefectureMessageRef

log = logging.getLogger(__name__)
RECEIVED_EVENT = "prefecture_message.received"


def courrier_flows() -> dict[str, str]:
    """flow -> the stage whose acknowledged transmission the préfecture writes about."""
    return {name: stage for name in flow_names() if (stage := load_flow(name).courriers_stage)}


def flows_by_connector() -> dict[str, list[str]]:
    """connector key (the collectivité's configuration entry) -> the flows it transmits."""
    out: dict[str, list[str]] = defaultdict(list)
    for flow, stage in courrier_flows().items():
        out[load_flow(flow).stage(stage).connector_key].append(flow)
    return dict(out)


async def find_acte(session: AsyncSession, siren: str, flows: list[str], ref: PrefectureMessageRef) -> Document | None:
    """The acte a listed message is about: its numéro, then its transaction (or IDActe)."""
    candidates = (await session.execute(select(Document).where(
        Document.siren == siren, Document.flow.in_(flows), Document.business_key == ref.numero))).scalars()
    for doc in candidates:
        replies = doc.replies or {}
        if ref.acte_transaction_id and str(replies.get("tdt_transaction_id") or "") == ref.acte_transaction_id:
            return doc
        if ref.id_acte and replies.get("id_acte") == ref.id_acte:
            return doc
    return None


async def recorded(session: AsyncSession, siren: str, remote_id: str) -> int | None:
    return (await session.execute(select(PrefectureMessage.id).where(
        PrefectureMessage.siren == siren, PrefectureMessage.remote_id == remote_id))).scalar_one_or_none()


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in fields.items()}


class Collector:
    def __init__(self, store: Store, blobs: BlobStore, registry: ConnectorRegistry, interval: float) -> None:
        self.store, self.blobs, self.registry, self.interval = store, blobs, registry, interval
        self._eligible: dict[str, dict[str, Any]] = {}
        self._eligible_at = float("-inf")

    async def run_due(self) -> int:
        """One round: every collectivité whose poll is due and ours is asked once. Returns how many."""
        eligible = await self.eligible()
        asked = 0
        for siren, seen in await ledger.due_polls(self.store, sorted(eligible)):
            if not await ledger.claim_poll(self.store, siren, seen, self.interval):
                continue  # another worker's
            asked += 1
            error = None
            try:
                await self.collect(siren, eligible[siren])
            except Exception as exc:  # noqa: BLE001 - the next round asks again; the row says why
                error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("préfecture messages of %s: %s", siren, error)
            await ledger.poll_done(self.store, siren, error)
        return asked

    async def eligible(self) -> dict[str, dict[str, Any]]:
        """SIREN -> connectors of the collectivités with an acknowledged acte and a TdT connector,
        looked up again at most once a minute (a collectivité's first AR is not urgent to the second)."""
        if time.monotonic() - self._eligible_at < min(self.interval, 60.0):
            return self._eligible
        flows = courrier_flows()
        keys = flows_by_connector()
        acknowledged = (select(Document.id).join(Effect, Effect.document_id == Document.id).where(
            Document.siren == Collectivite.siren, Effect.status == "done",
            or_(*(and_(Document.flow == flow, Effect.stage == stage) for flow, stage in flows.items())))
            .exists())
        async with self.store.sessions() as session:
            rows = (await session.execute(select(Collectivite.siren, Collectivite.connectors)
                                          .where(acknowledged))).tuples().all()
        configs = {siren: ConnectorsConfig.parse(cfg, check=False) for siren, cfg in rows}
        self._eligible = {siren: c.slots for siren, c in configs.items() if any(c.has(k) for k in keys)}
        self._eligible_at = time.monotonic()
        return self._eligible

    async def collect(self, siren: str, connectors_cfg: dict[str, Any]) -> int:
        """Ask the collectivité's TdT(s) once for its unread messages and record them. Returns how
        many were new."""
        new = 0
        for key, flows in flows_by_connector().items():
            if not connectors_cfg.get(key):
                continue
            connector: Any = self.registry.get(key, connectors_cfg)
            if not hasattr(connector, "prefecture_messages"):
                continue
            for ref in await connector.prefecture_messages():
                try:
                    new += await self._one(siren, flows, connector, ref)
                except ConnectorError as exc:  # this one stays unread: the next round tries again
                    log.warning("préfecture message %s of %s: %s", ref.transaction_id, siren, exc)
        return new

    async def _one(self, siren: str, flows: list[str], connector: Any, ref: PrefectureMessageRef) -> int:
        async with self.store.sessions() as session:
            known = await recorded(session, siren, ref.transaction_id)
            acte = None if known else await find_acte(session, siren, flows, ref)
        if known is None:
            if acte is None:
                log.info("préfecture message %s (%s) is about an acte dematbus did not send: left unread",
                         ref.transaction_id, ref.numero)
                return 0
            if not await self._record(connector, acte, ref):
                return 0
        await connector.mark_prefecture_message_read(ref.transaction_id)
        return 0 if known else 1

    async def _record(self, connector: Any, acte: Document, ref: PrefectureMessageRef) -> bool:
        downloaded: Downloaded | None = None
        error = None
        try:
            downloaded = await connector.prefecture_message(ref)
        except PermanentConnectorError as exc:
            error = str(exc)
            log.error("préfecture message %s refused: %s", ref.transaction_id, exc)
        files: list[OutputFile] = [downloaded.archive, *downloaded.files] if downloaded else []
        seal_for = acte.siren if load_flow(acte.flow).encrypted else None
        refs = await asyncio.to_thread(lambda: [self.blobs.put(f.data, seal_for=seal_for) for f in files])
        sent_on = downloaded.sent_on if downloaded else None

        async def record(session: AsyncSession) -> None:
            if await recorded(session, acte.siren, ref.transaction_id):
                return  # another worker's, or ours before a crash
            doc = await session.get(Document, acte.id, populate_existing=True)
            assert doc is not None
            row = PrefectureMessage(
                document_id=doc.id, siren=doc.siren, code=ref.code, remote_id=ref.transaction_id,
                state=rules.RECEIVED, sent_on=sent_on, due_date=rules.due_date(ref.code, sent_on),
                fields=_jsonable(downloaded.fields) if downloaded else {}, files=[], error=error)
            session.add(row)
            await session.flush()
            row.files = await messages.add_files(session, doc.id, [(f.name, f.role, f.media_type) for f in files], refs)
            entry = await messages.record_event(
                session, doc, row, RECEIVED_EVENT,
                {"label": rules.LABELS[ref.code], "remote_id": ref.transaction_id, **({"error": error} if error else {})},
                counted=True)
            row.received_at = entry.at

        try:
            await messages.retrying(self.store, record)
        except IntegrityError:
            log.warning("préfecture message %s: could not be recorded now, next round", ref.transaction_id)
            return False
        return True
