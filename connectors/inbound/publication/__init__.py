"""Publication of actes on the API: the public registry (`registre`, no key, rate-limited per
client address) and the operator's withdrawal (`retrait`). `mount` wires both into the API app."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bus.blobs import BlobStore
from bus.config import Settings
from connectors.inbound.publication import registre, retrait
from connectors.inbound.publication.ratelimit import RateLimited, RateLimiter
from connectors.publication import urls


def mount(app: FastAPI, settings: Settings, blobs: BlobStore) -> None:
    limiter = RateLimiter(settings.publication_rate_limit)

    @app.middleware("http")
    async def limit_registry(request: Request, call_next):  # type: ignore[no-untyped-def]
        # A middleware rather than a route dependency: unknown registry paths are limited too, so
        # probing for SIRENs costs the same as reading.
        if request.url.path.startswith(urls.PREFIX + "/"):
            try:
                limiter.hit(request.client.host if request.client else "?")
            except RateLimited as exc:
                return JSONResponse({"error": {"code": "rate_limited", "message":
                                               "Trop de requêtes, réessayez plus tard / too many requests"}},
                                    status_code=429, headers={"Retry-After": str(exc.retry_after)})
        return await call_next(request)

    app.include_router(registre.build_router(settings.public_base_url, blobs))
    app.include_router(retrait.router)
