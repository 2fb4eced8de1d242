"""Hostile payloads, built here (nothing downloaded): XML bombs, broken PDFs, archive bombs."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
import zlib

from connectors.signature.pdf import make_pdf

PDF = make_pdf("Délibération", ["Le conseil décide."])

XML_DECL = b'<?xml version="1.0" encoding="UTF-8"?>'
BILLION_LAUGHS = XML_DECL + (
    b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><budget>&lol3;</budget>')
XXE = XML_DECL + b'<!DOCTYPE budget [<!ENTITY x SYSTEM "file:///etc/passwd">]><budget>&x;</budget>'
EXTERNAL_DTD = XML_DECL + b'<!DOCTYPE budget SYSTEM "http://127.0.0.1:9/budget.dtd"><budget/>'
DEEP = XML_DECL + b"<a>" * 5000 + b"</a>" * 5000
HUGE_ATTRIBUTE = XML_DECL + b'<budget note="' + b"A" * (3 << 20) + b'"/>'
TRUNCATED_XML = XML_DECL + b"<budget><ligne>"
WRONG_ENCODING_XML = '<?xml version="1.0" encoding="UTF-8"?><budget>Élection</budget>'.encode("latin-1")
PASSWD_MARKER = b"root:x:0:0"


def pdf_with_content(stream: bytes, *, flate: bool = True, corrupt: bool = False) -> bytes:
    """A one-page PDF whose content stream is `stream` (Flate-compressed, or corrupted after it)."""
    data = zlib.compress(stream) if flate else stream
    if corrupt:
        data = data[:2] + b"\x00garbage\xff" * 4 + data[2:]
    filt = b"/Filter /FlateDecode " if flate else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"<< " + filt + b"/Length " + str(len(data)).encode() + b" >>\nstream\n" + data + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def encrypted_pdf() -> bytes:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.pdf_utils.writer import copy_into_new_writer

    writer = copy_into_new_writer(PdfFileReader(io.BytesIO(PDF)))
    writer.encrypt("owner-secret", "user-secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue())


def member(name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


def gzip_bomb(size: int) -> bytes:
    """A gzip stream of `size` zero bytes (a tar of zeros): a few KB on the wire."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as gz:
        chunk = b"\x00" * (1 << 20)
        for _ in range(size >> 20):
            gz.write(chunk)
    return out.getvalue()


def zip_of(entries: dict[str, bytes], *, lie_size: bool = False) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    raw = out.getvalue()
    if lie_size:  # every member claims 10 bytes: reading it yields a CRC/size mismatch
        archive = zipfile.ZipFile(io.BytesIO(raw))
        for info in archive.infolist():
            raw = raw.replace(info.file_size.to_bytes(4, "little"), (10).to_bytes(4, "little"))
    return raw
