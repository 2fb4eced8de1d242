"""Tables of the durable store: the system of record (invariant 1)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Naive UTC: SQLite and PostgreSQL then compare datetimes the same way."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON, datetime: DateTime()}


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
    at the remote side by `reference` instead of performing it again (invariant 2)."""

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
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxEvent(Base):
    __tablename__ = "outbox"

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
