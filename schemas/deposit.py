"""What a flow's deposit check sees of an uploaded file (already stored, not yet recorded)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
