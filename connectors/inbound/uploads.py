"""A multipart file of an API request as the bus takes it (bus.deposits.Upload): read in chunks,
in a worker thread, by whoever stores it."""

from __future__ import annotations

from typing import Any

from fastapi import UploadFile

from bus.deposits import Upload

CHUNK = 1 << 16


def as_upload(upload: UploadFile, role: str) -> Upload:
    def chunks() -> Any:
        upload.file.seek(0)
        while chunk := upload.file.read(CHUNK):
            yield chunk

    return Upload(name=upload.filename or "", role=role, chunks=chunks(), content_type=upload.content_type)
