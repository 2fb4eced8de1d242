"""Streaming read and validation of a PES_Aller (HELIOS PES v2, docs/protocols.md §3.1, S²low
checks of §2.5).

A PES can weigh hundreds of MB (base64 PJ). `read_pes_aller` never holds the whole tree: it runs
`lxml.etree.iterparse` with the compiled PES_Aller XSD plugged into the parser (validation happens
while parsing), summarises each Bordereau / Piece / PJ at its end event, then clears it and deletes
the already-read siblings. Memory stays around the size of the biggest single PJ.

Checks, in order, each a `HeliosError` (a `SchemaError`, mapped to HTTP 4xx by the API):

* `pes_too_large`         more than `max_bytes`
* `pes_invalid_xml`       not XML at all, or malformed
* `pes_doctype_forbidden` a DOCTYPE (so DTD / entities, billion laughs...) in the prolog
* `pes_not_iso_8859_1`    the XML declaration does not declare ISO-8859-1 (S²low rule)
* `pes_not_pes_aller`     the root is not `{aller ns}PES_Aller`
* `pes_codcol_too_long`   CodCol longer than 3 characters (S²low: "Le CodCol est trop long")
* `pes_xsd_invalid`       any other XSD error (message: first errors, with line numbers)
* `pes_empty`             no Bordereau, no PJ, no PES_Facture ("ni bordereau, ni PJ, ni marché")

and `check_idcoll` raises `pes_wrong_idcoll`.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from collections.abc import Sequence
from typing import IO, Any, Literal

from lxml import etree

from schemas.errors import SchemaError
from schemas.helios.ns import DS_SIGNATURE, PES_ALLER_NS
from schemas.xml import XSD_DIR

__all__ = [
    "DEFAULT_MAX_BYTES",
    "BordereauSummary",
    "HeliosError",
    "PesSummary",
    "NO_SIGNABLE_ID",
    "check_idcoll",
    "read_pes_aller",
    "signature_placement",
    "sniff_root",
]

DEFAULT_MAX_BYTES = 600 * 1024 * 1024
_PROLOG_MAX = 1024 * 1024  # the root start tag must appear within the first MiB
_FEED = 16 * 1024  # bytes handed to the parser at a time


def _pes_aller_schema() -> etree.XMLSchema:
    """A fresh compiled PES_Aller XSD (~12 ms).

    Not cached on purpose: lxml keeps a validation error log on the schema object, which iterparse
    appends to; one schema per read keeps concurrent reads apart and error messages clean.
    """
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    doc = etree.parse(str(XSD_DIR / "pes_v2/PES_V2/Rev0/PES_Aller.xsd"), parser)
    return etree.XMLSchema(doc)


class HeliosError(SchemaError):
    """A HELIOS (PES) document problem. `errors` holds the XSD messages when there are some."""

    def __init__(self, code: str, message: str, errors: list[str] | None = None) -> None:
        super().__init__(code, message)
        self.errors: list[str] = list(errors or [])

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if self.errors:
            d["error"]["details"] = self.errors[:20]
        return d


@dataclass
class BordereauSummary:
    domain: Literal["depense", "recette"]
    exercice: str
    id_bord: str
    id: str | None  # Bordereau/@Id (per-bordereau signature target)
    type_bord: str | None
    pieces: int
    montant_ht: str  # BlocBordereau MtBordHT (MtBordHt in recette) if present, else sum of line MtHT
    signed: bool  # a ds:Signature child

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PesSummary:
    id_coll: str
    id_post: str
    cod_col: str
    cod_bud: str | None
    nom_fic: str
    dte_str: str
    libelle_col_bud: str | None
    bordereaux: list[BordereauSummary]
    pj_count: int
    pj_ids: list[str]
    root_id: str | None
    signed: bool  # any ds:Signature in the file
    size: int
    sha1: str
    sha256: str
    # Extras (not in the agreed API, defaulted so positional construction still works):
    signatures: int = 0  # number of ds:Signature elements
    typ_fic: str | None = None
    version: str | None = None
    encoding: str | None = None  # as declared
    pj_exercices: list[str] = field(default_factory=list)  # distinct PJ/RefCompta/Exercice
    has_facture: bool = False

    @property
    def siren(self) -> str:
        return self.id_coll[:9]

    @property
    def placement(self) -> Literal["bordereaux", "root"] | None:
        return signature_placement([b.id for b in self.bordereaux], self.root_id)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["siren"] = self.siren
        return d


# --------------------------------------------------------------------------------------- prolog


@dataclass(frozen=True)
class RootSniff:
    encoding: str | None  # declared in the XML declaration (None: no declaration)
    namespace: str | None
    localname: str


_ENC_RE = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._\-]+)["']""")
_START_TAG_RE = re.compile(
    rb"""<([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*/?>"""
)
_ATTR_RE = re.compile(rb"""([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_UTF16_DOCTYPE = ("<!DOCTYPE".encode("utf-16-le"), "<!DOCTYPE".encode("utf-16-be"))


def sniff_root(head: bytes) -> RootSniff:
    """Scan the prolog bytes: refuse a DOCTYPE, return the declared encoding and the root's name.

    Raises `pes_doctype_forbidden`, `pes_invalid_xml`, or `pes_not_iso_8859_1` for UTF-16 input
    (whose prolog cannot be read as ASCII bytes).
    """
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in head[:4]:
        if any(m in head.upper() for m in _UTF16_DOCTYPE) or b"<!DOCTYPE" in head.upper():
            raise HeliosError("pes_doctype_forbidden", "DOCTYPE interdit / DOCTYPE is not allowed")
        raise HeliosError(
            "pes_not_iso_8859_1",
            "ce fichier n'est pas encodé en ISO-8859-1 / the file is UTF-16, not ISO-8859-1",
        )
    pos = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    n = len(head)
    encoding: str | None = None

    def skip_ws(p: int) -> int:
        while p < n and head[p] in b" \t\r\n":
            p += 1
        return p

    if head.startswith(b"<?xml", pos) and n > pos + 5 and head[pos + 5] in b" \t\r\n?":
        end = head.find(b"?>", pos)
        if end < 0:
            raise HeliosError("pes_invalid_xml", "XML mal formé / malformed XML: unterminated XML declaration")
        m = _ENC_RE.search(head, pos, end)
        encoding = m.group(1).decode("ascii") if m else None
        pos = end + 2
    while True:
        pos = skip_ws(pos)
        if pos >= n:
            raise HeliosError(
                "pes_invalid_xml",
                "XML mal formé / malformed XML: no root element found"
                + (" in the first MiB" if n >= _PROLOG_MAX else ""),
            )
        if head[pos] != 0x3C:  # '<'
            raise HeliosError("pes_invalid_xml", "le document n'est pas un fichier XML / not an XML document")
        if head.startswith(b"<!--", pos):
            end = head.find(b"-->", pos + 4)
            if end < 0:
                raise HeliosError("pes_invalid_xml", "XML mal formé / malformed XML: unterminated comment")
            pos = end + 3
        elif head.startswith(b"<?", pos):
            end = head.find(b"?>", pos + 2)
            if end < 0:
                raise HeliosError("pes_invalid_xml", "XML mal formé / malformed XML: unterminated PI")
            pos = end + 2
        elif head.startswith(b"<!", pos):
            # <!DOCTYPE (any case) or anything else that is not a comment: refuse.
            raise HeliosError("pes_doctype_forbidden", "DOCTYPE interdit / DOCTYPE is not allowed")
        else:
            m = _START_TAG_RE.match(head, pos)
            if not m:
                raise HeliosError(
                    "pes_invalid_xml", "XML mal formé / malformed XML: cannot read the root start tag"
                )
            qname = m.group(1).decode("latin-1")
            prefix, _, local = qname.rpartition(":")
            ns_attr = f"xmlns:{prefix}" if prefix else "xmlns"
            namespace = None
            for am in _ATTR_RE.finditer(m.group(2)):
                if am.group(1).decode("latin-1") == ns_attr:
                    namespace = (am.group(2) if am.group(2) is not None else am.group(3)).decode("latin-1")
            return RootSniff(encoding=encoding, namespace=namespace, localname=local)


# --------------------------------------------------------------------------------------- reading


class _HashingReader:
    """File-like object for iterparse that hashes and counts what the parser reads."""

    def __init__(self, raw: IO[bytes], max_bytes: int) -> None:
        self.raw = raw
        self.max_bytes = max_bytes
        self.size = 0
        self.sha1 = hashlib.sha1()
        self.sha256 = hashlib.sha256()
        self.reads = 0
        self.lines_before = 0  # newlines before the last chunk handed out
        self.lines_after = 0  # newlines up to the end of the last chunk

    def read(self, n: int = -1) -> bytes:
        # Small chunks: an XSD error is then located within a few KiB (see _XsdErrorLocator).
        data = self.raw.read(min(n, _FEED) if n and n > 0 else _FEED)
        if data:
            self.reads += 1
            self.lines_before = self.lines_after
            self.lines_after += data.count(b"\n")
            self.size += len(data)
            if self.size > self.max_bytes:
                raise HeliosError(
                    "pes_too_large", f"fichier PES trop volumineux / PES too large: > {self.max_bytes} bytes"
                )
            self.sha1.update(data)
            self.sha256.update(data)
        return data

    def drain(self) -> None:
        while self.read(_FEED):
            pass


@dataclass
class _BordAcc:
    exercice: str = ""
    id_bord: str = ""
    type_bord: str | None = None
    mt_bord: str | None = None
    pieces: int = 0
    lines_sum: Decimal = field(default_factory=lambda: Decimal(0))
    signed: bool = False


def _child_v(el: etree._Element, tag: str) -> str | None:
    c = el.find(tag)
    return None if c is None else c.get("V")


def _dec(v: str | None) -> Decimal | None:
    if v is None:
        return None
    try:
        return Decimal(v.strip())
    except InvalidOperation:
        return None


def _drop(el: etree._Element) -> None:
    """Free an element already summarised, and its already-read previous siblings."""
    el.clear(keep_tail=False)
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]


_SCHEMAV_CODES = range(etree.ErrorTypes.SCHEMAV_NOROOT, etree.ErrorTypes.SCHEMAV_MISC + 1)
_VALUE_RE = re.compile(r"The value '([^']*)'|attribute '[^']+': '([^']*)'")
_ELEMENT_RE = re.compile(r"Element '(?:\{[^}]*\})?(?:[\w.-]+:)?([\w.-]+)'")


def _xsd_helios_error(messages: list[str]) -> HeliosError:
    first = messages[0]
    if "'CodCol'" in first and "maxLength" in first:
        return HeliosError(
            "pes_codcol_too_long", f"Le CodCol est trop long / CodCol longer than 3: {first}", messages
        )
    return HeliosError(
        "pes_xsd_invalid",
        "PES non conforme au schéma PES_Aller / does not validate against PES_Aller.xsd: "
        + "; ".join(messages[:3]),
        messages,
    )


def _parse_error(exc: etree.XMLSyntaxError) -> HeliosError:
    """An iterparse exception: `pes_invalid_xml`, or an XSD error found at the very end."""
    if exc.code in _SCHEMAV_CODES:
        return _xsd_helios_error([f"end of document: {exc.msg}"])
    msg = re.sub(r"""\bb(['"])(.*)\1""", r"\2", str(exc.msg))  # lxml shows some messages as b'...'
    return HeliosError("pes_invalid_xml", f"XML mal formé / malformed XML: {msg}")


class _XsdErrorLocator:
    """Give a line number to the first streaming-validation error (libxml2 reports line 0).

    lxml appends the error to the iterparse error log while feeding the chunk that contains it;
    the element it names is then among the events of that chunk (or the next one). The line is
    that element's `sourceline` (the one carrying the quoted bad value for attribute errors: "line N";
    else the first element of that name in the chunk: "near line N"), or the chunk's range of lines.
    """

    def __init__(self, reader: _HashingReader, message: str) -> None:
        self.message = message
        m = _ELEMENT_RE.search(message)
        self.target = m.group(1) if m else None
        # Attribute errors quote the bad value: match it, not just the first element of that name.
        v = _VALUE_RE.search(message)
        self.value = (v.group(1) if v.group(1) is not None else v.group(2)) if v else None
        self.exact = False
        self.chunk = reader.reads
        self.lines = (reader.lines_before + 1, reader.lines_after + 1)
        self.line: int | None = None

    def done(self, reader: _HashingReader, el: etree._Element) -> bool:
        tag = el.tag
        if (
            self.target
            and isinstance(tag, str)
            and tag.rpartition("}")[2] == self.target  # not QName: an undeclared prefix leaves "ds:X"
            and el.sourceline
            and el.sourceline >= self.lines[0] - 1
            and (self.value is None or el.get("V") == self.value)
        ):
            self.line = el.sourceline
            self.exact = self.value is not None
            return True
        return reader.reads > self.chunk + 1

    def error(self, log: etree._ListErrorLog) -> HeliosError:
        if self.line:
            where = f"line {self.line}" if self.exact else f"near line {self.line}"
        else:
            where = f"lines {self.lines[0]}-{self.lines[1]}"
        msgs = [f"{where}: {self.message}"]
        msgs += [e.message for e in log if e.domain == etree.ErrorDomains.SCHEMASV][1:5]
        return _xsd_helios_error(msgs)


def _open(source: Path | str | bytes | bytearray | memoryview, max_bytes: int) -> tuple[IO[bytes], int | None]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return io.BytesIO(data), len(data)
    p = Path(source)
    try:
        size = p.stat().st_size
        return p.open("rb"), size
    except OSError as exc:
        raise HeliosError("pes_unreadable", f"fichier illisible / cannot read the PES file: {exc}") from None


def _summarise(source: Path | str | bytes, *, max_bytes: int, strict: bool) -> PesSummary:
    raw, size = _open(source, max_bytes)
    with raw:
        if size is not None and size > max_bytes:
            raise HeliosError("pes_too_large", f"fichier PES trop volumineux / PES too large: {size} > {max_bytes} bytes")
        if size == 0:
            raise HeliosError("pes_invalid_xml", "document vide / empty document")
        head = raw.read(_PROLOG_MAX)
        raw.seek(0)
        sniff = sniff_root(head)
        if strict and (sniff.encoding or "").upper() != "ISO-8859-1":
            raise HeliosError(
                "pes_not_iso_8859_1",
                "ce fichier n'est pas encodé en ISO-8859-1 / the XML declaration must declare ISO-8859-1"
                f" (found {sniff.encoding or 'none, i.e. UTF-8'})",
            )
        if sniff.localname != "PES_Aller" or sniff.namespace != PES_ALLER_NS:
            raise HeliosError(
                "pes_not_pes_aller",
                f"ce fichier n'est pas un PES_Aller / not a PES_Aller: root {{{sniff.namespace}}}{sniff.localname}",
            )
        reader = _HashingReader(raw, max_bytes)
        # No resolve_entities=False: with a schema plugged in, lxml 6 then misses a truncated
        # document and mangles error messages. Entities cannot exist anyway: the prolog scan
        # refused any DOCTYPE, and load_dtd=False / no_network=True stay.
        kwargs: dict[str, Any] = {
            "events": ("end",), "no_network": True, "load_dtd": False, "huge_tree": True,
            "remove_comments": True, "remove_pis": True,
        }
        if strict:
            kwargs["schema"] = _pes_aller_schema()
        context = etree.iterparse(reader, **kwargs)

        header: dict[str, str | None] = {}
        params: dict[str, str | None] = {}
        bordereaux: list[BordereauSummary] = []
        pj_ids: list[str] = []
        pj_exercices: list[str] = []
        signatures = 0
        has_facture = False
        acc: _BordAcc | None = None
        locator: _XsdErrorLocator | None = None
        checked_reads = 0
        try:
            for _event, el in context:
                if strict:
                    if locator is None and reader.reads != checked_reads:
                        # A new chunk was fed: did validating it log an error? (once per chunk)
                        checked_reads = reader.reads
                        first = next(
                            (e for e in context.error_log
                             if e.domain == etree.ErrorDomains.SCHEMASV and e.level >= etree.ErrorLevels.ERROR),
                            None,
                        )
                        if first is not None:
                            locator = _XsdErrorLocator(reader, first.message)
                    if locator is not None:
                        if locator.done(reader, el):
                            raise locator.error(context.error_log)
                        continue
                tag = el.tag
                if tag == DS_SIGNATURE:
                    signatures += 1
                    parent = el.getparent()
                    if parent is not None and parent.tag == "Bordereau":
                        acc = acc or _BordAcc()
                        acc.signed = True
                    el.clear(keep_tail=False)
                    continue
                if not isinstance(tag, str) or tag.startswith("{"):
                    continue
                parent = el.getparent()
                ptag = parent.tag if parent is not None else None
                if tag in ("MtHT",) and ptag in ("InfoLignePce", "InfoLignePiece"):
                    acc = acc or _BordAcc()
                    d = _dec(el.get("V"))
                    if d is not None:
                        acc.lines_sum += d
                elif tag == "BlocBordereau" and ptag == "Bordereau":
                    acc = acc or _BordAcc()
                    acc.exercice = _child_v(el, "Exer") or ""
                    acc.id_bord = _child_v(el, "IdBord") or ""
                    acc.type_bord = _child_v(el, "TypBord")
                    acc.mt_bord = _child_v(el, "MtBordHT") or _child_v(el, "MtBordHt")
                elif tag == "Piece" and ptag == "Bordereau":
                    acc = acc or _BordAcc()
                    acc.pieces += 1
                    _drop(el)
                elif tag == "Bordereau" and ptag in ("PES_DepenseAller", "PES_RecetteAller"):
                    a = acc or _BordAcc()
                    mt = _dec(a.mt_bord)
                    bordereaux.append(
                        BordereauSummary(
                            domain="depense" if ptag == "PES_DepenseAller" else "recette",
                            exercice=a.exercice,
                            id_bord=a.id_bord,
                            id=el.get("Id"),
                            type_bord=a.type_bord,
                            pieces=a.pieces,
                            montant_ht=str(mt if mt is not None else a.lines_sum),
                            signed=a.signed,
                        )
                    )
                    acc = None
                    _drop(el)
                elif tag == "PJ" and ptag == "PES_PJ":
                    uid = _child_v(el, "IdUnique")
                    if uid is not None:
                        pj_ids.append(uid)
                    ex = el.find("RefCompta/Exercice")
                    if ex is not None and ex.get("V") and ex.get("V") not in pj_exercices:
                        pj_exercices.append(ex.get("V"))
                    _drop(el)
                elif parent is not None and parent.getparent() is None:  # a child of the root
                    if tag == "Enveloppe":
                        p = el.find("Parametres")
                        if p is not None:
                            for k in ("Version", "TypFic", "NomFic"):
                                params[k] = _child_v(p, k)
                    elif tag == "EnTetePES":
                        for k in ("DteStr", "IdPost", "IdColl", "CodCol", "CodBud", "LibelleColBud"):
                            header[k] = _child_v(el, k)
                    elif tag == "PES_Facture":
                        has_facture = True
                    _drop(el)
            if locator is not None:
                raise locator.error(context.error_log)
            reader.drain()
        except etree.XMLSyntaxError as exc:
            if locator is not None and exc.code in _SCHEMAV_CODES:
                raise locator.error(context.error_log) from None
            raise _parse_error(exc) from None
        root = context.root
        docinfo = root.getroottree().docinfo if root is not None else None
        if docinfo is not None and (docinfo.doctype or docinfo.internalDTD is not None):
            raise HeliosError("pes_doctype_forbidden", "DOCTYPE interdit / DOCTYPE is not allowed")

    summary = PesSummary(
        id_coll=header.get("IdColl") or "",
        id_post=header.get("IdPost") or "",
        cod_col=header.get("CodCol") or "",
        cod_bud=header.get("CodBud"),
        nom_fic=params.get("NomFic") or "",
        dte_str=header.get("DteStr") or "",
        libelle_col_bud=header.get("LibelleColBud"),
        bordereaux=bordereaux,
        pj_count=len(pj_ids),
        pj_ids=pj_ids,
        root_id=root.get("Id") if root is not None else None,
        signed=signatures > 0,
        size=reader.size,
        sha1=reader.sha1.hexdigest(),
        sha256=reader.sha256.hexdigest(),
        signatures=signatures,
        typ_fic=params.get("TypFic"),
        version=params.get("Version"),
        encoding=sniff.encoding,
        pj_exercices=pj_exercices,
        has_facture=has_facture,
    )
    if strict:
        if len(summary.cod_col) > 3:  # unreachable after the XSD (maxLength 3), kept as S²low's rule
            raise HeliosError("pes_codcol_too_long", "Le CodCol est trop long / CodCol longer than 3")
        if not bordereaux and not pj_ids and not has_facture:
            raise HeliosError(
                "pes_empty",
                "ce fichier ne contient ni bordereau, ni PJ, ni marché / the PES has no bordereau, no PJ",
            )
    return summary


def read_pes_aller(source: Path | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> PesSummary:
    """Check a PES_Aller (file path or bytes) as S²low would and summarise it, streaming.

    Validates against the official PES_Aller XSD while parsing; raises `HeliosError` (codes in the
    module docstring). The sha1 / sha256 / size cover the exact bytes read.
    """
    return _summarise(source, max_bytes=max_bytes, strict=True)


def summarise_pes_aller(source: Path | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> PesSummary:
    """Like `read_pes_aller` but lenient (for inspection): no encoding, XSD nor emptiness check.

    Still refuses a DOCTYPE, malformed XML and a root other than PES_Aller.
    """
    return _summarise(source, max_bytes=max_bytes, strict=False)


NO_SIGNABLE_ID = (
    "le fichier PES ne contient pas d'identifiant valide (Id sur chaque Bordereau ou sur PES_Aller) "
    "/ the PES file has no Id to sign (on every Bordereau or on the root)"
)


def signature_placement(bordereau_ids: Sequence[str | None], root_id: str | None) -> Literal["bordereaux", "root"] | None:
    """Where the XAdES signatures of a PES go (docs/protocols.md §3.2, Placement): one per Bordereau when
    every Bordereau has an `Id`, else one on the root when it has an `Id`, else nowhere (None:
    Pastell refuses such a file with NO_SIGNABLE_ID, and so does the deposit)."""
    if bordereau_ids and all(bordereau_ids):
        return "bordereaux"
    return "root" if root_id else None


def check_idcoll(summary: PesSummary, siren: str) -> None:
    """`pes_wrong_idcoll` unless IdColl (a SIRET) starts with the collectivité's SIREN."""
    if not re.fullmatch(r"\d{14}", summary.id_coll or "") or summary.siren != siren:
        raise HeliosError(
            "pes_wrong_idcoll",
            f"L'IdColl du PES ({summary.id_coll!r}) ne correspond pas au SIREN de la collectivité ({siren}) "
            "/ IdColl does not belong to this collectivité",
        )
