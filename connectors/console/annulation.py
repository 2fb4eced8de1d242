"""The place of "Annuler l'acte" (ACTES annulation, 6-1 → ARAnnulation) in the console.

The console does not build annulation: `hook` is wired at merge time to the bus's
`request_annulation` (for example `annulation.hook = bus.annulation.request_annulation`
wrapped to this signature). Until then the button is not shown and the route refuses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bus.store.db import Store
from bus.store.models import ApiKey, Document
from connectors.console.web import ConsoleError

Hook = Callable[[Store, ApiKey, Document], Awaitable[object]]
hook: Hook | None = None


def available(doc: Document) -> bool:
    return hook is not None and doc.flow == "actes" and doc.state == "acknowledged"


async def request(store: Store, key: ApiKey, doc: Document) -> None:
    if hook is None or not available(doc):
        raise ConsoleError(409, "not_cancellable", "Seul un acte acquitté peut être annulé depuis la console.")
    await hook(store, key, doc)
