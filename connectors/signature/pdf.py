"""Tiny PDF helpers: a valid one-page text PDF (demo "délibération", bordereau) and a sniffer.

Built with pyHanko's own writer so that no extra dependency is needed. The text uses the standard
Helvetica font with WinAnsiEncoding, so French accents render; characters outside cp1252 become
``?``.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterable

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

_A4 = (0, 0, 595, 842)
_MARGIN = 56
_WRAP = 90  # characters per line at 11 pt Helvetica, roughly the A4 text width


def _pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _content_stream(title: str, lines: Iterable[str]) -> bytes:
    top = _A4[3] - _MARGIN
    ops = [b"BT", b"/F1 16 Tf", f"{_MARGIN} {top} Td".encode(), b"18 TL"]
    for chunk in textwrap.wrap(title, 60) or [""]:
        ops.append(_pdf_string(chunk) + b" Tj T*")
    ops += [b"/F1 11 Tf", b"14 TL", b"T*"]
    for line in lines:
        for chunk in textwrap.wrap(line, _WRAP) or [""]:
            ops.append(_pdf_string(chunk) + b" Tj T*")
    ops.append(b"ET")
    return b"\n".join(ops)


def make_pdf(title: str, lines: Iterable[str] = ()) -> bytes:
    """Return a small valid one-page A4 PDF showing ``title`` then ``lines``."""
    writer = PdfFileWriter()
    font = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type1"),
            pdf_name("/BaseFont"): pdf_name("/Helvetica"),
            pdf_name("/Encoding"): pdf_name("/WinAnsiEncoding"),
        }
    )
    resources = generic.DictionaryObject(
        {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): writer.add_object(font)})}
    )
    contents = writer.add_object(generic.StreamObject(stream_data=_content_stream(title, lines)))
    writer.insert_page(PageObject(contents=contents, media_box=_A4, resources=resources))
    writer.document_meta.title = title
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def is_pdf(data: bytes) -> bool:
    """Cheap sniff: ``%PDF-`` header (allowing a little leading junk, as readers do) and a
    ``%%EOF`` marker within the last kilobyte."""
    return b"%PDF-" in data[:1024] and b"%%EOF" in data[-1024:]
