"""Tables of the durable store: the system of record (docs/invariants.md §1)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Naive UTC: SQLite and PostgreSQL then compare datetimes the same way."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, dict[str, Any] | None: JSON, list[str]: JSON, datetime: DateTime()}


class Collectivite(Base):
    __tablename__ = "collectivites"

    siren: Mapped[str] = mapped_column(String(9), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    departement: Mapped[str] = mapped_column(String(3))
    arrondissement: Mapped[str] = mapped_column(String(1), default="0")
    nature_code: Mapped[str] = mapped_column(String(2))
    classification_xml: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    classification_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    # Per stage kind, which connector serves this collectivité and its options:
    # {"signature": {"kind": "pades", ...}, "tdt": {"kind": "s2low", ...}, "sae": {...}}
    connectors: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    roles: Mapped[list[str]] = mapped_column(default=list)
    sirens: Mapped[list[str]] = mapped_column(default=list)  # ["*"] = every collectivité
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("api_key_id", "idempotency_key", name="uq_documents_idempotency"),
        UniqueConstraint("flow", "siren", "business_key", name="uq_documents_business_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    flow: Mapped[str] = mapped_column(String(40), index=True)
    siren: Mapped[str] = mapped_column(ForeignKey("collectivites.siren"), index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    stage: Mapped[str | None] = mapped_column(String(40), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    replies: Mapped[dict[str, Any]] = mapped_column(default=dict)  # IDActe, archive id, ...
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    api_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The flow's own unique reference (ACTES: the numéro interne), unique per collectivité.
    business_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # Optimistic concurrency: every UPDATE checks the version it read (StaleDataError otherwise).
    __mapper_args__ = {"version_id_col": version}


class File(Base):
    __tablename__ = "files"
    __table_args__ = (UniqueConstraint("document_id", "name", name="uq_files_document_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    role: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JournalEntry(Base):
    """Append-only (enforced by triggers in the migration), hash-chained per document."""

    __tablename__ = "journal"
    __table_args__ = (UniqueConstraint("document_id", "seq", name="uq_journal_document_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    event: Mapped[str] = mapped_column(String(60))
    state: Mapped[str] = mapped_column(String(20))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Effect(Base):
    """Effects ledger: one row per external effect (document, stage, generation).

    The intent is recorded before the remote call; on redelivery the runner looks the effect up
    at the remote side by `reference` instead of performing it again (docs/invariants.md §2)."""

    __tablename__ = "effects"
    __table_args__ = (UniqueConstraint("document_id", "stage", "generation", name="uq_effects_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    stage: Mapped[str] = mapped_column(String(40))
    generation: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(100), unique=True)
    # intent -> submitted -> done | rejected | failed ; "retry" while waiting for a new attempt
    status: Mapped[str] = mapped_column(String(20), index=True)
    remote_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    # The outcome event (stage.done / stage.rejected / stage.failed) as emitted, kept so a redrive
    # can apply it again when the event itself was lost (a worker killed with it in a lane).
    outcome: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    # What the connector recorded about the effect before its first call (`intent_facts`), handed
    # back to `lookup` and `submit` at every later attempt.
    intent: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxEvent(Base):
    __tablename__ = "outbox"
    # The relay reads the oldest pending rows, 20 times a second. A plain index on published_at
    # still hands PostgreSQL every row ever published (their old NULL entries, until vacuum):
    # 25 ms a query at 35 000 rows. This partial index holds the pending rows only.
    __table_args__ = (
        Index("ix_outbox_pending", "id", postgresql_where=text("published_at IS NULL"),
              sqlite_where=text("published_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)


class DeadLetter(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    stage: Mapped[str] = mapped_column(String(40))
    generation: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Batch(Base):
    """A deposit of many documents at once (a month's payslips); each is a document of its own."""

    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("api_key_id", "idempotency_key", name="uq_batches_idempotency"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    flow: Mapped[str] = mapped_column(String(40))
    siren: Mapped[str] = mapped_column(ForeignKey("collectivites.siren"), index=True)
    periode: Mapped[str] = mapped_column(String(7))
    size: Mapped[int] = mapped_column(Integer)
    api_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BatchDocument(Base):
    __tablename__ = "batch_documents"

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), primary_key=True, unique=True)
    matricule: Mapped[str] = mapped_column(String(30))
# -- operations (branch ops): live counters, webhooks, collectivité groups -----------------------


