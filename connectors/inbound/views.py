"""What the API shows of a document (pydantic models at the boundary)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from bus.courriers import rules
from bus.courriers.messages import Listed
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


class ReplyView(BaseModel):
    kind: str  # pieces, refus, reponse
    code: str  # 3-4
    status: str  # intent, retry (being sent), submitted (at the TdT), done, failed
    transaction_id: str | None
    requested_by: str
    requested_at: datetime
    sent_at: datetime | None
    acknowledged_at: datetime | None
    files: list[dict[str, Any]]  # {name, role, typologie}
    error: str | None


class PrefectureMessageView(BaseModel):
    id: int
    type: str  # "3-1"
    label: str  # "Demande de pièces complémentaires"
    remote_id: str  # the message's transaction at the TdT
    received_at: datetime
    sent_on: date | None  # the letter's date (DateCourrierPref; a déféré's DateDepot)
    state: str  # received, answered, closed
    due_date: date | None  # bus/courriers/rules.py:due_date
    fields: dict[str, Any]  # description_pieces, motif, nature_illegalite…
    files: list[FileView]
    error: str | None  # the archive could not be read
    replies_allowed: list[str]  # the kinds of reply it takes now
    reply: ReplyView | None


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
    prefecture_messages: list[PrefectureMessageView] = []


def file_view(f: File) -> FileView:
    return FileView(name=f.name, role=f.role, size=f.size, sha256=f.sha256, media_type=f.media_type)


def message_view(listed: Listed, files: dict[str, File], personal: bool = True) -> PrefectureMessageView:
    """`personal` False: for a key without the read role of an encrypted flow (RH), the letter's
    text is left out (a demande about an arrêté individuel names the agent)."""
    m, r = listed.message, listed.reply
    reply = None if r is None else ReplyView(
        kind=r.kind, code=r.code, status=r.status, transaction_id=r.remote_id, requested_by=r.requested_by,
        requested_at=r.created_at, sent_at=r.sent_at, acknowledged_at=r.acknowledged_at, files=list(r.files or []),
        error=r.last_error if r.status in ("failed", "retry") else None)
    open_reply = r is not None and r.status in (*rules.OPEN, "done")
    return PrefectureMessageView(
        id=m.id, type=m.code, label=rules.LABELS[m.code], remote_id=m.remote_id, received_at=m.received_at,
        sent_on=m.sent_on, state=m.state, due_date=m.due_date, fields=dict(m.fields or {}) if personal else {},
        files=[file_view(files[n]) for n in m.files or [] if n in files], error=m.error,
        replies_allowed=[] if m.state != rules.RECEIVED or open_reply else list(rules.REPLIES[m.code]), reply=reply)


def document_view(doc: Document, files: list[File], timeline: list[JournalEntry],
                  messages: list[Listed] | None = None, personal: bool = True) -> DocumentView:
    by_name = {f.name: f for f in files}
    return DocumentView(
        id=doc.id, flow=doc.flow, siren=doc.siren, state=doc.state, terminal=load_flow(doc.flow).is_terminal(doc.state),
        stage=doc.stage, generation=doc.generation,
        metadata=doc.meta, replies=doc.replies, reason=doc.reason, created_at=doc.created_at,
        updated_at=doc.updated_at,
        files=[file_view(f) for f in files],
        timeline=[TimelineEntry(seq=j.seq, at=j.at, event=j.event, state=j.state, detail=j.detail) for j in timeline],
        prefecture_messages=[message_view(m, by_name, personal) for m in messages or []],
    )

