"""XAdES enveloped signature of PES_Aller (DGFiP profile): sign, verify, connector."""

from __future__ import annotations

import base64
import copy
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from connectors.base import Collectivite, InputFile, PermanentConnectorError, StageJob
from connectors.signature import xades
from connectors.signature.certificates import make_test_certificate
from connectors.signature.xades import (
    SignatureCheck,
    XadesConnector,
    XadesError,
    sign_pes,
    verify_pes,
)
from schemas import xml as schemas_xml
from schemas.errors import SchemaError

SAMPLE = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "samples"
    / "pes_aller__PESALR2_25060187900027_190328_001__stela.xml"
)
DS = "http://www.w3.org/2000/09/xmldsig#"
XAD = "http://uri.etsi.org/01903/v1.2.2#"
NS = {"ds": DS, "xad": XAD}
DECLARATION = b'<?xml version="1.0" encoding="ISO-8859-1"?>'
ROOT_ID = "M07802724420170919175245964"


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_test_certificate(
        "Jean Ordonnateur", "Commune de Testville", tmp_path_factory.mktemp("crt")
    )


@pytest.fixture(scope="module")
def other_signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_test_certificate("Eve Intruse", "Ailleurs", tmp_path_factory.mktemp("crt2"))


def _edit(pes: bytes, fn) -> bytes:  # type: ignore[no-untyped-def]
    """Parse, let ``fn`` change the tree, serialise back in ISO-8859-1 behind the declaration."""
    root = etree.fromstring(pes)
    fn(root)
    return DECLARATION + etree.tostring(
        root.getroottree(), encoding="ISO-8859-1", xml_declaration=False
    )


def _strip_signatures(root: etree._Element) -> None:
    for sig in root.findall(f".//{{{DS}}}Signature"):
        sig.getparent().remove(sig)


def unsigned_sample() -> bytes:
    return _edit(SAMPLE.read_bytes(), _strip_signatures)


def two_bordereaux() -> bytes:
    """The sample with a second Bordereau (Id N10026, IdBord 12)."""

    def add(root: etree._Element) -> None:
        _strip_signatures(root)
        first = root.find("PES_DepenseAller/Bordereau")
        second = copy.deepcopy(first)
        second.set("Id", "N10026")
        second.find("BlocBordereau/IdBord").set("V", "12")
        first.addnext(second)

    return _edit(SAMPLE.read_bytes(), add)


def tamper_amount(pes: bytes, bordereau_id: str | None, value: str = "9999.99") -> bytes:
    """Change the first MtHT of that Bordereau (of the first Bordereau when ``None``)."""

    def change(root: etree._Element) -> None:
        where = f"[@Id='{bordereau_id}']" if bordereau_id else ""
        bord = root.xpath(f"//Bordereau{where}")[0]
        bord.find(".//MtHT").set("V", value)

    return _edit(pes, change)


def independent_verify(pes: bytes, cert_path: Path) -> int:
    """Verify every ds:Signature with a plain xmlsec.SignatureContext; return how many."""
    root = etree.fromstring(pes, etree.XMLParser(huge_tree=True))
    xmlsec.tree.add_ids(root, ["Id"])
    sigs = root.findall(f".//{{{DS}}}Signature")
    for sig in sigs:
        ctx = xmlsec.SignatureContext()
        ctx.key = xmlsec.Key.from_file(str(cert_path), xmlsec.KeyFormat.CERT_PEM, None)
        ctx.verify(sig)  # raises xmlsec.VerificationError when invalid
    return len(sigs)


def _job(data: bytes, **metadata: object) -> StageJob:
    return StageJob(
        document_id="doc-1",
        reference="doc-1/signature/1",
        flow="helios",
        stage="signature",
        collectivite=Collectivite(
            siren="250601879",
            name="Commune de Testville",
            departement="006",
            arrondissement="1",
            nature_code="31",
        ),
        metadata=dict(metadata),
        files=[
            InputFile(
                name="PESALR2_25060187900027_190328_001.xml",
                role="document",
                data=data,
                media_type="application/xml",
            )
        ],
    )


# --------------------------------------------------------------------------- signing


