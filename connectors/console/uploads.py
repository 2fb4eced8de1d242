"""The files of a deposit form. Starlette spools each upload to a temporary file past 1 MB; from
there it streams, 64 KB at a time, to the blob store through `bus.deposits` as the API's uploads do:
a file is never held whole in memory.

A refused form keeps its files: each is put in the blob store and the re-displayed form carries a
signed reference to it (this key only, for a session's length), so the user corrects a field
without choosing the files again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import UploadFile

from bus.blobs import BlobStore
from bus.deposits import Upload
from connectors.console.session import MAX_AGE

CHUNK = 1 << 16


@dataclass(frozen=True)
class Kept:
    """A file of an earlier try of the form, in the blob store."""

    sha256: str
    name: str
    size: int
    content_type: str


def _read(file: IO[bytes]) -> Iterator[bytes]:
    file.seek(0)
    while chunk := file.read(CHUNK):
        yield chunk


class KeptFiles:
    def __init__(self, secret: str, blobs: BlobStore) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="dematbus-console-kept-file")
        self.blobs = blobs

    def token(self, key_id: str, kept: Kept) -> str:
        return self._signer.dumps([key_id, kept.sha256, kept.name, kept.size, kept.content_type])

    def open(self, key_id: str, token: str) -> Kept | None:
        """The file a token refers to, if this key's form made it and the blob is still there."""
        try:
            owner, sha256, name, size, content_type = self._signer.loads(token, max_age=MAX_AGE)
        except (BadSignature, ValueError, TypeError):
            return None
        if owner != key_id or not self.blobs.exists(str(sha256)):
            return None
        return Kept(str(sha256), str(name), int(size), str(content_type))

    async def keep(self, upload: UploadFile, max_bytes: int) -> Kept:
        """Stores an uploaded file (raises `BlobTooLarge` past `max_bytes`)."""
        ref = await asyncio.to_thread(self.blobs.put_stream, _read(upload.file), max_bytes=max_bytes)
        return Kept(ref.sha256, upload.filename or "", ref.size, upload.content_type or "application/octet-stream")

    def upload(self, source: UploadFile | Kept, role: str) -> Upload:
        """What `bus.deposits` reads: the request's spooled file, or the kept blob."""
        if isinstance(source, Kept):
            return Upload(name=source.name, role=role, chunks=self.blobs.iter_chunks(source.sha256),
                          content_type=source.content_type)
        return Upload(name=source.filename or "", role=role, chunks=_read(source.file),
                      content_type=source.content_type)
