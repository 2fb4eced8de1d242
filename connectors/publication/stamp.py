"""The publication stamp: the R2131-1 mentions drawn on the first page of the acte, with pyHanko.

Both ways write an incremental update: the bytes of the acte as deposited (or signed) stay the
first revision of the published PDF.

- An unsigned acte: the stamp is drawn into the page content (pyHanko's `TextStamp.apply`), so
  any text extractor (pypdf, search engines, screen readers) reads the mentions with the acte.
- A signed acte: changing a signed page's content would break its signature (pyHanko's
  difference analysis, like Acrobat's, classes it as an illegal modification). The stamp is then
  the appearance of a new, read-only signature field: adding a form field is a modification a
  signature allows (level FORM_FILLING), so every earlier signature still validates; the field's
  tooltip (`/TU`) carries the mentions as text. A PDF certified with DocMDP "no changes" cannot
  take any stamp and is refused.

The text uses the standard Helvetica font (WinAnsi): characters outside Latin-1 are written
without their accents ("Łukasz" → "Lukasz") rather than as unreadable glyphs.
"""

from __future__ import annotations

import io
import textwrap
import unicodedata
from dataclasses import dataclass
from datetime import date

from pyhanko.pdf_utils import generic, layout
from pyhanko.pdf_utils.content import RawContent
from pyhanko.pdf_utils.font.basic import SimpleFontEngineFactory
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields
from pyhanko.sign.fields import MDPPerm
from pyhanko.stamp import TextStamp, TextStampStyle

MARGIN = 14  # points from the page's top-right corner
WRAP = 56  # characters per line of the stamp
FONT_SIZE = 8
READ_ONLY = 1  # form field flag /Ff bit 1
PRINT_LOCKED = 4 | 128  # widget flags: printed, cannot be moved or deleted
_ASCII = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
                        "\u00a0": " ", "\u202f": " ", "\u2026": "...", "œ": "oe", "Œ": "OE", "Ł": "L", "ł": "l",
                        "Đ": "D", "đ": "d", "ı": "i"})


class StampError(ValueError):
    """The PDF cannot carry a stamp (unreadable, no page, certified against any change)."""


@dataclass(frozen=True)
class Mentions:
    published_on: date
    received_on: date  # the préfecture's acknowledgement (ARActe DateReception)
    id_acte: str
    auteur: str  # first name and name
    qualite: str

    def lines(self) -> list[str]:
        raw = [
            f"Publié le {self.published_on:%d/%m/%Y}",
            f"Reçu en préfecture le {self.received_on:%d/%m/%Y}",
            f"ID : {self.id_acte}",
            f"Auteur : {self.auteur}",
            f"Qualité : {self.qualite}",
        ]
        return [chunk for line in raw for chunk in textwrap.wrap(latin(line), WRAP) or [""]]

    def text(self) -> str:
        return "\n".join(self.lines())


def latin(text: str) -> str:
    """Text the standard fonts can show: typographic punctuation made plain, accents dropped from
    letters outside Latin-1."""
    text = text.translate(_ASCII)
    return "".join(c if ord(c) < 256 else
                   unicodedata.normalize("NFKD", c).encode("latin-1", "ignore").decode("latin-1") or "?"
                   for c in text)


_STYLE = TextStampStyle(
    stamp_text="%(mentions)s",
    text_box_style=TextBoxStyle(font=SimpleFontEngineFactory("Helvetica", 0.55), font_size=FONT_SIZE, leading=10),
    border_width=1,
    # A white background keeps the mentions legible over whatever the page has in that corner.
    background=RawContent(b"1 g 0 0 1 1 re f", box=layout.BoxConstraints(width=1, height=1)),
    background_layout=layout.SimpleBoxLayoutRule(
        x_align=layout.AxisAlignment.ALIGN_MID, y_align=layout.AxisAlignment.ALIGN_MID,
        inner_content_scaling=layout.InnerScaling.STRETCH_FILL),
    background_opacity=1.0,
)


def is_signed(pdf: bytes) -> bool:
    return bool(_reader(pdf).embedded_signatures)


def stamp_pdf(pdf: bytes, mentions: Mentions) -> bytes:
    """The published PDF: `pdf` and, in an incremental update, the stamp on its first page."""
    reader = _reader(pdf)
    signatures = reader.embedded_signatures
    for sig in signatures:
        if sig.docmdp_level == MDPPerm.NO_CHANGES:
            raise StampError("l'acte est certifié sans modification possible (DocMDP 1) : aucun tampon ne peut "
                             "y être ajouté / the acte is certified against any change")
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    stamp = TextStamp(writer, _STYLE, text_params={"mentions": mentions.text()})
    stamp.render()  # lays the text out: the box now has its size
    try:
        x, y = _corner(writer, stamp.box.width, stamp.box.height)
    except (KeyError, IndexError, TypeError) as exc:
        raise StampError(f"PDF sans page lisible / no readable first page: {exc}") from exc
    if signatures:
        _stamp_as_field(writer, stamp, mentions, (x, y))
    else:
        stamp.apply(0, x, y)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _reader(pdf: bytes) -> PdfFileReader:
    try:
        return PdfFileReader(io.BytesIO(pdf), strict=False)
    except Exception as exc:
        raise StampError(f"PDF illisible / unreadable PDF: {exc}") from exc


def _corner(writer: IncrementalPdfFileWriter, width: float, height: float) -> tuple[float, float]:
    """Lower-left corner of a box of this size in the top-right corner of the first page."""
    page = writer.root["/Pages"]
    while "/Kids" in page:
        page = page["/Kids"][0].get_object()
    llx, lly, urx, ury = (float(v) for v in page.get("/CropBox", page["/MediaBox"]))
    return max(llx, urx - MARGIN - width), max(lly, ury - MARGIN - height)


def _stamp_as_field(writer: IncrementalPdfFileWriter, stamp: TextStamp, mentions: Mentions,
                    corner: tuple[float, float]) -> None:
    x, y = corner
    name = _free_field_name(writer)
    box = (int(x), int(y), int(x + stamp.box.width) + 1, int(y + stamp.box.height) + 1)
    fields.append_signature_field(writer, fields.SigFieldSpec(name, on_page=0, box=box))
    for ref in writer.root["/AcroForm"]["/Fields"]:
        field = ref.get_object()
        if field.get("/T") == name:
            field["/AP"] = stamp.as_appearances().as_pdf_object()
            field["/TU"] = generic.TextStringObject(mentions.text())  # what assistive technology reads
            field["/Ff"] = generic.NumberObject(READ_ONLY)
            field["/F"] = generic.NumberObject(PRINT_LOCKED)
            writer.update_container(field)
            return
    raise StampError("le champ du tampon n'a pas été créé / the stamp field was not created")


def _free_field_name(writer: IncrementalPdfFileWriter) -> str:
    taken = {name for name, _, _ in fields.enumerate_sig_fields(writer.prev, filled_status=None)}
    n = 1
    while (name := "Publication" if n == 1 else f"Publication{n}") in taken:
        n += 1
    return name
