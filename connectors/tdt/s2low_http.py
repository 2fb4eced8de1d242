"""The HTTP session both S²low connectors share (ACTES and HELIOS): Basic auth, `api=1` on every
call, and the mapping of transport failures to retryable or permanent connector errors."""

from __future__ import annotations

import re
from typing import Any

import httpx

from connectors.base import ConnectorError, PermanentConnectorError


def filename_from(response: httpx.Response) -> str | None:
    match = re.search(r'filename="?([^";]+)"?', response.headers.get("content-disposition", ""))
    return match.group(1).rsplit("/", 1)[-1] if match else None


class S2lowSession:
    def __init__(self, base_url: str, login: str, password: str, timeout: float = 30.0, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), auth=httpx.BasicAuth(login, password),
                                         timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs["params"] = {"api": "1", **(kwargs.get("params") or {})}  # every API call carries api=1
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ConnectorError(f"S²low: timeout on {path}") from exc
        except httpx.HTTPError as exc:
            raise ConnectorError(f"S²low: transport error on {path}: {exc}") from exc
        if response.status_code in (401, 403):
            raise PermanentConnectorError(f"S²low: authentication refused (HTTP {response.status_code}) on {path}")
        if response.status_code >= 500:
            raise ConnectorError(f"S²low: HTTP {response.status_code} on {path}")
        return response


class S2lowClient:
    """Base of the S²low connectors: owns the session."""

    def __init__(self, base_url: str, login: str, password: str, timeout: float = 30.0, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._session = S2lowSession(base_url, login, password, timeout, transport=transport)

    async def aclose(self) -> None:
        await self._session.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self._session.request(method, path, **kwargs)
