"""Error types raised by the `schemas` package.

Every error carries a stable machine `code` and a human `message`; the API layer maps any
`SchemaError` to an HTTP 4xx answer `{"error": {"code": ..., "message": ...}}`.
"""

from __future__ import annotations

from typing import Any


class SchemaError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


class XmlError(SchemaError):
    """Malformed or unsafe XML (too large, DOCTYPE, syntax error...)."""


class XsdError(SchemaError):
    def __init__(
        self, code: str = "xsd_invalid", message: str = "", errors: list[str] | None = None
    ) -> None:
        super().__init__(code, message or "document invalide / document does not validate")
        self.errors: list[str] = list(errors or [])

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["error"]["details"] = self.errors[:20]
        return d


class ArchiveError(SchemaError):
    """Bad ACTES tar.gz archive (unsafe member, bad name, missing file...)."""


class MetadataError(SchemaError):
    """Bad deposit metadata of an acte."""


__all__ = ["ArchiveError", "MetadataError", "SchemaError", "XmlError", "XsdError"]
