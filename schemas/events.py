"""Messages carried by Kafka. They hold references (ids, hashes), never files (docs/invariants.md §3)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

EventType = Literal[
    "deposited",  # a document was accepted by the API
    "stage.submitted",  # the remote side accepted the effect and gave us an id
    "stage.done",
    "stage.rejected",  # a business refusal (préfecture anomaly, SAE refusal, parapheur rejection)
    "stage.failed",  # technical failure after the last attempt
    "redrive",  # reconciler or operator: push the document again from where it stands
    "replay",  # operator: restart a document in error at its failed stage, as a new generation
    "poll",  # a client asks that the remote side be asked now (Pastell's verif-* actions)
    "annulation.acknowledged",  # the remote side acknowledged a document's annulation (bus.annulation)
]


class Event(BaseModel):
    """On `dematbus.events`, key = SIREN."""

    type: EventType
    document_id: str
    siren: str
    stage: str | None = None
    generation: int | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None


class Command(BaseModel):
    """On `dematbus.cmd.<kind>`, key = SIREN: perform one stage of one document."""

    document_id: str
    siren: str
    flow: str
    stage: str
    kind: str
    generation: int
