"""Kafka topic names."""

EVENTS = "dematbus.events"
STAGE_KINDS = ("signature", "tdt", "sae", "delivery")


def command_topic(kind: str) -> str:
    return f"dematbus.cmd.{kind}"
