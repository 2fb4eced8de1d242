"""Property-based fuzzing of every parser of untrusted input: whatever the bytes, a parser answers
or refuses with its own error (a SchemaError, mapped to a 4xx), never another exception (a 500, a
worker crash). Inputs are random bytes, and real samples mutated (bytes flipped, inserted,
deleted, cut) so the fuzzing reaches past the first check.

Bounded in `make test` by the `dematbus-short` Hypothesis profile (tests/security/conftest.py);
`DEMATBUS_FUZZ=long` runs thousands of examples per parser.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.inbound.pastell.errors import PastellError
from connectors.inbound.pastell.params import Params, parse_urlencoded
from schemas.actes.archive import read_acte_archive
from schemas.actes.classification import Classification
from schemas.actes.messages import parse_actes_message
from schemas.actes.metadata import parse_metadata
from schemas.deposit import check_file_name, sniff_media_type
from schemas.errors import SchemaError
from schemas.helios.acquit import parse_acquit
from schemas.helios.pes import read_pes_aller, summarise_pes_aller
from schemas.helios.retour import parse_pes_retour
from schemas.inspect import inspect_message
from schemas.pdf import check_pdf
from schemas.rh.manifest import read_manifest
from schemas.seda.transfer import SedaError, build_acknowledgement, build_transfer_reply, parse_acknowledgement, parse_transfer_reply
from schemas.xml import check_xml_stream
from tests.conftest import SAMPLES
from tests.security.hostile import PDF, pdf_with_content

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def sample(prefix: str) -> bytes:
    return next(iter(sorted(SAMPLES.glob(prefix + "*")))).read_bytes()


SEEDS: dict[str, bytes] = {
    "aracte": sample("actes_ARActe"),
    "classification": sample("actes_RetourClassification"),
    "acquit": sample("pes_acquit_v2"),
    "pes": sample("pes_aller"),
    "seda_ack": build_acknowledgement(message_identifier="ACK-1", message_received_identifier="T-1", sender="AD000",
                                      receiver="DEMATBUS", date=NOW),
    "seda_reply": build_transfer_reply(message_identifier="T-1", reply_code="000", comment=None,
                                       archive_unit_identifier="AU-1", request_identifier="R-1",
                                       archival_agency="AD000", transferring_agency="DEMATBUS", date=NOW),
    "pdf": PDF,
    "pdf_flate": pdf_with_content(b"BT /F1 12 Tf (x) Tj ET"),
    "manifest": "matricule;nom;prénom;fichier;coffre\nA1;Martin;Camille;b1.pdf;CFN-1\n".encode(),
}


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """`seed` with a few random edits: flip, insert, delete a run, or cut the end."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut", "dup"]))
        if op == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16) | st.sampled_from(
                [b"<", b">", b"&", b"<!DOCTYPE x>", b"]]>", b"\x00", b"\xff\xfe", b"&#0;", b"<x>", b"</", b"obj", b"%%EOF"]))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif op == "dup":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 256))]
        else:
            del data[pos:]
    return bytes(data)


def inputs(seed: str) -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(SEEDS[seed]), st.binary(max_size=512))


def refuses_cleanly(parse: Callable[[bytes], Any], data: bytes, *errors: type[BaseException]) -> None:
    try:
        parse(data)
    except (SchemaError, *errors):
        pass


PARSERS: dict[str, tuple[Callable[[bytes], Any], str, tuple[type[BaseException], ...]]] = {
    "actes_message": (parse_actes_message, "aracte", ()),
    "actes_message_xsd": (lambda d: parse_actes_message(d, check_xsd=True), "aracte", ()),
    "classification": (Classification.parse, "classification", ()),
    "pes_aller": (read_pes_aller, "pes", ()),
    "pes_aller_summary": (summarise_pes_aller, "pes", ()),
    "pes_acquit": (parse_acquit, "acquit", ()),
    "pes_retour": (parse_pes_retour, "acquit", ()),
    "seda_acknowledgement": (parse_acknowledgement, "seda_ack", (SedaError,)),
    "seda_transfer_reply": (parse_transfer_reply, "seda_reply", (SedaError,)),
    "inspect_xml": (inspect_message, "acquit", ()),
    "inspect_pes": (inspect_message, "pes", ()),
    "pdf": (check_pdf, "pdf", ()),
    "pdf_flate": (check_pdf, "pdf_flate", ()),
    "xml_stream": (check_xml_stream, "aracte", ()),
    "manifest": (lambda d: read_manifest(d, "2026-10", ["b1.pdf"]), "manifest", ()),
}


