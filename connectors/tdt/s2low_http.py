"""The HTTP session both S²low connectors share (ACTES and HELIOS): Basic auth and `api=1` on every
call; errors are mapped by the connectors' one HTTP client (connectors/http.py)."""

from __future__ import annotations

from typing import Any

from connectors.http import HttpClient, HttpResponse


def filename_from(response: HttpResponse) -> str | None:
    return response.filename()


class S2lowSession:
    def __init__(self, base_url: str, login: str, password: str, timeout: float = 30.0) -> None:
        self._client = HttpClient("S²low", base_url, auth=(login, password), timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> HttpResponse:
        kwargs["params"] = {"api": "1", **(kwargs.get("params") or {})}  # every API call carries api=1
        return await self._client.request(method, path, **kwargs)


class S2lowClient:
    """Base of the S²low connectors: owns the session."""

    def __init__(self, base_url: str, login: str, password: str, timeout: float = 30.0) -> None:
        self._session = S2lowSession(base_url, login, password, timeout)

    async def aclose(self) -> None:
        await self._session.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> HttpResponse:
        return await self._session.request(method, path, **kwargs)
