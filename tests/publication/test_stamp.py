"""The publication stamp: the mentions readable in the published PDF, and a signed acte's
signatures still valid after stamping (pyHanko's validator, difference analysis included)."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pypdf
import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from connectors.publication.stamp import Mentions, StampError, stamp_pdf
from connectors.signature.certificates import make_test_certificate
from connectors.signature.pades import get_signer, sign_pdf
from connectors.signature.pdf import make_pdf

MENTIONS = Mentions(published_on=date(2026, 11, 21), received_on=date(2026, 11, 20),
                    id_acte="044-214400152-20261120-DEL2026_042-DE", auteur="Jeanne Dupont", qualite="Maire")
EXPECTED = ["Publié le 21/11/2026", "Reçu en préfecture le 20/11/2026",
            "ID : 044-214400152-20261120-DEL2026_042-DE", "Auteur : Jeanne Dupont", "Qualité : Maire"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_test_certificate("Maire de Test", "Commune de Test", tmp_path_factory.mktemp("cert"))


def validate_all(pdf: bytes) -> list:  # type: ignore[type-arg]
    """pyHanko's verdict on every signature (the signer's own certificate as trust root: trust in
    a CA is not what is tested here, integrity and the modifications after signing are)."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    return [validate_pdf_signature(sig, ValidationContext(trust_roots=[sig.signer_cert], allow_fetching=False))
            for sig in reader.embedded_signatures]


def stamp_field_text(pdf: bytes) -> tuple[str, str]:
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    for annot in page["/Annots"]:
        annot = annot.get_object()
        if annot.get("/T") == "Publication":
            appearance = annot["/AP"]["/N"].get_object()
            return str(annot["/TU"]), page.extract_xform_text(appearance, (0,), 200.0)
    raise AssertionError("no publication stamp field")


def test_an_unsigned_acte_carries_the_mentions_in_its_page_text() -> None:
    original = make_pdf("Délibération n° 42", ["Le conseil municipal décide."])
    published = stamp_pdf(original, MENTIONS)
    assert published.startswith(original)  # an incremental update: the acte's own bytes are untouched
    text = pypdf.PdfReader(io.BytesIO(published)).pages[0].extract_text()
    assert "Le conseil municipal décide." in text
    for line in EXPECTED:
        assert line in text


def test_a_signed_acte_keeps_a_valid_signature_and_shows_the_mentions(keys: tuple[Path, Path]) -> None:
    cert, key = keys
    signed = sign_pdf(make_pdf("Délibération signée", ["Le conseil décide."]), cert_path=cert, key_path=key)
    assert [s.bottom_line for s in validate_all(signed)] == [True]
    published = stamp_pdf(signed, MENTIONS)
    assert published.startswith(signed)
    [status] = validate_all(published)
    assert status.intact and status.valid and status.bottom_line, status.pretty_print_details()
    assert status.modification_level == ModificationLevel.FORM_FILLING
    tooltip, drawn = stamp_field_text(published)
    for line in EXPECTED:
        assert line in tooltip and line in drawn


def test_page_content_stamping_would_have_broken_the_signature(keys: tuple[Path, Path]) -> None:
    """Why a signed acte is stamped in a form field: the same stamp drawn into the page content
    is an illegal modification for pyHanko (bottom line false)."""
    from pyhanko.stamp import TextStamp, TextStampStyle

    cert, key = keys
    signed = sign_pdf(make_pdf("Délibération signée"), cert_path=cert, key_path=key)
    writer = IncrementalPdfFileWriter(io.BytesIO(signed), strict=False)
    TextStamp(writer, TextStampStyle(stamp_text="Publié le 21/11/2026")).apply(0, 300, 700)
    out = io.BytesIO()
    writer.write(out)
    [status] = validate_all(out.getvalue())
    assert status.intact and not status.bottom_line


def test_a_pdf_certified_against_any_change_is_refused(keys: tuple[Path, Path]) -> None:
    cert, key = keys
    writer = IncrementalPdfFileWriter(io.BytesIO(make_pdf("Acte certifié")), strict=False)
    meta = signers.PdfSignatureMetadata(field_name="Signature1", certify=True,
                                        docmdp_permissions=fields.MDPPerm.NO_CHANGES)
    certified = signers.sign_pdf(writer, meta, signer=get_signer(cert, key)).getvalue()
    with pytest.raises(StampError):
        stamp_pdf(certified, MENTIONS)


def test_not_a_pdf_is_refused() -> None:
    with pytest.raises(StampError):
        stamp_pdf(b"<?xml version='1.0'?><budget/>", MENTIONS)


def test_characters_outside_the_standard_fonts_stay_readable() -> None:
    mentions = Mentions(published_on=date(2026, 1, 2), received_on=date(2026, 1, 1), id_acte=MENTIONS.id_acte,
                        auteur="Łukasz Œuvrard", qualite="Adjointe au maire – déléguée à l’urbanisme")
    text = pypdf.PdfReader(io.BytesIO(stamp_pdf(make_pdf("Arrêté"), mentions))).pages[0].extract_text()
    assert "Auteur : Lukasz OEuvrard" in text
    assert "Qualité : Adjointe au maire - déléguée à l'urbanisme" in text
