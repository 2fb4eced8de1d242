"""What a flow's deposit check sees of an uploaded file (already stored, not yet recorded)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.errors import SchemaError


@dataclass(frozen=True)
class DepositFile:
    name: str
    role: str  # "document" or "annexe"
    media_type: str  # as declared by the client
    size: int
    head: bytes  # the first bytes, for sniffing


@dataclass(frozen=True)
class DepositContext:
    """What a flow's deposit check may know about the collectivité and the stored document."""

    siren: str
    classification_xml: bytes | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the collectivité's options for this flow
    path: Path | None = None  # the document's bytes on disk, for checks that stream big files


def sniff_media_type(head: bytes) -> str | None:
    """The media type the bytes really are, for the types the flows accept."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<?xml") or stripped.startswith(b"<"):
        return "application/xml"
    return None


MAX_FILE_NAME = 200
# Bidirectional overrides and isolates make "facture_fdp.exe" show as "facture_exe.pdf".
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def check_file_name(name: str) -> str:
    """The name a file is stored and served under: a plain name, NFC-normalised.

    Refused (`invalid_file_name`), never repaired: a path (`/`, `\\`, `..`), a leading dot, control
    or bidirectional-override characters, more than MAX_FILE_NAME characters, an empty name. The
    name is a label, never a path: blobs are stored under their SHA-256.
    """
    plain = unicodedata.normalize("NFC", name or "")
    bad = (
        not plain.strip()
        or len(plain) > MAX_FILE_NAME
        or plain.startswith(".")
        or plain != plain.strip()
        or any(c in "/\\" or c in _BIDI or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in plain)
    )
    if bad:
        shown = name.encode("unicode_escape").decode("ascii")[:80]
        raise SchemaError("invalid_file_name", f"Nom de fichier invalide / invalid file name: '{shown}' "
                                               "(a plain name: no path, no control character)")
    return plain


def check_metadata_text(value: Any, where: str = "metadata") -> None:
    """Refuse control characters (`\\x00`…, except tab and line breaks) in any string of the
    metadata: they break the S²low and SEDA XML, and PostgreSQL's JSON operators (`\\u0000`)."""
    if isinstance(value, str):
        if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in value):
            raise SchemaError("invalid_metadata_characters",
                              f"Caractère de contrôle interdit / control character in {where}")
    elif isinstance(value, dict):
        for k, v in value.items():
            check_metadata_text(k, where)
            check_metadata_text(v, f"{where}.{k}")
    elif isinstance(value, list):
        for item in value:
            check_metadata_text(item, where)