@pytest.mark.parametrize("name", list(PARSERS))
def test_parser_answers_or_refuses_with_its_own_error(name: str) -> None:
    parse, seed, errors = PARSERS[name]
    assert SEEDS[seed]  # the seed itself parses (or refuses cleanly) too
    refuses_cleanly(parse, SEEDS[seed], *errors)

    @given(inputs(seed))
    def run(data: bytes) -> None:
        refuses_cleanly(parse, data, *errors)

    run()


def _tar_gz(members: list[tuple[str, bytes, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            info.linkname = "../../etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return gzip.compress(raw.getvalue())


member_names = st.one_of(st.text(min_size=1, max_size=40), st.sampled_from(
    ["../x", "/etc/passwd", "a/b.xml", "C:\\x", ".", "EACT--210600235--20260101-1.xml", "x\x00y"]))


@given(st.lists(st.tuples(member_names, st.binary(max_size=200) | st.sampled_from([SEEDS["aracte"]]),
                          st.sampled_from([tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE,
                                           tarfile.FIFOTYPE])), max_size=5))
def test_actes_archive_reader_answers_or_refuses(members: list[tuple[str, bytes, bytes]]) -> None:
    try:
        data = _tar_gz(members)
    except (ValueError, UnicodeEncodeError):
        return  # tarfile cannot even write such a name
    refuses_cleanly(read_acte_archive, data)
    refuses_cleanly(read_acte_archive, data[: len(data) // 2])


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=12)
ACTES_KEYS = ["nature", "numero_interne", "date_decision", "objet", "classification", "typologie", "signature"]


@given(st.dictionaries(st.sampled_from(ACTES_KEYS) | st.text(max_size=12), json_values, max_size=8))
def test_actes_metadata_answers_or_refuses(raw: dict[str, Any]) -> None:
    refuses_cleanly(lambda _: parse_metadata(raw), b"")


@given(st.text(max_size=300))
def test_file_names_are_plain_or_refused(name: str) -> None:
    try:
        plain = check_file_name(name)
    except SchemaError as exc:
        assert exc.code == "invalid_file_name"
        return
    assert "/" not in plain and "\\" not in plain and not plain.startswith(".") and len(plain) <= 200
    assert check_file_name(plain) == plain


@given(st.binary(max_size=2048))
def test_media_sniffing_never_fails(head: bytes) -> None:
    assert sniff_media_type(head) in (None, "application/pdf", "image/png", "image/jpeg", "application/xml")


# -- Pastell parameters ------------------------------------------------------------------------

url_bytes = st.binary(max_size=300) | st.lists(
    st.tuples(st.text(max_size=12), st.binary(max_size=20)), max_size=6).map(
    lambda pairs: b"&".join(k.encode() + b"=" + v for k, v in pairs))


@given(url_bytes, st.booleans())
def test_pastell_parameters_decode_or_refuse_the_pastell_way(body: bytes, latin1: bool) -> None:
    params = Params(latin1=latin1)
    parse_urlencoded(body, params)  # never fails: PHP's $_REQUEST takes anything
    for name in list(params.raw):
        try:
            params.get(name)
            params.get_list(name)
            params.text_fields()
        except PastellError as exc:
            assert exc.status == 400 and not latin1  # only UTF-8 decoding refuses


@given(st.binary(max_size=600), st.sampled_from(["multipart/form-data; boundary=b", "application/x-www-form-urlencoded",
                                                  "application/json", "text/plain", "multipart/form-data"]))
def test_pastell_request_bodies_parse_or_refuse(body: bytes, content_type: str) -> None:
    import asyncio

    from starlette.requests import Request

    from connectors.inbound.pastell.params import read_params

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/api/v2/x", "query_string": b"id_e=1&%ff=%fe",
             "headers": [(b"content-type", content_type.encode())]}
    try:
        asyncio.run(read_params(Request(scope, receive)))
    except PastellError as exc:
        assert exc.status == 400
