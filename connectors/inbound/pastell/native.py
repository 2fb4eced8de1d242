"""Documents deposited natively (`/api/v1`, the command line, a watched folder) seen through the
Pastell API: the flux that shows their flow (`native: true` in `flux/*.yaml`) gives them Pastell
fields and files, computed from the document, never stored. A Pastell action that changes how
Pastell sees one (`supression`) stores that view as a row of its own."""

from __future__ import annotations

from typing import Any

from bus.store.models import Document, PastellDocument
from bus.store.models import File as FileRow
from connectors.inbound.pastell.flux import native_flux


def view_row(doc: Document, id_e: int, files: list[FileRow]) -> PastellDocument | None:
    """The Pastell row of a native document (not added to any session), None when its flow has
    no Pastell flux (the RH flows)."""
    flux = native_flux().get(doc.flow)
    if flux is None:
        return None
    fields = flux.from_metadata(doc.meta or {})
    by_field: dict[str, list[dict[str, Any]]] = {}
    taken: set[str] = set()
    for field in flux.file_fields():
        role = flux.fields[field].role
        if role is None or role in taken:
            continue
        taken.add(role)
        entries = [{"name": f.name, "sha256": f.sha256, "size": f.size, "media_type": f.media_type}
                   for f in files if f.role == role]
        if entries:
            by_field[field] = entries
    title = flux.title_field()
    if title and not fields.get(title):  # HELIOS: Pastell titles a PES with its file name
        fields[title] = next((f.name for f in files if f.role == "document"), "")
    start = flux.native_start(doc.meta or {})
    return PastellDocument(
        id_d=doc.id, id_e=id_e, siren=doc.siren, flux=flux.id, titre=(fields.get(title, "") if title else "")[:500],
        fields=fields, files=by_field, last_action=start, last_message=flux.start[start].message,
        last_action_at=doc.created_at, deposited=True, deleted=False, api_key_id=doc.api_key_id,
        idempotency_key=None, created_at=doc.created_at, modified_at=doc.updated_at)
