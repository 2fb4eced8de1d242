"""XAdES enveloped signature of PES_Aller files (HELIOS, DGFiP profile ``xades-env-1.2.2-sha256``).

Placement (docs/protocols.md §3.2): one ``ds:Signature`` per ``Bordereau`` of ``PES_DepenseAller`` /
``PES_RecetteAller`` when every Bordereau carries an ``Id`` (appended as its last child), otherwise
one signature on the root ``n:PES_Aller`` (which then needs an ``Id``).

Construction: the whole ``ds:Signature`` template (SignedInfo with its two References, KeyInfo with
the certificate, ``ds:Object/xad:QualifyingProperties``) is built with lxml *inside the document*,
the ``Id`` attributes are registered as XML IDs, and libxmlsec1 (``xmlsec`` bindings) computes both
reference digests and the RSA-SHA256 value in place. Every digest is thus computed over the very
nodes that get serialised, in their final namespace context; the output is re-parsed by any
verifier (libxmlsec1, xmlseclibs, the DGFiP) to the same exclusive-C14N octets.

``sign_pes`` / ``verify_pes`` are synchronous and CPU-bound: async callers use
``asyncio.to_thread`` (as :class:`XadesConnector` does). Keys are loaded once per (path, inode, mtime).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import io
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)
from cryptography.x509.oid import NameOID
from lxml import etree

from connectors.base import (
    ConnectorError,
    OutputFile,
    PermanentConnectorError,
    StageJob,
    StageResult,
)
from connectors.signature.keyfiles import file_version
from schemas.errors import SchemaError
from schemas.helios.pes import NO_SIGNABLE_ID, signature_placement

__all__ = [
    "POLICY_HASH_SHA256",
    "POLICY_OID",
    "POLICY_SPURI",
    "SignatureCheck",
    "XadesConnector",
    "XadesError",
    "sign_pes",
    "verify_pes",
]

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XAD_NS = "http://uri.etsi.org/01903/v1.2.2#"
# Namespaces of QualifyingProperties accepted when verifying (legacy 1.1.1 files are still seen).
XAD_NAMESPACES = (
    "http://uri.etsi.org/01903/v1.1.1#",
    XAD_NS,
    "http://uri.etsi.org/01903/v1.3.2#",
)

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SIGNED_PROPERTIES_TYPE = XAD_NS + "SignedProperties"

POLICY_OID = "urn:oid:1.2.250.1.131.1.5.18.21.1.7"
POLICY_DESCRIPTION = "Politique de signature Helios de la DGFiP"
POLICY_HASH_SHA256 = "roF9+cfRHNPtVJolhdqfIqGMVuUXX8aR4rpiquf0u5E="
POLICY_SPURI = (
    "https://www.collectivites-locales.gouv.fr/files/files/finances_locales/"
    "dematerialisation/ps_helios_dgfip.pdf"
)
COUNTRY_NAME = "France"

_DIGESTS = {
    SHA1: "sha1",
    "http://www.w3.org/2001/04/xmldsig-more#sha224": "sha224",
    SHA256: "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}

# What verify_pes lets libxmlsec1 run: no XSLT/XPath/base64 transform, no external resource.
_C14N_METHODS = {
    EXC_C14N,
    EXC_C14N + "WithComments",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
    "http://www.w3.org/2006/12/xml-c14n11",
    "http://www.w3.org/2006/12/xml-c14n11#WithComments",
}
_REFERENCE_TRANSFORMS = _C14N_METHODS | {ENVELOPED}
_SIGNATURE_METHODS = {
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",  # legacy DGFiP profile (XAdES 1.1.1)
    RSA_SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
}

_BORDEREAUX_XPATH = etree.XPath("./PES_DepenseAller/Bordereau | ./PES_RecetteAller/Bordereau")
_SIGNATURES_XPATH = etree.XPath("//ds:Signature", namespaces={"ds": DS_NS})
_IDS_XPATH = etree.XPath("//@Id")


class XadesError(SchemaError):
    """A PES that cannot be signed/verified as asked (no Id to sign, already signed, bad XML)."""


@dataclass(frozen=True)
class SignatureCheck:
    target: str  # the signed Bordereau's Id, or "root"
    valid: bool
    signer_common_name: str | None
    signing_time: str | None
    claimed_role: str | None
    reason: str | None  # why it is invalid (None when valid)


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class _Credentials:
    key: xmlsec.Key  # private key only; duplicated into each SignatureContext
    cert_der: bytes
    common_name: str | None
    issuer_name: str  # RFC 4514
    serial_number: int


def _cert_common_name(cert: x509.Certificate) -> str | None:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else None


@functools.lru_cache(maxsize=64)
def _load_credentials(
    cert_version: tuple[str, int, int], key_version: tuple[str, int, int], password: str | None
) -> _Credentials:
    cert, key = cert_version[0], key_version[0]
    if key.lower().endswith((".p12", ".pfx")):
        # A PKCS#12 keystore holds both; the decrypted key stays in memory only.
        key_obj, cert_obj, _ = pkcs12.load_key_and_certificates(
            Path(key).read_bytes(), password.encode() if password else None)
        if key_obj is None or cert_obj is None:
            raise ValueError(f"{key}: no key and certificate in this PKCS#12 file")
        pem = key_obj.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        xkey = xmlsec.Key.from_memory(pem, xmlsec.KeyFormat.PEM, None)
    else:
        cert_obj = x509.load_pem_x509_certificate(Path(cert).read_bytes())
        xkey = xmlsec.Key.from_memory(Path(key).read_bytes(), xmlsec.KeyFormat.PEM, password)
    return _Credentials(
        key=xkey,
        cert_der=cert_obj.public_bytes(encoding=Encoding.DER),
        common_name=_cert_common_name(cert_obj),
        issuer_name=cert_obj.issuer.rfc4514_string(),
        serial_number=cert_obj.serial_number,
    )


def _credentials(cert_path: Path, key_path: Path, password: str | None = None) -> _Credentials:
    """Cached credentials for these files; reloaded only when a file's mtime changes. `key_path`
    may be a PEM key (encrypted with `password` or not) or a PKCS#12 keystore (.p12/.pfx)."""
    return _load_credentials(file_version(cert_path), file_version(key_path), password)


