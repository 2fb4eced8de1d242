from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import os
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.general import find_unique_cms_attribute
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from connectors.base import InputFile, PermanentConnectorError
from connectors.signature.certificates import make_test_certificate
from connectors.signature.pades import PadesConnector, get_signer, sign_pdf, verify_pdf
from connectors.signature.pdf import is_pdf, make_pdf


def test_make_pdf_is_a_valid_pdf() -> None:
    pdf = make_pdf("Délibération n° 12 (budget)", ["ligne 1", "x" * 300])
    assert is_pdf(pdf)
    assert not is_pdf(b"<xml/>")
    assert not is_pdf(pdf[:-20] + b"\n" * 2000)  # truncated: no %%EOF at the end
    info = verify_pdf(pdf)
    assert (info.signed, info.intact, info.signer_common_name) == (False, False, None)


def test_certificate_usage_and_validity(collectivite_cert: tuple[Path, Path]) -> None:
    cert = x509.load_pem_x509_certificate(collectivite_cert[0].read_bytes())
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=3 * 365 - 1) < lifetime < dt.timedelta(days=3 * 366)
    assert cert.public_key().key_size == 2048
    assert collectivite_cert[1].read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8


def test_pades_round_trip(collectivite_cert: tuple[Path, Path]) -> None:
    cert, key = collectivite_cert
    pdf = make_pdf("Arrêté n° 2024-17", ["Le maire de Testville arrête…"])
    signed = sign_pdf(pdf, cert_path=cert, key_path=key, location="Testville")
    assert signed.startswith(pdf)  # incremental update: the original bytes are untouched
    info = verify_pdf(signed)
    assert info.signed and info.intact
    assert info.signer_common_name == "Mairie de Testville - Maire"

    tampered = signed.replace("Testville arr".encode("cp1252"), b"Villetest arr", 1)
    assert tampered != signed
    assert verify_pdf(tampered).intact is False

    countersigned = sign_pdf(signed, cert_path=cert, key_path=key)
    assert verify_pdf(countersigned).intact


def test_signer_is_cached_and_reloaded_on_change(tmp_path: Path, collectivite_cert: tuple[Path, Path]) -> None:
    cert, key = (Path(shutil.copy(p, tmp_path / p.name)) for p in collectivite_cert)
    first = get_signer(cert, key)
    assert get_signer(cert, key) is first
    stat = cert.stat()
    os.utime(cert, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = get_signer(cert, key)
    assert second is not first

    # A swapped symlink (a mounted secret's ``..data``) reloads even with the same mtime.
    link = tmp_path / "current.crt.pem"
    link.symlink_to(cert)
    before = get_signer(link, key)
    assert get_signer(link, key) is before
    other = Path(shutil.copy2(cert, tmp_path / "other.crt.pem"))
    link.unlink()
    link.symlink_to(other)
    assert other.stat().st_mtime_ns == cert.stat().st_mtime_ns
    assert get_signer(link, key) is not before


def test_cached_signer_signatures_pass_pyhankos_validator(collectivite_cert: tuple[Path, Path]) -> None:
    """Two signatures from the same cached signer (frozen attributes reused), each checked by
    pyHanko's own validator against a context trusting the test certificate."""
    cert, key = collectivite_cert
    signer = get_signer(cert, key)
    context = ValidationContext(trust_roots=[signer.signing_cert], allow_fetching=False)
    for title in ("Arrêté n° 2024-18", "Arrêté n° 2024-19"):
        signed = sign_pdf(make_pdf(title, ["Le maire arrête…"]), cert_path=cert, key_path=key)
        assert get_signer(cert, key) is signer
        (sig,) = PdfFileReader(io.BytesIO(signed), strict=False).embedded_signatures
        status = validate_pdf_signature(sig, context)
        assert status.intact and status.valid and status.trusted
        assert status.signing_cert.dump() == signer.signing_cert.dump()
        ess = find_unique_cms_attribute(sig.signer_info["signed_attrs"], "signing_certificate_v2")
        ess = ess["certs"][0]
        assert ess["cert_hash"].native == hashlib.sha256(signer.signing_cert.dump()).digest()


def test_cached_signer_cms_is_pyhankos_byte_for_byte(collectivite_cert: tuple[Path, Path]) -> None:
    """The frozen values change the cost of the encoding, not the encoding: same CMS as a plain
    ``SimpleSigner`` (RSA PKCS#1 v1.5 is deterministic), and unchanged on a second signature."""
    cert, key = collectivite_cert
    cached = get_signer(cert, key)
    plain = signers.SimpleSigner.load(str(key), str(cert))
    digest = hashlib.sha256(b"contenu").digest()

    def cms(signer: signers.Signer) -> bytes:
        return asyncio.run(signer.async_sign(digest, "sha256", use_pades=True)).dump()

    assert cms(cached) == cms(plain) == cms(cached)


async def test_pades_connector(collectivite_cert: tuple[Path, Path], make_job) -> None:  # type: ignore[no-untyped-def]
    connector = PadesConnector(*collectivite_cert)
    job = make_job("actes:doc-1:signature:1")
    assert await connector.lookup(job) is None
    remote_id, files = await connector.submit(job)
    assert remote_id == job.reference
    assert [(f.name, f.role, f.media_type) for f in files] == [
        ("délibération 2024-001.pdf", "signed_document", "application/pdf")
    ]
    info = verify_pdf(files[0].data)
    assert info.intact and info.signer_common_name == "Mairie de Testville - Maire"
    result = await connector.poll(job, remote_id)
    assert result.status == "done" and result.fields == {"signer": "Mairie de Testville - Maire"}
    await connector.aclose()


async def test_pades_connector_refuses_non_pdf(collectivite_cert: tuple[Path, Path], make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job("actes:doc-2:signature:1", annexe=False)
    job.files[0] = InputFile(name="acte.xml", role="document", data=b"<acte/>", media_type="text/xml")
    with pytest.raises(PermanentConnectorError):
        await PadesConnector(*collectivite_cert).submit(job)


async def test_pades_connector_bad_key_is_permanent(tmp_path: Path, make_job) -> None:  # type: ignore[no-untyped-def]
    cert, _ = make_test_certificate("X", "Y", tmp_path)
    missing = tmp_path / "missing.key.pem"
    with pytest.raises(PermanentConnectorError):
        await PadesConnector(cert, missing).submit(make_job("actes:doc-3:signature:1"))
