"""The web console served by the API process under `/console`: server-rendered pages for
depositors (deposit forms, their documents), operators (documents, errors inbox, replay) and
managers (dashboard, yearly report)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import FileResponse

from bus.blobs import BlobStore
from bus.config import Settings
from bus.deposits import Depositor
from connectors.console import courriers, dashboard, deposit, pages
from connectors.console.session import Sessions, load_secret
from connectors.console.uploads import KeptFiles
from connectors.console.web import HERE

ROUTERS = (pages.router, deposit.router, dashboard.router, courriers.router)  # every console page (the accessibility test walks them)


def mount(app: FastAPI, settings: Settings, blobs: BlobStore) -> None:
    secret = load_secret(settings.data_dir)
    app.state.console_sessions = Sessions(secret)
    app.state.console_blobs = blobs
    app.state.console_depositor = Depositor(app.state.store, blobs, settings)
    app.state.console_kept_files = KeptFiles(secret, blobs)
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/console/static/console.css", include_in_schema=False)
    async def stylesheet() -> FileResponse:
        return FileResponse(HERE / "static" / "console.css", media_type="text/css",
                            headers={"Cache-Control": "max-age=3600"})
