"""Kafka topic names."""

EVENTS = "dematbus.events"


def command_topic(kind: str) -> str:
    return f"dematbus.cmd.{kind}"
