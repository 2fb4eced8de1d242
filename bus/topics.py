"""Kafka topic names."""

EVENTS = "dematbus.events"


def command_topic(kind: str) -> str:
    return f"dematbus.cmd.{kind}"
# Every journaled state change (bus.moves): live counters and webhooks consume it.
MOVES = "dematbus.moves"
