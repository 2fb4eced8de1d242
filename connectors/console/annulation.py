"""The place of "Annuler l'acte" (ACTES annulation, 6-1 → ARAnnulation) in the console.

The console does not build annulation. `hook` has the signature of the bus's
`bus.annulation.request_annulation(store, document_id, actor, *, scope)` and is wired at merge
time (`annulation.hook = request_annulation`); a refusal it raises with `status`, `code` and
`message` is shown as an error page. Until then the button is not shown and the route refuses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection
from typing import Protocol

from bus.store.db import Store
from bus.store.models import ApiKey, Document
from connectors.console.web import ConsoleError

# Where the button shows; the hook has the last word on what may be cancelled.
ACKNOWLEDGED = {"actes": ("acknowledged", "archiving", "archived")}


class Hook(Protocol):
    def __call__(self, store: Store, document_id: str, actor: str, *,
                 scope: Collection[str] | None = None) -> Awaitable[None]: ...


hook: Hook | None = None


def available(doc: Document) -> bool:
    return hook is not None and doc.state in ACKNOWLEDGED.get(doc.flow, ())


async def request(store: Store, key: ApiKey, doc: Document) -> None:
    if hook is None or not available(doc):
        raise ConsoleError(409, "not_cancellable", "Seul un acte acquitté peut être annulé depuis la console.")
    try:
        await hook(store, doc.id, key.name or key.id, scope=key.sirens)
    except Exception as exc:
        if not all(hasattr(exc, a) for a in ("status", "code", "message")):
            raise
        raise ConsoleError(exc.status, exc.code, exc.message) from exc  # type: ignore[attr-defined]
