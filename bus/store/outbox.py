"""Transactional outbox: rows written in the same transaction as the state change they announce,
published to Kafka afterwards by the relay (`bus.relay`)."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from bus.store.db import OUTBOX_WRITTEN
from bus.store.models import OutboxEvent
from bus.topics import EVENTS, command_topic
from schemas.events import Command, Event


def enqueue(session: AsyncSession, topic: str, key: str, message: BaseModel) -> None:
    add_row(session, OutboxEvent(topic=topic, key=key, payload=message.model_dump(mode="json")))


def add_row(session: AsyncSession, row: OutboxEvent) -> None:
    """Every outbox row is added here: the commit then wakes this process's relay at once."""
    session.add(row)
    session.info[OUTBOX_WRITTEN] = True


def emit_event(session: AsyncSession, event: Event) -> None:
    enqueue(session, EVENTS, event.siren, event)


def emit_command(session: AsyncSession, command: Command) -> None:
    enqueue(session, command_topic(command.kind), command.siren, command)