def test_sign_real_sample_is_xsd_valid_and_verifies(signer: tuple[Path, Path]) -> None:
    cert, key = signer
    unsigned = unsigned_sample()
    schemas_xml.validate("pes_aller", unsigned)
    signed = sign_pes(unsigned, cert_path=cert, key_path=key, city="Nice", postal_code="06000")

    assert signed.startswith(DECLARATION)
    assert "réseau d'eau".encode("iso-8859-1") in signed  # still ISO-8859-1
    schemas_xml.validate("pes_aller", signed)
    assert independent_verify(signed, cert) == 1
    checks = verify_pes(signed)
    assert checks == [
        SignatureCheck(
            target="N10025",
            valid=True,
            signer_common_name="Jean Ordonnateur",
            signing_time=checks[0].signing_time,
            claimed_role="Ordonnateur",
            reason=None,
        )
    ]
    # Same exclusive-C14N digest of the Bordereau as the real third-party signature had.
    root = etree.fromstring(signed)
    digest = root.find(".//ds:Reference[@URI='#N10025']/ds:DigestValue", NS).text
    assert digest == "G7smT2s9qRH2fdhuMW4pEYQFAaE1bMAyrYZx6zv1oDA="


def test_signature_structure_follows_dgfip_profile(signer: tuple[Path, Path]) -> None:
    cert, key = signer
    when = datetime(2024, 3, 15, 10, 30, 5, tzinfo=UTC)
    signed = sign_pes(
        unsigned_sample(),
        cert_path=cert,
        key_path=key,
        city="Nice",
        postal_code="06000",
        signing_time=when,
    )
    root = etree.fromstring(signed)
    bord = root.find("PES_DepenseAller/Bordereau")
    sig = bord[-1]
    assert sig.tag == f"{{{DS}}}Signature" and sig.get("Id") == "N10025_SIG_1"
    x = lambda path: sig.xpath(path, namespaces=NS)
    assert x("ds:SignedInfo/ds:CanonicalizationMethod/@Algorithm") == [
        "http://www.w3.org/2001/10/xml-exc-c14n#"
    ]
    assert x("ds:SignedInfo/ds:SignatureMethod/@Algorithm") == [
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    ]
    refs = x("ds:SignedInfo/ds:Reference")
    assert [r.get("URI") for r in refs] == ["#N10025", "#N10025_SIG_1_SP"]
    assert refs[1].get("Type") == "http://uri.etsi.org/01903/v1.2.2#SignedProperties"
    assert refs[0].xpath("ds:Transforms/ds:Transform/@Algorithm", namespaces=NS) == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/2001/10/xml-exc-c14n#",
    ]
    assert refs[1].xpath("ds:Transforms/ds:Transform/@Algorithm", namespaces=NS) == [
        "http://www.w3.org/2001/10/xml-exc-c14n#"
    ]
    for ref in refs:
        assert ref.xpath("ds:DigestMethod/@Algorithm", namespaces=NS) == [
            "http://www.w3.org/2001/04/xmlenc#sha256"
        ]
    assert x("ds:SignatureValue/@Id") == ["N10025_SIG_1_SV"]
    qp = x("ds:Object/xad:QualifyingProperties")[0]
    assert qp.get("Target") == "#N10025_SIG_1"
    ssp = qp.find("xad:SignedProperties[@Id='N10025_SIG_1_SP']/xad:SignedSignatureProperties", NS)
    assert ssp.findtext("xad:SigningTime", namespaces=NS) == "2024-03-15T10:30:05Z"
    cert_obj = x509.load_pem_x509_certificate(cert.read_bytes())
    der = cert_obj.public_bytes(Encoding.DER)
    assert x("ds:KeyInfo/ds:X509Data/ds:X509Certificate")[0].text == base64.b64encode(der).decode()
    cert_el = ssp.find("xad:SigningCertificate/xad:Cert", NS)
    assert cert_el.xpath(
        "xad:CertDigest/*[local-name()='DigestMethod']/@Algorithm", namespaces=NS
    ) == ["http://www.w3.org/2000/09/xmldsig#sha1"]
    assert cert_el.xpath("string(xad:CertDigest/*[local-name()='DigestValue'])", namespaces=NS) == (
        base64.b64encode(hashlib.sha1(der).digest()).decode()
    )
    assert cert_el.findtext("xad:IssuerSerial/ds:X509SerialNumber", namespaces=NS) == str(
        cert_obj.serial_number
    )
    assert cert_el.findtext("xad:IssuerSerial/ds:X509IssuerName", namespaces=NS) == (
        cert_obj.issuer.rfc4514_string()
    )
    policy = ssp.find("xad:SignaturePolicyIdentifier/xad:SignaturePolicyId", NS)
    assert policy.findtext("xad:SigPolicyId/xad:Identifier", namespaces=NS) == (
        "urn:oid:1.2.250.1.131.1.5.18.21.1.7"
    )
    assert policy.xpath(
        "string(xad:SigPolicyHash/*[local-name()='DigestValue'])", namespaces=NS
    ) == ("roF9+cfRHNPtVJolhdqfIqGMVuUXX8aR4rpiquf0u5E=")
    assert policy.xpath(
        "xad:SigPolicyHash/*[local-name()='DigestMethod']/@Algorithm", namespaces=NS
    ) == ["http://www.w3.org/2001/04/xmlenc#sha256"]
    assert policy.findtext(
        "xad:SigPolicyQualifiers/xad:SigPolicyQualifier/xad:SPURI", namespaces=NS
    ) == (xades.POLICY_SPURI)
    place = ssp.find("xad:SignatureProductionPlace", NS)
    assert [(etree.QName(e).localname, e.text) for e in place] == [
        ("City", "Nice"),
        ("PostalCode", "06000"),
        ("CountryName", "France"),
    ]
    assert (
        ssp.findtext("xad:SignerRole/xad:ClaimedRoles/xad:ClaimedRole", namespaces=NS)
        == "Ordonnateur"
    )