def signer_common_name(cert_path: Path, key_path: Path) -> str | None:
    return _credentials(cert_path, key_path).common_name


# --------------------------------------------------------------------------- parsing / output


def _parser() -> etree.XMLParser:
    # huge_tree: a PJ's base64 text node easily exceeds libxml2's 10 MB default limit. Entities are
    # never expanded and any DOCTYPE is refused below, so no amplification is possible.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=True,
        remove_blank_text=False,
        remove_comments=False,
    )


def _parse(pes: bytes) -> etree._ElementTree:
    if not isinstance(pes, (bytes, bytearray, memoryview)):
        raise XadesError("xml_malformed", "le PES doit être fourni en octets / PES must be bytes")
    try:
        root = etree.fromstring(pes, parser=_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise XadesError("xml_malformed", f"XML mal formé / malformed XML: {exc}") from None
    if root is None:
        raise XadesError("xml_malformed", "document XML vide / empty XML document")
    tree = root.getroottree()
    info = tree.docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise XadesError("xml_doctype_forbidden", "DOCTYPE interdit / DOCTYPE is not allowed")
    if etree.QName(root).localname != "PES_Aller":
        raise XadesError(
            "pes_not_aller",
            f"la racine n'est pas PES_Aller / root is {etree.QName(root).localname!r}",
        )
    return tree


def _xml_declaration(pes: bytes) -> bytes:
    """The original ``<?xml ...?>`` (with a BOM if any), or b"" when the file has none."""
    head = bytes(pes[:512])
    start = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    if not head.startswith(b"<?xml", start):
        return b""
    end = head.find(b"?>", start)
    return head[: end + 2] if end >= 0 else b""


def _serialize(tree: etree._ElementTree, declaration: bytes) -> bytes:
    """The document in its original encoding behind its original declaration. Streams into one
    buffer (``BytesIO.getvalue`` hands that buffer over without a copy)."""
    encoding = tree.docinfo.encoding or "UTF-8"
    if not declaration:
        encoding = "UTF-8"  # no declaration: the file can only be read back as UTF-8
    out = io.BytesIO()
    out.write(declaration)
    tree.write(out, encoding=encoding, xml_declaration=False)
    return out.getvalue()


# --------------------------------------------------------------------------- signing


def _sub(parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrib: str):
    el = etree.SubElement(parent, f"{{{ns}}}{tag}", attrib)
    if text is not None:
        el.text = text
    return el


def _signature_template(
    target: etree._Element,
    target_id: str,
    creds: _Credentials,
    *,
    role: str,
    city: str | None,
    postal_code: str | None,
    signing_time: str,
) -> etree._Element:
    """Append the complete, unsigned ``ds:Signature`` as last child of ``target``."""
    sig_id = f"{target_id}_SIG_1"
    sp_id = f"{sig_id}_SP"
    sig = etree.SubElement(target, f"{{{DS_NS}}}Signature", {"Id": sig_id}, nsmap={"ds": DS_NS})
    signed_info = _sub(sig, DS_NS, "SignedInfo")
    _sub(signed_info, DS_NS, "CanonicalizationMethod", Algorithm=EXC_C14N)
    _sub(signed_info, DS_NS, "SignatureMethod", Algorithm=RSA_SHA256)

    ref = _sub(signed_info, DS_NS, "Reference", URI=f"#{target_id}")
    transforms = _sub(ref, DS_NS, "Transforms")
    _sub(transforms, DS_NS, "Transform", Algorithm=ENVELOPED)
    _sub(transforms, DS_NS, "Transform", Algorithm=EXC_C14N)
    _sub(ref, DS_NS, "DigestMethod", Algorithm=SHA256)
    _sub(ref, DS_NS, "DigestValue", "")

    ref = _sub(signed_info, DS_NS, "Reference", Type=SIGNED_PROPERTIES_TYPE, URI=f"#{sp_id}")
    transforms = _sub(ref, DS_NS, "Transforms")
    _sub(transforms, DS_NS, "Transform", Algorithm=EXC_C14N)
    _sub(ref, DS_NS, "DigestMethod", Algorithm=SHA256)
    _sub(ref, DS_NS, "DigestValue", "")

    _sub(sig, DS_NS, "SignatureValue", "", Id=f"{sig_id}_SV")
    x509_data = _sub(_sub(sig, DS_NS, "KeyInfo"), DS_NS, "X509Data")
    _sub(
        x509_data,
        DS_NS,
        "X509Certificate",
        base64.b64encode(creds.cert_der).decode("ascii"),
    )

    obj = _sub(sig, DS_NS, "Object")
    qp = etree.SubElement(
        obj,
        f"{{{XAD_NS}}}QualifyingProperties",
        {"Target": f"#{sig_id}"},
        nsmap={"xad": XAD_NS},
    )
    ssp = _sub(
        _sub(qp, XAD_NS, "SignedProperties", Id=sp_id),
        XAD_NS,
        "SignedSignatureProperties",
    )
    _sub(ssp, XAD_NS, "SigningTime", signing_time)
    # DigestMethod/DigestValue in the xad namespace, as Libersign / i-Parapheur write them in the
    # DGFiP profile (pastell libersign fixture SHA256_bordereau.xml); verify_pes accepts ds: too.
    cert = _sub(_sub(ssp, XAD_NS, "SigningCertificate"), XAD_NS, "Cert")
    cert_digest = _sub(cert, XAD_NS, "CertDigest")
    _sub(cert_digest, XAD_NS, "DigestMethod", Algorithm=SHA1)
    _sub(
        cert_digest,
        XAD_NS,
        "DigestValue",
        base64.b64encode(hashlib.sha1(creds.cert_der).digest()).decode("ascii"),
    )
    issuer_serial = _sub(cert, XAD_NS, "IssuerSerial")
    _sub(issuer_serial, DS_NS, "X509IssuerName", creds.issuer_name)
    _sub(issuer_serial, DS_NS, "X509SerialNumber", str(creds.serial_number))

    policy = _sub(_sub(ssp, XAD_NS, "SignaturePolicyIdentifier"), XAD_NS, "SignaturePolicyId")
    policy_id = _sub(policy, XAD_NS, "SigPolicyId")
    _sub(policy_id, XAD_NS, "Identifier", POLICY_OID)
    _sub(policy_id, XAD_NS, "Description", POLICY_DESCRIPTION)
    policy_hash = _sub(policy, XAD_NS, "SigPolicyHash")
    _sub(policy_hash, XAD_NS, "DigestMethod", Algorithm=SHA256)
    _sub(policy_hash, XAD_NS, "DigestValue", POLICY_HASH_SHA256)
    qualifier = _sub(_sub(policy, XAD_NS, "SigPolicyQualifiers"), XAD_NS, "SigPolicyQualifier")
    _sub(qualifier, XAD_NS, "SPURI", POLICY_SPURI)

    place = _sub(ssp, XAD_NS, "SignatureProductionPlace")
    if city:
        _sub(place, XAD_NS, "City", city)
    if postal_code:
        _sub(place, XAD_NS, "PostalCode", postal_code)
    _sub(place, XAD_NS, "CountryName", COUNTRY_NAME)

    claimed = _sub(_sub(ssp, XAD_NS, "SignerRole"), XAD_NS, "ClaimedRoles")
    _sub(claimed, XAD_NS, "ClaimedRole", role)
    return sig


def _check_unique_ids(root: etree._Element) -> None:
    ids = _IDS_XPATH(root)
    if len(ids) != len(set(ids)):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise XadesError("pes_duplicate_id", f"identifiant Id en double / duplicate Id {dup!r}")


def _format_time(when: datetime | None) -> str:
    when = when or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_pes(
    pes: bytes,
    *,
    cert_path: Path,
    key_path: Path,
    role: str = "Ordonnateur",
    city: str | None = None,
    postal_code: str | None = None,
    signing_time: datetime | None = None,
    password: str | None = None,
) -> bytes:
    """Return ``pes`` with one XAdES enveloped signature per Bordereau (or one on the root)."""
    return _sign(
        pes,
        cert_path=cert_path,
        key_path=key_path,
        password=password,
        role=role,
        city=city,
        postal_code=postal_code,
        signing_time=signing_time,
    )[0]


def _sign(
    pes: bytes,
    *,
    cert_path: Path,
    key_path: Path,
    role: str,
    city: str | None,
    postal_code: str | None,
    signing_time: datetime | None,
    password: str | None = None,
) -> tuple[bytes, int]:
    creds = _credentials(cert_path, key_path, password)
    tree = _parse(pes)
    root = tree.getroot()
    if _SIGNATURES_XPATH(root):
        raise XadesError(
            "pes_already_signed",
            "le fichier PES est déjà signé / the PES file is already signed (verify it instead)",
        )
    bordereaux = _BORDEREAUX_XPATH(root)
    placement = signature_placement([b.get("Id") for b in bordereaux], root.get("Id"))
    if placement is None:
        raise XadesError("pes_no_signable_id", NO_SIGNABLE_ID)
    targets = [(b, b.get("Id")) for b in bordereaux] if placement == "bordereaux" else [(root, root.get("Id"))]
    when = _format_time(signing_time)
    signatures = [
        _signature_template(
            target,
            target_id,
            creds,
            role=role,
            city=city,
            postal_code=postal_code,
            signing_time=when,
        )
        for target, target_id in targets
    ]
    _check_unique_ids(root)  # after the templates: their Ids must not collide either
    xmlsec.tree.add_ids(root, ["Id"])
    for sig in signatures:
        ctx = xmlsec.SignatureContext()
        ctx.key = creds.key  # the binding duplicates the key: the cached one stays untouched
        try:
            ctx.sign(sig)
        except xmlsec.Error as exc:
            raise XadesError(
                "pes_sign_failed", f"signature impossible / cannot sign: {exc}"
            ) from exc
    return _serialize(tree, _xml_declaration(pes)), len(signatures)


# --------------------------------------------------------------------------- verification


def _child(el: etree._Element | None, ns: str | tuple[str, ...], local: str):
    if el is None:
        return None
    namespaces = (ns,) if isinstance(ns, str) else ns
    for child in el:
        if isinstance(child.tag, str):
            q = etree.QName(child)
            if q.localname == local and q.namespace in namespaces:
                return child
    return None


def _find_local(
    el: etree._Element, local: str, namespaces: tuple[str, ...]
) -> etree._Element | None:
    for child in el.iter():
        if isinstance(child.tag, str):
            q = etree.QName(child)
            if q.localname == local and q.namespace in namespaces:
                return child
    return None


def _text(el: etree._Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


def _b64decode(text: str) -> bytes:
    return base64.b64decode("".join(text.split()), validate=True)


class _Invalid(Exception):
    pass


def _check_references(sig: etree._Element, target: etree._Element) -> etree._Element:
    """Structure checks xmlsec does not do: the signature must sign the element it is enveloped in
    and its own SignedProperties, nothing else. Returns the SignedProperties element."""
    signed_info = _child(sig, DS_NS, "SignedInfo")
    refs = [
        c
        for c in (signed_info if signed_info is not None else [])
        if isinstance(c.tag, str) and etree.QName(c).localname == "Reference"
    ]
    if len(refs) != 2:
        raise _Invalid(f"expected 2 References, found {len(refs)}")
    _check_algorithms(signed_info)
    target_id = target.get("Id")
    uris = [r.get("URI") for r in refs]
    if not target_id or f"#{target_id}" not in uris:
        raise _Invalid(f"no Reference to the enveloping element #{target_id}")
    data_ref = refs[uris.index(f"#{target_id}")]
    transforms = [t.get("Algorithm") for t in data_ref.iter(f"{{{DS_NS}}}Transform")]
    if ENVELOPED not in transforms:
        raise _Invalid(
            "the Reference to the signed element lacks the enveloped-signature transform"
        )
    sp_ref = refs[1 - refs.index(data_ref)]
    sp_uri = sp_ref.get("URI") or ""
    sp = None
    for candidate in sig.iter():
        if (
            isinstance(candidate.tag, str)
            and etree.QName(candidate).localname == "SignedProperties"
            and etree.QName(candidate).namespace in XAD_NAMESPACES
        ):
            sp = candidate
            break
    if sp is None or not sp.get("Id") or sp_uri != f"#{sp.get('Id')}":
        raise _Invalid("the second Reference does not point at this signature's SignedProperties")
    return sp


def _check_algorithms(signed_info: etree._Element) -> None:
    for el in signed_info.iter():
        if not isinstance(el.tag, str):
            continue
        local, algorithm = etree.QName(el).localname, el.get("Algorithm")
        allowed = {
            "CanonicalizationMethod": _C14N_METHODS,
            "SignatureMethod": _SIGNATURE_METHODS,
            "Transform": _REFERENCE_TRANSFORMS,
            "DigestMethod": set(_DIGESTS),
        }.get(local)
        if allowed is not None and algorithm not in allowed:
            raise _Invalid(f"{local} algorithm not allowed: {algorithm}")


def _check_signing_certificate(sp: etree._Element, cert: x509.Certificate, der: bytes) -> None:
    signing_cert = _find_local(sp, "SigningCertificate", XAD_NAMESPACES)
    if signing_cert is None:
        raise _Invalid("SigningCertificate missing")
    for cert_el in signing_cert:
        if not isinstance(cert_el.tag, str) or etree.QName(cert_el).localname != "Cert":
            continue
        digest = _child(cert_el, XAD_NAMESPACES, "CertDigest")
        method = _child(digest, (DS_NS, *XAD_NAMESPACES), "DigestMethod")
        value = _text(_child(digest, (DS_NS, *XAD_NAMESPACES), "DigestValue"))
        algo = _DIGESTS.get(method.get("Algorithm", "") if method is not None else "")
        if algo is None or value is None:
            continue
        try:
            expected = _b64decode(value)
        except ValueError:
            continue
        if hashlib.new(algo, der).digest() != expected:
            continue
        serial = _text(_find_local(cert_el, "X509SerialNumber", (DS_NS,)))
        if serial is not None and serial != str(cert.serial_number):
            raise _Invalid("SigningCertificate IssuerSerial does not match the certificate")
        return
    raise _Invalid("SigningCertificate CertDigest does not match the signing certificate")


def _signature_certificate(
    sig: etree._Element, trusted: x509.Certificate | None
) -> tuple[x509.Certificate, bytes]:
    if trusted is not None:
        return trusted, trusted.public_bytes(Encoding.DER)
    key_info = _child(sig, DS_NS, "KeyInfo")
    x509_data = _child(key_info, DS_NS, "X509Data")
    value = _text(_child(x509_data, DS_NS, "X509Certificate"))
    if value is None:
        raise _Invalid("no X509Certificate in KeyInfo")
    try:
        der = _b64decode(value)
        return x509.load_der_x509_certificate(der), der
    except ValueError as exc:
        raise _Invalid(f"unreadable X509Certificate: {exc}") from None


def _verify_one(
    sig: etree._Element, root: etree._Element, trusted: x509.Certificate | None
) -> SignatureCheck:
    parent = sig.getparent()
    target = "root" if parent is root else (parent.get("Id") or etree.QName(parent).localname)
    signing_time = claimed_role = common_name = None
    try:
        cert, der = _signature_certificate(sig, trusted)
        common_name = _cert_common_name(cert)
        sp = _check_references(sig, parent)
        signing_time = _text(_find_local(sp, "SigningTime", XAD_NAMESPACES))
        claimed_role = _text(_find_local(sp, "ClaimedRole", XAD_NAMESPACES))
        _check_signing_certificate(sp, cert, der)
        ctx = xmlsec.SignatureContext()
        try:
            ctx.key = xmlsec.Key.from_memory(der, xmlsec.KeyFormat.CERT_DER, None)
        except xmlsec.Error as exc:
            raise _Invalid(f"unusable certificate key: {exc}") from None
        try:
            ctx.verify(sig)
        except xmlsec.Error as exc:
            raise _Invalid(f"cryptographic verification failed: {exc}") from None
    except _Invalid as exc:
        return SignatureCheck(target, False, common_name, signing_time, claimed_role, str(exc))
    return SignatureCheck(target, True, common_name, signing_time, claimed_role, None)


def verify_pes(pes: bytes, *, trusted_cert_pem: bytes | None = None) -> list[SignatureCheck]:
    """Check every ``ds:Signature`` of ``pes`` (an empty list when it has none).

    Each signature is verified by libxmlsec1 (both Reference digests and the SignatureValue) with
    the certificate embedded in its KeyInfo, or ``trusted_cert_pem`` when given; the
    SigningCertificate CertDigest must match that certificate, the first Reference must be the element the signature
    is enveloped in and the second this signature's SignedProperties. Trust in the certificate's
    issuer is NOT evaluated."""
    trusted = x509.load_pem_x509_certificate(trusted_cert_pem) if trusted_cert_pem else None
    tree = _parse(pes)
    root = tree.getroot()
    signatures = _SIGNATURES_XPATH(root)
    if not signatures:
        return []
    ids = _IDS_XPATH(root)
    if len(ids) != len(set(ids)):
        # An ambiguous Id lets a signature point at another element than the one it envelops.
        return [
            SignatureCheck(
                "root" if s.getparent() is root else (s.getparent().get("Id") or "?"),
                False,
                None,
                None,
                None,
                "duplicate Id attributes in the document",
            )
            for s in signatures
        ]
    xmlsec.tree.add_ids(root, ["Id"])
    return [_verify_one(sig, root, trusted) for sig in signatures]


# --------------------------------------------------------------------------- connector


class XadesConnector:
    """Signature stage of the HELIOS flow, signed locally (no remote side: ``lookup`` finds nothing
    and re-signing after a crash is harmless). A PES declared ``already_signed`` is verified
    instead and passed through unchanged when every signature is valid."""

    def __init__(self, cert_path: Path, key_path: Path, role: str = "Ordonnateur",
                 password_env: str | None = None) -> None:
        self.cert_path = Path(cert_path)
        self.key_path = Path(key_path)
        self.role = role
        self.password_env = password_env  # the key's password is read from this environment variable
        # job.reference -> (signer CN, number of signatures), filled by submit for poll.
        self._done: dict[str, tuple[str | None, int]] = {}

    def _creds(self) -> _Credentials:
        try:
            return _credentials(self.cert_path, self.key_path, self._password())
        except (OSError, ValueError, TypeError, xmlsec.Error) as exc:
            raise PermanentConnectorError(f"signing certificate/key unusable: {exc}") from exc

    def _password(self) -> str | None:
        return os.environ.get(self.password_env) if self.password_env else None

    async def lookup(self, job: StageJob) -> str | None:
        return None

    async def submit(self, job: StageJob) -> tuple[str, list[OutputFile]]:
        documents = [f for f in job.files if f.role == "document"]
        if len(documents) != 1:
            raise PermanentConnectorError(
                f"expected exactly one PES file with role 'document', got {len(documents)}"
            )
        doc = documents[0]
        if job.metadata.get("already_signed"):
            try:
                checks = await asyncio.to_thread(verify_pes, doc.data)
            except SchemaError as exc:
                raise PermanentConnectorError(f"pes_signature_invalid: {exc}") from exc
            if not checks:
                raise PermanentConnectorError(
                    f"pes_signature_invalid: {doc.name} is declared signed but has no signature"
                )
            bad = [c for c in checks if not c.valid]
            if bad:
                detail = "; ".join(f"{c.target}: {c.reason}" for c in bad)
                raise PermanentConnectorError(f"pes_signature_invalid: {doc.name}: {detail}")
            signed = doc.data
            self._done[job.reference] = (checks[0].signer_common_name, len(checks))
        else:
            await asyncio.to_thread(self._creds)
            options = job.options
            try:
                signed, count = await asyncio.to_thread(
                    _sign,
                    doc.data,
                    cert_path=self.cert_path,
                    key_path=self.key_path,
                    password=self._password(),
                    role=options.get("signature_role") or self.role,
                    city=options.get("signature_city"),
                    postal_code=options.get("signature_postal_code"),
                    signing_time=None,
                )
            except SchemaError as exc:
                raise PermanentConnectorError(f"cannot sign {doc.name}: {exc}") from exc
            self._done[job.reference] = (self._creds().common_name, count)
        return job.reference, [
            OutputFile(
                name=doc.name,
                role="signed_document",
                data=signed,
                media_type="application/xml",
            )
        ]

    poll_reads_files = True  # a signature made by an earlier process is recounted from the input

    async def poll(self, job: StageJob, remote_id: str) -> StageResult:
        done = self._done.pop(job.reference, None)
        if done is None:  # submitted by an earlier process: recount from the input
            documents = [f for f in job.files if f.role == "document"]
            data = documents[0].data if documents else b""
            if job.metadata.get("already_signed"):
                try:
                    checks = await asyncio.to_thread(verify_pes, data)
                except SchemaError:
                    checks = []
                signer = checks[0].signer_common_name if checks else None
                done = (signer, len(checks))
            else:
                try:
                    signer = self._creds().common_name
                except ConnectorError:
                    signer = None
                done = (signer, await asyncio.to_thread(_signature_count, data))
        return StageResult("done", fields={"signer": done[0], "signatures": done[1]})

    async def aclose(self) -> None:
        return None


def _signature_count(pes: bytes) -> int:
    """How many signatures ``pes`` carries (signed) or ``sign_pes`` would put on it (unsigned)."""
    try:
        root = _parse(pes).getroot()
    except XadesError:
        return 0
    signed = len(_SIGNATURES_XPATH(root))
    if signed:
        return signed
    bordereaux = _BORDEREAUX_XPATH(root)
    if bordereaux and all(b.get("Id") for b in bordereaux):
        return len(bordereaux)
    return 1 if root.get("Id") else 0
