"""Finding documents: by collectivité, flow, state, period and free text, one page at a time.

Free text matches the objet (metadata), the flow's business key (ACTES numéro interne, HELIOS
NomFic) and file names. The JSON path and LIKE run the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, func, or_, select

from bus.scope import restrict
from bus.store.db import Store
from bus.store.models import ApiKey, Document, File


@dataclass(frozen=True)
class DocumentFilter:
    siren: str | None = None
    flow: str | None = None
    state: str | None = None
    since: date | None = None  # created on or after this day (UTC)
    until: date | None = None  # created on or before this day (UTC)
    text: str | None = None


@dataclass
class Page:
    documents: list[Document]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(query: Select, key: ApiKey, f: DocumentFilter) -> Select:  # type: ignore[type-arg]
    query = restrict(query, Document.siren, key)
    if f.siren:
        query = query.where(Document.siren == f.siren)
    if f.flow:
        query = query.where(Document.flow == f.flow)
    if f.state:
        query = query.where(Document.state == f.state)
    if f.since:
        query = query.where(Document.created_at >= datetime.combine(f.since, time.min))
    if f.until:
        query = query.where(Document.created_at < datetime.combine(f.until + timedelta(days=1), time.min))
    if f.text and f.text.strip():
        pattern = _like(f.text.strip())
        named = select(File.document_id).where(File.name.ilike(pattern, escape="\\"))
        query = query.where(or_(
            Document.meta["objet"].as_string().ilike(pattern, escape="\\"),
            Document.business_key.ilike(pattern, escape="\\"),
            Document.id.in_(named),
        ))
    return query


async def search(store: Store, key: ApiKey, f: DocumentFilter, *, page: int = 1, per_page: int = 50) -> Page:
    """The key's documents matching `f`, newest first."""
    page = max(1, page)
    listing = _where(select(Document), key, f).order_by(Document.created_at.desc(), Document.id)
    counting = _where(select(func.count()).select_from(Document), key, f)
    async with store.sessions() as session:
        total = int((await session.execute(counting)).scalar_one())
        docs = list((await session.execute(listing.offset((page - 1) * per_page).limit(per_page))).scalars())
    return Page(documents=docs, total=total, page=page, per_page=per_page)