def test_one_signature_per_bordereau_and_tampering_is_located(
    signer: tuple[Path, Path],
) -> None:
    cert, key = signer
    pes = two_bordereaux()
    schemas_xml.validate("pes_aller", pes)
    signed = sign_pes(pes, cert_path=cert, key_path=key, role="Maire")
    schemas_xml.validate("pes_aller", signed)
    assert independent_verify(signed, cert) == 2
    root = etree.fromstring(signed)
    for bord in root.findall("PES_DepenseAller/Bordereau"):
        assert bord[-1].get("Id") == f"{bord.get('Id')}_SIG_1"
    checks = verify_pes(signed)
    assert [(c.target, c.valid, c.claimed_role) for c in checks] == [
        ("N10025", True, "Maire"),
        ("N10026", True, "Maire"),
    ]

    tampered = tamper_amount(signed, "N10026")
    checks = verify_pes(tampered)
    assert [(c.target, c.valid) for c in checks] == [
        ("N10025", True),
        ("N10026", False),
    ]
    assert checks[1].reason and "verification failed" in checks[1].reason
    with pytest.raises(xmlsec.VerificationError):
        independent_verify(tampered, cert)


def test_tampered_signed_properties_is_invalid(signer: tuple[Path, Path]) -> None:
    cert, key = signer
    signed = sign_pes(unsigned_sample(), cert_path=cert, key_path=key)
    tampered = signed.replace(b"<xad:ClaimedRole>Ordonnateur<", b"<xad:ClaimedRole>Comptable<")
    assert tampered != signed
    [check] = verify_pes(tampered)
    assert not check.valid and check.claimed_role == "Comptable"


def test_root_signature_when_bordereaux_have_no_id(signer: tuple[Path, Path]) -> None:
    cert, key = signer

    def strip_ids(root: etree._Element) -> None:
        for bord in root.iter("Bordereau"):
            del bord.attrib["Id"]

    pes = _edit(two_bordereaux(), strip_ids)
    signed = sign_pes(pes, cert_path=cert, key_path=key)
    schemas_xml.validate("pes_aller", signed)
    root = etree.fromstring(signed)
    sig = root[-1]
    assert sig.tag == f"{{{DS}}}Signature" and sig.get("Id") == f"{ROOT_ID}_SIG_1"
    assert len(root.findall(f".//{{{DS}}}Signature")) == 1
    assert sig.xpath("ds:SignedInfo/ds:Reference/@URI", namespaces=NS) == [
        f"#{ROOT_ID}",
        f"#{ROOT_ID}_SIG_1_SP",
    ]
    assert independent_verify(signed, cert) == 1
    [check] = verify_pes(signed)
    assert check.target == "root" and check.valid
    [check] = verify_pes(tamper_amount(signed, None))
    assert check.target == "root" and not check.valid
    assert "verification failed" in (check.reason or "")


