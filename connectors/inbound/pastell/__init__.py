"""Pastell API compatibility: existing business connectors work by changing one URL.

`mount` adds the path-normalising middleware, the `/api/v2/` routes and the legacy `/api/*.php`
scripts to the dematbus API. Documents created here are deposited through `bus.deposits.Depositor`
under their `id_d`, so they are the same documents in `/api/v1`, the console and the reports.
"""

from __future__ import annotations

from fastapi import FastAPI

from bus.blobs import BlobStore
from bus.config import Settings
from bus.deposits import Depositor
from bus.store.db import Store
from connectors.inbound.pastell import v1, v2
from connectors.inbound.pastell.catalog import Catalog
from connectors.inbound.pastell.context import Pastell
from connectors.inbound.pastell.documents import Documents
from connectors.inbound.pastell.paths import PastellPathMiddleware


def mount(app: FastAPI, store: Store, blobs: BlobStore, depositor: Depositor, settings: Settings) -> None:
    documents = Documents(store, blobs, depositor, settings)
    pastell = Pastell(documents, Catalog(documents), app.state.throttle)
    app.state.pastell = pastell
    app.add_middleware(PastellPathMiddleware)
    app.include_router(v2.build_router(pastell))
    app.include_router(v1.build_router(pastell))
