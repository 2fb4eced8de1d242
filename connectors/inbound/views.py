"""What the API shows of a document (pydantic models at the boundary)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from bus.flows.definition import load_flow
from bus.store.models import Document, File, JournalEntry


class FileView(BaseModel):
    name: str
    role: str
    size: int
    sha256: str
    media_type: str


class TimelineEntry(BaseModel):
    seq: int
    at: datetime
    event: str
    state: str
    detail: dict[str, Any]


class DocumentView(BaseModel):
    id: str
    flow: str
    siren: str
    state: str
    terminal: bool  # the state is terminal in the document's flow (bus/flows/<flow>.yaml)
    stage: str | None
    generation: int
    metadata: dict[str, Any]
    replies: dict[str, Any]
    reason: str | None
    created_at: datetime
    updated_at: datetime
    files: list[FileView]
    timeline: list[TimelineEntry]


def document_view(doc: Document, files: list[File], timeline: list[JournalEntry]) -> DocumentView:
    return DocumentView(
        id=doc.id, flow=doc.flow, siren=doc.siren, state=doc.state, terminal=load_flow(doc.flow).is_terminal(doc.state),
        stage=doc.stage, generation=doc.generation,
        metadata=doc.meta, replies=doc.replies, reason=doc.reason, created_at=doc.created_at,
        updated_at=doc.updated_at,
        files=[FileView(name=f.name, role=f.role, size=f.size, sha256=f.sha256, media_type=f.media_type) for f in files],
        timeline=[TimelineEntry(seq=j.seq, at=j.at, event=j.event, state=j.state, detail=j.detail) for j in timeline],
    )