def test_partial_bordereau_ids_fall_back_to_root(signer: tuple[Path, Path]) -> None:
    cert, key = signer
    pes = _edit(
        two_bordereaux(),
        lambda r: r.find("PES_DepenseAller/Bordereau").attrib.pop("Id"),
    )
    signed = sign_pes(pes, cert_path=cert, key_path=key)
    assert [c.target for c in verify_pes(signed)] == ["root"]


def test_no_id_at_all_is_refused(signer: tuple[Path, Path]) -> None:
    cert, key = signer

    def strip_ids(root: etree._Element) -> None:
        del root.attrib["Id"]
        for bord in root.iter("Bordereau"):
            del bord.attrib["Id"]

    with pytest.raises(XadesError) as err:
        sign_pes(_edit(unsigned_sample(), strip_ids), cert_path=cert, key_path=key)
    assert err.value.code == "pes_no_signable_id"
    assert "ne contient pas d'identifiant valide" in err.value.message
    assert isinstance(err.value, SchemaError)


def test_already_signed_is_refused_and_real_signature_verifies(
    signer: tuple[Path, Path],
) -> None:
    cert, key = signer
    sample = SAMPLE.read_bytes()
    with pytest.raises(XadesError) as err:
        sign_pes(sample, cert_path=cert, key_path=key)
    assert err.value.code == "pes_already_signed"
    # The real sample's own signature (Berger-Levrault, XAdES 1.1.1 namespace, SHA-256) verifies.
    [check] = verify_pes(sample)
    assert check.valid, check.reason
    assert (check.target, check.signer_common_name, check.claimed_role) == (
        "N10025",
        "THOMAS Celine",
        "Maire",
    )
    assert verify_pes(unsigned_sample()) == []


def test_trusted_certificate_overrides_embedded_one(
    signer: tuple[Path, Path], other_signer: tuple[Path, Path]
) -> None:
    cert, key = signer
    signed = sign_pes(unsigned_sample(), cert_path=cert, key_path=key)
    assert verify_pes(signed, trusted_cert_pem=cert.read_bytes())[0].valid
    [check] = verify_pes(signed, trusted_cert_pem=other_signer[0].read_bytes())
    assert not check.valid and check.signer_common_name == "Eve Intruse"


def test_swapped_certificate_or_moved_signature_is_invalid(
    signer: tuple[Path, Path], other_signer: tuple[Path, Path]
) -> None:
    cert, key = signer
    signed = sign_pes(two_bordereaux(), cert_path=cert, key_path=key)
    other_b64 = base64.b64encode(
        x509.load_pem_x509_certificate(other_signer[0].read_bytes()).public_bytes(Encoding.DER)
    )

    def swap_cert(root: etree._Element) -> None:
        root.find(f".//{{{DS}}}X509Certificate").text = other_b64.decode()

    checks = verify_pes(_edit(signed, swap_cert))
    assert not checks[0].valid and "CertDigest" in (checks[0].reason or "")

    def move(
        root: etree._Element,
    ) -> None:  # the first Bordereau's signature onto the second
        first, second = root.findall("PES_DepenseAller/Bordereau")
        second.remove(second[-1])
        second.append(first[-1])

    checks = verify_pes(_edit(signed, move))
    assert [c.valid for c in checks] == [False]
    assert "enveloping element" in (checks[0].reason or "")


def test_duplicate_ids_are_rejected(signer: tuple[Path, Path]) -> None:
    cert, key = signer
    pes = two_bordereaux().replace(b'Id="N10026"', b'Id="N10025"')
    with pytest.raises(XadesError) as err:
        sign_pes(pes, cert_path=cert, key_path=key)
    assert err.value.code == "pes_duplicate_id"


