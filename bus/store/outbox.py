"""Transactional outbox: rows written in the same transaction as the state change they announce,
published to Kafka afterwards by the relay (`bus.relay`)."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from bus.store.models import OutboxEvent
from bus.topics import EVENTS, command_topic
from schemas.events import Command, Event


def enqueue(session: AsyncSession, topic: str, key: str, message: BaseModel) -> None:
    session.add(OutboxEvent(topic=topic, key=key, payload=message.model_dump(mode="json")))


def emit_event(session: AsyncSession, event: Event) -> None:
    enqueue(session, EVENTS, event.siren, event)


def emit_command(session: AsyncSession, command: Command) -> None:
    enqueue(session, command_topic(command.kind), command.siren, command)
