"""The collectivité's certificate as a PKCS#12 keystore or an encrypted PEM key, the password
coming from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    load_pem_private_key,
    pkcs12,
)

from connectors.base import Collectivite, InputFile, PermanentConnectorError, StageJob
from connectors.signature.certificates import make_test_certificate
from connectors.signature.xades import XadesConnector, verify_pes

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "pes_aller__PESALR2_25060187900027_190328_001__stela.xml"


def unsigned() -> bytes:
    from lxml import etree

    tree = etree.fromstring(SAMPLE.read_bytes())
    for sig in tree.iter("{http://www.w3.org/2000/09/xmldsig#}Signature"):
        sig.getparent().remove(sig)
    return etree.tostring(tree, xml_declaration=True, encoding="ISO-8859-1")


def job() -> StageJob:
    coll = Collectivite(siren="755800646", name="C", departement="075", arrondissement="1", nature_code="31")
    return StageJob(document_id="d", reference="r1", flow="helios", stage="signature", collectivite=coll,
                    metadata={"signature": True}, files=[InputFile("PES.xml", "document", unsigned(), "application/xml")])


@pytest.fixture
def material(tmp_path: Path) -> tuple[x509.Certificate, object, Path]:
    cert_path, key_path = make_test_certificate("Ordonnateur PKCS12", "Commune", tmp_path)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = load_pem_private_key(key_path.read_bytes(), None)
    return cert, key, tmp_path


async def test_pkcs12_keystore_with_password_from_environment(material, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cert, key, tmp = material
    p12 = tmp / "ordonnateur.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(b"ord", key, cert, None, BestAvailableEncryption(b"s3cret")))
    monkeypatch.setenv("DEMATBUS_TEST_P12_PASSWORD", "s3cret")
    connector = XadesConnector(p12, p12, password_env="DEMATBUS_TEST_P12_PASSWORD")
    _, files = await connector.submit(job())
    checks = verify_pes(files[0].data, trusted_cert_pem=cert.public_bytes(Encoding.PEM))
    assert checks and all(c.valid for c in checks) and checks[0].signer_common_name == "Ordonnateur PKCS12"

    monkeypatch.setenv("DEMATBUS_TEST_P12_PASSWORD", "wrong")
    with pytest.raises(PermanentConnectorError, match="unusable"):
        await XadesConnector(p12, p12, password_env="DEMATBUS_TEST_P12_PASSWORD").submit(job())


async def test_encrypted_pem_key_with_password_from_environment(material, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cert, key, tmp = material
    cert_path, key_path = tmp / "cert.pem", tmp / "key-enc.pem"
    cert_path.write_bytes(cert.public_bytes(Encoding.PEM))
    key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"pem-pass")))
    monkeypatch.setenv("DEMATBUS_TEST_KEY_PASSWORD", "pem-pass")
    _, files = await XadesConnector(cert_path, key_path, password_env="DEMATBUS_TEST_KEY_PASSWORD").submit(job())
    assert all(c.valid for c in verify_pes(files[0].data, trusted_cert_pem=cert.public_bytes(Encoding.PEM)))