def test_malformed_xml_is_a_schema_error(signer: tuple[Path, Path]) -> None:
    cert, key = signer
    with pytest.raises(XadesError) as err:
        sign_pes(b"<n:PES_Aller", cert_path=cert, key_path=key)
    assert err.value.code == "xml_malformed"
    with pytest.raises(XadesError) as err:
        verify_pes(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>')
    assert err.value.code == "xml_doctype_forbidden"


def test_generated_pes_signs_and_validates(signer: tuple[Path, Path], tmp_path: Path) -> None:
    generate = pytest.importorskip("schemas.helios.generate")
    cert, key = signer
    for with_ids, expected in ((True, ["BORD1", "BORD2", "BORD3"]), (False, ["root"])):
        path = generate.generate_pes_aller(
            tmp_path / f"pes_{with_ids}.xml",
            siret="21060023500017",
            nom_fic="TEST",
            bordereaux=3,
            pieces_per_bordereau=2,
            pj_count=2,
            pj_size=5000,
            with_ids=with_ids,
        )
        signed = sign_pes(path.read_bytes(), cert_path=cert, key_path=key)
        schemas_xml.validate("pes_aller", signed)
        checks = verify_pes(signed)
        assert all(c.valid for c in checks)
        assert [c.target for c in checks] == expected
        assert independent_verify(signed, cert) == len(expected)


def test_key_is_cached_until_the_file_changes(signer: tuple[Path, Path]) -> None:
    cert, key = signer
    first = xades._credentials(cert, key)
    assert xades._credentials(cert, key) is first
    stat = key.stat()
    os.utime(key, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert xades._credentials(cert, key) is not first


# --------------------------------------------------------------------------- connector


async def test_connector_signs_unsigned_pes(signer: tuple[Path, Path]) -> None:
    cert, key = signer
    connector = XadesConnector(cert, key)
    job = _job(two_bordereaux())
    assert await connector.lookup(job) is None
    remote_id, outputs = await connector.submit(job)
    assert remote_id == job.reference
    [out] = outputs
    assert (out.name, out.role, out.media_type) == (
        "PESALR2_25060187900027_190328_001.xml",
        "signed_document",
        "application/xml",
    )
    schemas_xml.validate("pes_aller", out.data)
    assert independent_verify(out.data, cert) == 2
    result = await connector.poll(job, remote_id)
    assert result.status == "done"
    assert result.fields == {"signer": "Jean Ordonnateur", "signatures": 2}
    # A fresh connector (after a restart) still answers poll.
    result = await XadesConnector(cert, key).poll(job, remote_id)
    assert result.fields == {"signer": "Jean Ordonnateur", "signatures": 2}
    await connector.aclose()


async def test_connector_passes_valid_signed_pes_through(
    signer: tuple[Path, Path],
) -> None:
    cert, key = signer
    sample = SAMPLE.read_bytes()
    connector = XadesConnector(cert, key)
    job = _job(sample, already_signed=True)
    remote_id, [out] = await connector.submit(job)
    assert out.data is sample or out.data == sample
    assert out.role == "signed_document"
    result = await connector.poll(job, remote_id)
    assert result.fields == {"signer": "THOMAS Celine", "signatures": 1}


async def test_connector_rejects_corrupted_signed_pes(
    signer: tuple[Path, Path],
) -> None:
    cert, key = signer
    connector = XadesConnector(cert, key)
    corrupted = tamper_amount(SAMPLE.read_bytes(), "N10025")
    with pytest.raises(PermanentConnectorError, match="pes_signature_invalid"):
        await connector.submit(_job(corrupted, already_signed=True))
    with pytest.raises(PermanentConnectorError, match="pes_signature_invalid"):
        await connector.submit(_job(unsigned_sample(), already_signed=True))


async def test_connector_refuses_unsignable_or_signed_input(
    signer: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, key = signer
    with pytest.raises(PermanentConnectorError, match="pes_already_signed"):
        await XadesConnector(cert, key).submit(_job(SAMPLE.read_bytes()))
    with pytest.raises(PermanentConnectorError, match="certificate/key unusable"):
        await XadesConnector(tmp_path / "missing.pem", key).submit(_job(unsigned_sample()))


def test_concurrent_signing_with_the_cached_key(signer: tuple[Path, Path]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    cert, key = signer
    pes = two_bordereaux()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: sign_pes(pes, cert_path=cert, key_path=key), range(32)))
    for signed in results:
        assert independent_verify(signed, cert) == 2
        assert all(c.valid for c in verify_pes(signed))


def test_only_c14n_and_enveloped_transforms_are_run(signer: tuple[Path, Path]) -> None:
    cert, key = signer
    signed = sign_pes(unsigned_sample(), cert_path=cert, key_path=key)

    def add_xslt(root: etree._Element) -> None:
        transforms = root.find(f".//{{{DS}}}Reference/{{{DS}}}Transforms")
        etree.SubElement(
            transforms,
            f"{{{DS}}}Transform",
            Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116",
        )

    [check] = verify_pes(_edit(signed, add_xslt))
    assert not check.valid and "not allowed" in (check.reason or "")
