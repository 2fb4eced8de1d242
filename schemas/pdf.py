"""A file that says it is a PDF must read as one: parsed with pyHanko's reader (the library that
signs it later), not only sniffed by its first bytes.

`check_pdf` opens the cross-reference table and the trailer, walks the page tree and decodes
every page's content streams. Errors (SchemaError, mapped to 422):

* `pdf_corrupt`    truncated, no cross-reference table, broken page tree or content stream
* `pdf_encrypted`  protected by a password (an empty user password is fine: it opens as is)
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, Any

from schemas.errors import SchemaError

__all__ = ["check_pdf"]

MAX_PAGES = 100_000


def _corrupt(name: str, why: str) -> SchemaError:
    return SchemaError("pdf_corrupt", f"PDF illisible ou tronqué / {name!r} is not a readable PDF: {why}"[:500])


def _contents(page: Any) -> None:
    from pyhanko.pdf_utils import generic

    contents = page.get("/Contents")
    if contents is None:
        return
    contents = contents.get_object()
    streams = list(contents) if isinstance(contents, generic.ArrayObject) else [contents]
    for stream in streams:
        stream = stream.get_object()
        if not isinstance(stream, generic.StreamObject):
            raise ValueError("a page's /Contents is not a stream")
        stream.data  # noqa: B018 - decoding is the check


def _read(stream: IO[bytes], name: str) -> int:
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(stream, strict=False)
    if reader.encrypted:
        from pyhanko.pdf_utils.crypt import AuthStatus

        if reader.decrypt(b"").status == AuthStatus.FAILED:
            raise SchemaError("pdf_encrypted", f"PDF protégé par un mot de passe / {name!r} is password-protected")
    count = int(reader.root["/Pages"]["/Count"])
    if not 0 < count <= MAX_PAGES:
        raise ValueError(f"page count {count}")
    for index in range(count):
        page, _ = reader.find_page_for_modification(index)
        _contents(page.get_object() if hasattr(page, "get_object") else page)
    return count


def check_pdf(source: Path | bytes, name: str = "document") -> int:
    """The page count of a readable PDF; SchemaError otherwise (see the module docstring)."""
    try:
        if isinstance(source, Path):
            with source.open("rb") as stream:
                return _read(stream, name)
        return _read(io.BytesIO(source), name)
    except SchemaError:
        raise
    except RecursionError:
        raise _corrupt(name, "structure nested too deep") from None
    except Exception as exc:  # noqa: BLE001 - pyHanko raises many types on malformed input
        raise _corrupt(name, f"{type(exc).__name__}: {exc}") from None
