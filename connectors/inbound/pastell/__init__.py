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
from connectors.inbound.pastell import fallback, v1, v2, v2_admin
from connectors.inbound.pastell.catalog import Catalog
from connectors.inbound.pastell.connecteur_admin import Connecteurs
from connectors.inbound.pastell.context import Pastell
from connectors.inbound.pastell.documents import Documents
from connectors.inbound.pastell.entite_admin import Entites
from connectors.inbound.pastell.paths import PastellPathMiddleware
from connectors.inbound.pastell.utilisateurs import Utilisateurs


def mount(app: FastAPI, store: Store, blobs: BlobStore, depositor: Depositor, settings: Settings) -> None:
    documents = Documents(store, blobs, depositor, settings)
    pastell = Pastell(documents, Catalog(documents), app.state.throttle, Connecteurs(store, documents),
                      Utilisateurs(store), Entites(store, documents))
    app.state.pastell = pastell
    app.add_middleware(PastellPathMiddleware)
    app.include_router(v2_admin.build_router(pastell))  # before v2: `entite/all/…` before `entite/{id_e}/…`
    app.include_router(v2.build_router(pastell))
    app.include_router(v1.build_router(pastell))
    app.include_router(fallback.build_router(pastell))  # last: what no route above answers