class LiveCounter(Base):
    """Live counters (bus.counters), written with each move, one row per siren × flow × day × metric."""

    __tablename__ = "live_counters"
    __table_args__ = (PrimaryKeyConstraint("siren", "flow", "day", "metric", name="pk_live_counters"),)

    siren: Mapped[str] = mapped_column(String(9))
    flow: Mapped[str] = mapped_column(String(40))
    day: Mapped[date] = mapped_column(Date, index=True)
    metric: Mapped[str] = mapped_column(String(60))
    value: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Webhook(Base):
    """A collectivité's endpoint notified of every state change of its documents (bus.webhooks)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    siren: Mapped[str] = mapped_column(ForeignKey("collectivites.siren"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One state change to POST to one webhook: pending -> delivered, or failed after the last try."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CollectiviteGroup(Base):
    """A syndicat and its members, an EPCI and its communes: reports roll up over the members."""

    __tablename__ = "collectivite_groups"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(20), default="syndicat")  # syndicat, epci, autre
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CollectiviteGroupMember(Base):
    __tablename__ = "collectivite_group_members"
    __table_args__ = (PrimaryKeyConstraint("group_name", "siren", name="pk_collectivite_group_members"),)

    group_name: Mapped[str] = mapped_column(ForeignKey("collectivite_groups.name"))
    siren: Mapped[str] = mapped_column(ForeignKey("collectivites.siren"), index=True)


class AnnulationEffect(Base):
    """Ledger of cancellations (bus.annulation), like `effects` for the stages: intent recorded
    before the remote call; intent/retry -> submitted -> done | rejected | failed."""

    __tablename__ = "annulations"
    __table_args__ = (UniqueConstraint("document_id", "generation", name="uq_annulations_generation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    generation: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), index=True)
    target_id: Mapped[str] = mapped_column(String(200))  # the remote id of the effect to cancel
    remote_id: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the cancellation's own id
    requested_by: Mapped[str] = mapped_column(String(200), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
class PastellEntite(Base):
    """Pastell compatibility: the stable integer `id_e` of a collectivité."""

    __tablename__ = "pastell_entites"

    id_e: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    siren: Mapped[str] = mapped_column(ForeignKey("collectivites.siren"), unique=True)


class PastellDocument(Base):
    """A document seen through the Pastell API: its Pastell fields and files, a draft until the
    starting action deposits it (then `documents.id` == `id_d`)."""

    __tablename__ = "pastell_documents"
    __table_args__ = (UniqueConstraint("api_key_id", "idempotency_key", name="uq_pastell_idempotency"),)

    id_d: Mapped[str] = mapped_column(String(36), primary_key=True)
    id_e: Mapped[int] = mapped_column(Integer, index=True)
    siren: Mapped[str] = mapped_column(String(9), index=True)
    flux: Mapped[str] = mapped_column(String(60), index=True)
    titre: Mapped[str] = mapped_column(String(500), default="")
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)  # field -> string
    files: Mapped[dict[str, Any]] = mapped_column(default=dict)  # field -> [{name, sha256, size, media_type}]
    last_action: Mapped[str] = mapped_column(String(60), default="creation")
    last_message: Mapped[str] = mapped_column(Text, default="")
    last_action_at: Mapped[datetime] = mapped_column(default=utcnow)
    deposited: Mapped[bool] = mapped_column(default=False)
    deleted: Mapped[bool] = mapped_column(default=False)
    api_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthThrottle(Base):
    """Failed authentications per face (`api`, `console`, `pastell`) and client address, shared by
    every API process (bus/store/throttle.py): a fixed window, then a lock-out."""

    __tablename__ = "auth_throttle"
    __table_args__ = (PrimaryKeyConstraint("face", "client"),)

    face: Mapped[str] = mapped_column(String(20))
    client: Mapped[str] = mapped_column(String(100))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)


class AuthLockout(Base):
    """The audit trail of lock-outs (one row each time a client crosses the limit); documents'
    journals stay per document."""

    __tablename__ = "auth_lockouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    face: Mapped[str] = mapped_column(String(20))
    client: Mapped[str] = mapped_column(String(100))
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime] = mapped_column()


# -- préfecture messages after the acknowledgement (bus/courriers) -------------------------------


class PrefectureMessage(Base):
    """A letter of the préfecture about an acte (2-1, 3-1, 4-1, 5-1), collected from the TdT.
    Its files are files of the document (`files` names them); the document's own state never
    changes because of it."""

    __tablename__ = "prefecture_messages"
    # S²low lists a message until it is marked read: the same remote id must never be recorded twice.
    __table_args__ = (UniqueConstraint("siren", "remote_id", name="uq_prefecture_messages_remote"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    siren: Mapped[str] = mapped_column(String(9), index=True)
    code: Mapped[str] = mapped_column(String(3))  # "3-1"
    remote_id: Mapped[str] = mapped_column(String(100))  # the message's transaction at the TdT
    state: Mapped[str] = mapped_column(String(20), index=True)  # received -> answered -> closed
    sent_on: Mapped[date | None] = mapped_column(Date, nullable=True)  # DateCourrierPref (5-1: DateDepot)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    due_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)  # description_pieces, motif, nature_illegalite…
    files: Mapped[list[str]] = mapped_column(default=list)  # names of the document's files it brought
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why its archive could not be read
    closed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)  # closed without a reply, by
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PrefectureReply(Base):
    """Ledger of the collectivité's replies to the préfecture (bus/courriers/replies.py), like
    `annulations`: intent recorded before the call; intent/retry -> submitted -> done | failed."""

    __tablename__ = "prefecture_replies"
    __table_args__ = (UniqueConstraint("message_id", "generation", name="uq_prefecture_replies_generation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("prefecture_messages.id"), index=True)
    generation: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # pieces, refus, reponse
    code: Mapped[str] = mapped_column(String(3))  # the reply's ACTES code: "3-4"
    status: Mapped[str] = mapped_column(String(20), index=True)
    remote_id: Mapped[str | None] = mapped_column(String(100), nullable=True)  # the reply's transaction
    requested_by: Mapped[str] = mapped_column(String(200), default="")
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{name, typologie}], the document first
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PrefecturePoll(Base):
    """When a collectivité's TdT is next asked for the préfecture's messages: one listing per
    collectivité and interval, whatever the number of workers (bus/courriers/collect.py)."""

    __tablename__ = "prefecture_polls"

    siren: Mapped[str] = mapped_column(ForeignKey("collectivites.siren"), primary_key=True)
    next_at: Mapped[datetime] = mapped_column(default=utcnow)
    polled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
