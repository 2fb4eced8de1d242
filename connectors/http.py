"""The one HTTP client of the outbound connectors, and the one mapping of HTTP answers to errors.

Every connector that talks HTTP to a remote system (S²low, As@lae, i-Parapheur, the digital safe)
holds one :class:`HttpClient` per base URL and sends every request through
:meth:`HttpClient.request`. The rules are the same for all of them (see ``retryable_status``):

- transport failures (refused connection, reset, timeout) and HTTP 5xx, 408 and 429 are
  :class:`ConnectorError`: the stage runner retries them with its backoff;
- any other 4xx is a :class:`PermanentConnectorError`: retrying the same request cannot help;
- a status the caller declares in ``accept`` is handed back to it: that is how a connector reads a
  business answer carried by a status (a 404 "not found" lookup, As@lae's 500 "Transfert en cours
  de traitement" while a reply is pending). A business refusal stays the connector's to raise, as
  a :class:`~connectors.base.RemoteRefusal`.

aiohttp underneath: measured on this machine (loopback, one small GET / a 20 kB multipart POST),
it costs 0.18–0.21 ms / 0.46–0.84 ms of client CPU per request where httpx costs 1.3–1.6 ms /
2.2–2.5 ms (``docs/scaling.md``). The answer is an httpx-like :class:`HttpResponse`.
"""

from __future__ import annotations

import asyncio
import base64
import json as jsonlib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from connectors.base import ConnectorError, PermanentConnectorError

RETRYABLE_STATUSES = frozenset({408, 429})

# A multipart file part, as httpx spells it: (filename, content[, content type]).
FilePart = tuple[str, bytes] | tuple[str, bytes, str]
Files = Mapping[str, FilePart] | Iterable[tuple[str, FilePart]]
FormData = Mapping[str, Any] | Iterable[tuple[str, Any]]


def retryable_status(status: int) -> bool:
    """Whether an HTTP status is worth retrying: the remote side may answer otherwise later."""
    return status >= 500 or status in RETRYABLE_STATUSES


def error_for_status(service: str, status: int, what: str) -> ConnectorError:
    """The error a connector raises for an HTTP status it does not handle itself."""
    if status in (401, 403):
        return PermanentConnectorError(f"{service}: authentication refused (HTTP {status}) on {what}")
    if retryable_status(status):
        return ConnectorError(f"{service}: HTTP {status} on {what}")
    return PermanentConnectorError(f"{service}: HTTP {status} on {what}")


_CHARSET = re.compile(r"charset=([\w.:-]+)", re.IGNORECASE)


@dataclass(frozen=True)
class HttpResponse:
    status_code: int
    content: bytes
    headers: CIMultiDictProxy[str] = field(default_factory=lambda: CIMultiDictProxy(CIMultiDict()))
    url: str = ""

    @property
    def encoding(self) -> str:
        match = _CHARSET.search(self.headers.get("content-type", ""))
        return match.group(1) if match else "utf-8"

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.encoding, errors="replace")
        except LookupError:  # an unknown charset name in the header
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; a ``ValueError`` when it is not."""
        return jsonlib.loads(self.content)

    def filename(self) -> str | None:
        """The file name of a ``Content-Disposition`` header, without any directory part."""
        match = re.search(r'filename="?([^";]+)"?', self.headers.get("content-disposition", ""))
        return match.group(1).replace("\\", "/").rsplit("/", 1)[-1] if match else None


def _pairs(values: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> list[tuple[str, Any]]:
    if values is None:
        return []
    items = values.items() if isinstance(values, Mapping) else values
    out: list[tuple[str, Any]] = []
    for key, value in items:
        if isinstance(value, list | tuple) and not _is_file_part(value):
            out.extend((key, v) for v in value)
        else:
            out.append((key, value))
    return out


def _is_file_part(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) in (2, 3) and isinstance(value[1], bytes | bytearray)


def _multipart(data: FormData | None, files: Files | None) -> aiohttp.MultipartWriter:
    """A multipart/form-data body. A plain field given as bytes is sent as those bytes (S²low reads
    ISO-8859-1 fields), not as a file part."""
    writer = aiohttp.MultipartWriter("form-data")
    for key, value in _pairs(data):
        raw = value if isinstance(value, bytes | bytearray) else str(value).encode("utf-8")
        part = writer.append(aiohttp.payload.BytesPayload(bytes(raw), content_type="text/plain"))
        part.set_content_disposition("form-data", quote_fields=False, name=key)
    for key, file_part in _pairs(files):
        filename, content, *rest = file_part
        part = writer.append(aiohttp.payload.BytesPayload(
            bytes(content), content_type=rest[0] if rest else "application/octet-stream"))
        part.set_content_disposition("form-data", quote_fields=False, name=key, filename=filename)
    return writer


class HttpClient:
    """A connection pool to one remote system. ``service`` names it in error messages."""

    def __init__(self, service: str, base_url: str, *, auth: tuple[str, str] | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float = 30.0) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers or {})
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        # Like httpx's timeout: per connection attempt and per read, not for the whole transfer
        # (a 150 MB archive takes longer than one timeout to send).
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            # A session belongs to the loop it was made in (tests run one loop per test).
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=64, ttl_dns_cache=300),
            )
            self._loop = loop
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            try:
                await self._session.close()
            except RuntimeError:  # its loop is gone: nothing left to release
                pass
        self._session = None

    async def request(
        self, method: str, path: str, *,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        data: FormData | None = None,
        files: Files | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        accept: Collection[int] = (),
    ) -> HttpResponse:
        """Send one request. A 2xx answer, or one whose status is in ``accept``, is returned;
        any other raises the error of :func:`error_for_status`, a transport failure a
        :class:`ConnectorError`."""
        what = f"{method} {path}"
        body: Any = None
        if files is not None:
            body = _multipart(data, files)
        elif data is not None:
            body = [(k, v if isinstance(v, str) else str(v)) for k, v in _pairs(data)]
        elif content is not None:
            body = content
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"
        query = [(k, v if isinstance(v, str) else str(v)) for k, v in _pairs(params) if v is not None]
        try:
            async with self._client().request(method, url, params=query or None, data=body, json=json,
                                              headers=headers, allow_redirects=True) as response:
                payload = await response.read()
                answer = HttpResponse(response.status, payload, response.headers, str(response.url))
        except TimeoutError as exc:
            raise ConnectorError(f"{self.service}: timeout on {what}") from exc
        except aiohttp.ClientError as exc:
            raise ConnectorError(f"{self.service}: transport error on {what}: {type(exc).__name__} {exc}") from exc
        if 200 <= answer.status_code < 300 or answer.status_code in accept:
            return answer
        raise error_for_status(self.service, answer.status_code, what)
