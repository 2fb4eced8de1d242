"""Request parameters the way PHP's `$_REQUEST` saw them: query string + form body merged.

Bodies arrive url-encoded (keys possibly encoded, `type_pj[]` or `type_pj[0]`, sometimes not
encoded at all), multipart (file parts or plain parts holding bytes), a JSON `[]` (ignored), or
raw. Values are kept as bytes so `file_content` is stored exactly; text is decoded as UTF-8 (v2,
strict) or ISO-8859-1 (V1 scripts).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartParser
from starlette.requests import Request

from connectors.inbound.pastell.errors import PastellError

BAD_UTF8 = ("Impossible d'encoder le résultat en JSON [code 5]: "
            "Malformed UTF-8 characters, possibly incorrectly encoded")
INDEXED = re.compile(r"^(?P<name>[^\[]+)\[(?P<index>\d*)\]$")


@dataclass
class FilePart:
    filename: str
    data: bytes
    content_type: str | None = None


@dataclass
class Params:
    latin1: bool = False
    raw: dict[str, list[bytes]] = field(default_factory=dict)
    files: dict[str, list[FilePart]] = field(default_factory=dict)

    def add(self, key: str, value: bytes) -> None:
        match = INDEXED.match(key)
        name = match["name"] if match else key
        self.raw.setdefault(name, []).append(value)

    def decode(self, value: bytes) -> str:
        if self.latin1:
            return value.decode("latin-1")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise PastellError(400, BAD_UTF8) from None

    def get(self, key: str, default: str | None = None) -> str | None:
        values = self.raw.get(key)
        return self.decode(values[-1]) if values else default  # PHP keeps the last repeated key

    def get_list(self, key: str) -> list[str]:
        return [self.decode(v) for v in self.raw.get(key, [])]

    def text_fields(self) -> dict[str, str]:
        return {k: self.decode(v[-1]) for k, v in self.raw.items()}

    def file_bytes(self, key: str) -> FilePart | None:
        """A file given as a file part, a plain part or a url-encoded field."""
        if self.files.get(key):
            return self.files[key][-1]
        if self.raw.get(key):
            return FilePart(filename="", data=self.raw[key][-1])
        return None


def integer(raw: str, name: str) -> int:
    """An id or a number from the path, the query or the body; Pastell's error otherwise."""
    if not raw.strip().isdigit():
        raise PastellError(400, f"Le paramètre {name} doit être un entier")
    return int(raw)


def parse_urlencoded(body: bytes, params: Params) -> None:
    for pair in body.split(b"&"):
        if not pair:
            continue
        key, _, value = pair.partition(b"=")
        name = unquote_to_bytes(key.replace(b"+", b" ")).decode("utf-8", errors="replace")
        params.add(name, unquote_to_bytes(value.replace(b"+", b" ")))


async def _replay(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def read_params(request: Request, *, latin1: bool = False) -> Params:
    params = Params(latin1=latin1)
    parse_urlencoded(request.scope.get("query_string", b""), params)
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        # Decoding plain parts as ISO-8859-1 keeps their bytes recoverable exactly.
        headers = Headers({"content-type": f"{content_type}; charset=latin-1"})
        try:
            form = await MultiPartParser(headers, _replay(body), max_files=1000, max_fields=10000).parse()
        except Exception as exc:  # noqa: BLE001 - any malformed multipart is the client's error
            raise PastellError(400, f"Corps multipart illisible : {exc}") from None
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                match = INDEXED.match(key)
                params.files.setdefault(match["name"] if match else key, []).append(
                    FilePart(value.filename or "", data, value.content_type))
            else:
                params.add(key, value.encode("latin-1"))
    elif kind == "application/json":
        pass  # Maarch posts a JSON `[]` on creation: Pastell ignores JSON bodies
    elif body:
        parse_urlencoded(body, params)
    return params
