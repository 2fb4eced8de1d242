""""Annuler l'acte" in the console: the bus's annulation (6-1 → ARAnnulation), its refusals shown
as error pages."""

from __future__ import annotations

from bus.annulation import AnnulationRefused, annulable_states, request_annulation
from bus.flows.definition import load_flow
from bus.store.db import Store
from bus.store.models import ApiKey, Document
from connectors.console.web import ConsoleError


def available(doc: Document) -> bool:
    """Whether the button shows; `request_annulation` has the last word on what may be cancelled."""
    return doc.state in annulable_states(load_flow(doc.flow))


async def request(store: Store, key: ApiKey, doc: Document) -> None:
    if not available(doc):
        raise ConsoleError(409, "not_cancellable", "Seul un acte acquitté peut être annulé depuis la console.")
    try:
        await request_annulation(store, doc.id, key.name or key.id, scope=key.sirens)
    except AnnulationRefused as exc:
        raise ConsoleError(exc.status, exc.code, exc.message) from exc
