"""Local PAdES signing (pyHanko) with the collectivité's configured certificate.

``sign_pdf`` / ``verify_pdf`` are synchronous and CPU-bound: async callers should run them with
``asyncio.to_thread`` (as :class:`PadesConnector` does). pyHanko's sync API drives its own
``asyncio.run``, which cannot nest in a running loop, so when they are nevertheless called from a
loop thread they hop to a worker thread (still blocking the caller).

Signers are cached per (cert path, key path, inodes, mtimes): loading an RSA key costs ~60 ms because
``cryptography`` checks RSA keys on load, and pyHanko's ``SimpleSigner`` even re-parses its key on
every signature, so the cached signer also keeps the parsed key object.

Most of a signature's CPU was asn1crypto, not RSA: a structure built from Python values stays
"mutated" forever, so every ``dump()`` re-encodes it and all its built descendants (twice per level
on the first dump). The cached signer therefore hands pyHanko parsed-from-DER ("frozen") values
whose encoding asn1crypto keeps: the signing-certificate-v2 attribute (built once per signer), the
signature mechanism, the signed attributes and the ``SignerInfo``.
"""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from asn1crypto import algos, cms, core
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pyhanko.keys import load_cert_from_pemder, load_private_key_from_pemder
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import attributes, fields, general, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params

from connectors.base import (
    ConnectorError,
    OutputFile,
    PermanentConnectorError,
    StageJob,
    StageResult,
)
from connectors.signature.keyfiles import file_version
from connectors.signature.pdf import is_pdf

T = TypeVar("T")


def _outside_loop(fn: Callable[[], T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


A = TypeVar("A", bound=core.Asn1Value)


def _frozen(value: A) -> A:
    """``value`` re-parsed from its DER: asn1crypto then keeps its encoding instead of re-encoding
    the whole tree on every ``dump()``. A fresh object per call, so no state is shared."""
    return type(value).load(value.dump())


class _FrozenAttribute(attributes.CMSAttributeProvider):
    def __init__(self, der: bytes) -> None:
        self.der = der

    async def get_attribute(self, dry_run: bool = False) -> cms.CMSAttribute:
        return cms.CMSAttribute.load(self.der)


class _FrozenSigningCertificate(attributes.SignedAttributeProviderSpec):
    """pyHanko's default spec, with its signing-certificate-v2 attribute (a digest of the
    certificate plus its issuer and serial, the deepest structure of the CMS) built once."""

    def __init__(self, spec: attributes.SignedAttributeProviderSpec, der: bytes) -> None:
        self.spec, self.der = spec, der

    def signed_attr_providers(
        self, data_digest: bytes, digest_algorithm: str
    ) -> Iterable[attributes.CMSAttributeProvider]:
        for provider in self.spec.signed_attr_providers(data_digest, digest_algorithm):
            if isinstance(provider, attributes.SigningCertificateV2Provider):
                yield _FrozenAttribute(self.der)
            else:
                yield provider


class CachedKeySigner(signers.SimpleSigner):
    """A ``SimpleSigner`` that parses its private key once instead of on every ``sign_raw`` and
    gives pyHanko frozen asn1crypto values (see the module docstring)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._private_key = serialization.load_der_private_key(
            self.signing_key.dump(), password=None
        )
        # Reserving the CMS size up front spares pyHanko a dry-run signature (halves signing
        # time). The placeholder is hex, hence 2x: certificates + 4 KiB for signature and
        # signed attributes.
        der_size = 4096 + len(self.signing_cert.dump())
        der_size += sum(len(cert.dump()) for cert in self.cert_registry)
        self.bytes_reserved = 2 * der_size
        self._signing_cert_v2 = general.simple_cms_attribute(
            "signing_certificate_v2", general.as_signing_certificate_v2(self.signing_cert)
        ).dump()
        self._mechanisms: dict[str | None, bytes] = {}

    def get_signature_mechanism_for_digest(
        self, digest_algorithm: str | None
    ) -> algos.SignedDigestAlgorithm:
        der = self._mechanisms.get(digest_algorithm)
        if der is None:
            der = super().get_signature_mechanism_for_digest(digest_algorithm).dump()
            self._mechanisms[digest_algorithm] = der
        return algos.SignedDigestAlgorithm.load(der)

    def _signed_attr_provider_spec(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        spec = super()._signed_attr_provider_spec(*args, **kwargs)
        return _FrozenSigningCertificate(spec, self._signing_cert_v2)

    async def signed_attrs(self, *args, **kwargs) -> cms.CMSAttributes:  # type: ignore[no-untyped-def]
        return _frozen(await super().signed_attrs(*args, **kwargs))

    def signer_info(self, digest_algorithm: str, signed_attrs, signature) -> cms.SignerInfo:  # type: ignore[no-untyped-def]
        return _frozen(super().signer_info(digest_algorithm, signed_attrs, signature))

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        algo = mechanism.signature_algo
        key = self._private_key
        if algo == "rsassa_pkcs1v15" and isinstance(key, RSAPrivateKey):
            return key.sign(data, PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))
        if algo == "rsassa_pss" and isinstance(key, RSAPrivateKey):
            padding, hash_algo = process_pss_params(mechanism["parameters"])
            return key.sign(data, padding, hash_algo)
        if algo == "ecdsa" and isinstance(key, EllipticCurvePrivateKey):
            return key.sign(data, ECDSA(get_pyca_cryptography_hash(digest_algorithm)))
        return super().sign_raw(data, digest_algorithm)

    @property
    def common_name(self) -> str | None:
        return self.signing_cert.subject.native.get("common_name")


@functools.lru_cache(maxsize=64)
def _load_signer(cert: tuple[str, int, int], key: tuple[str, int, int]) -> CachedKeySigner:
    return CachedKeySigner(
        signing_cert=load_cert_from_pemder(cert[0]),
        signing_key=load_private_key_from_pemder(key[0], passphrase=None),
        cert_registry=SimpleCertificateStore(),
    )


def get_signer(cert_path: Path, key_path: Path) -> CachedKeySigner:
    """The cached signer for these files; reloaded only when a file changes (mtime, inode)."""
    return _load_signer(file_version(cert_path), file_version(key_path))


def _free_field_name(reader: PdfFileReader) -> str:
    """``Signature1`` unless the PDF already carries it (counter-signing a signed PDF)."""
    taken = {name for name, _, _ in fields.enumerate_sig_fields(reader, filled_status=True)}
    n = 1
    while f"Signature{n}" in taken:
        n += 1
    return f"Signature{n}"


def sign_pdf(
    pdf: bytes,
    *,
    cert_path: Path,
    key_path: Path,
    reason: str = "Signature de l'acte",
    location: str | None = None,
    signer_name: str | None = None,
) -> bytes:
    """Return ``pdf`` with a PAdES B-B signature appended as an incremental update."""
    signer = get_signer(cert_path, key_path)
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    meta = signers.PdfSignatureMetadata(
        field_name=_free_field_name(writer.prev),
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        location=location,
        name=signer_name,
    )
    out = _outside_loop(
        lambda: signers.sign_pdf(writer, meta, signer=signer, bytes_reserved=signer.bytes_reserved)
    )
    return out.getvalue()


@dataclass(frozen=True)
class SignatureInfo:
    signed: bool
    intact: bool  # every signature covers its revision and is cryptographically valid
    signer_common_name: str | None  # of the most recent signature


def verify_pdf(pdf: bytes) -> SignatureInfo:
    """Check the embedded signatures' integrity (trust in the signer's CA is NOT evaluated)."""
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        sigs = reader.embedded_signatures
    except Exception:  # noqa: BLE001 - an unreadable PDF is simply "not signed"
        return SignatureInfo(signed=False, intact=False, signer_common_name=None)
    if not sigs:
        return SignatureInfo(signed=False, intact=False, signer_common_name=None)
    intact, common_name = True, None
    for sig in sigs:
        # Trust is out of scope here: anchoring the signer's own certificate keeps pyHanko's path
        # builder quiet (it otherwise logs a traceback per self-signed or unknown-CA certificate).
        context = ValidationContext(trust_roots=[sig.signer_cert], allow_fetching=False)
        try:
            status = _outside_loop(functools.partial(validate_pdf_signature, sig, context))
        except Exception:  # noqa: BLE001 - malformed CMS, unsupported algorithm...
            intact = False
            continue
        intact = intact and bool(status.intact and status.valid)
        common_name = status.signing_cert.subject.native.get("common_name")
    return SignatureInfo(signed=True, intact=intact, signer_common_name=common_name)


class PadesConnector:
    """Signature stage signed locally: no remote side, so ``lookup`` has nothing to find and
    re-signing after a crash is harmless. ``submit`` returns the signed documents; ``poll`` just
    confirms (the remote id is ``job.reference``)."""

    def __init__(self, cert_path: Path, key_path: Path) -> None:
        self.cert_path = Path(cert_path)
        self.key_path = Path(key_path)

    def _signer(self) -> CachedKeySigner:
        try:
            return get_signer(self.cert_path, self.key_path)
        except (OSError, ValueError, TypeError) as exc:
            raise PermanentConnectorError(f"signing certificate/key unusable: {exc}") from exc

    async def lookup(self, job: StageJob) -> str | None:
        return None

    async def submit(self, job: StageJob) -> tuple[str, list[OutputFile]]:
        documents = [f for f in job.files if f.role == "document"]
        if not documents:
            raise PermanentConnectorError("no file with role 'document' to sign")
        for doc in documents:
            if not is_pdf(doc.data):
                raise PermanentConnectorError(f"{doc.name} is not a PDF, cannot PAdES-sign it")
        signer = await asyncio.to_thread(self._signer)
        location = job.options.get("signature_location") or job.collectivite.name
        outputs = []
        for doc in documents:
            try:
                signed = await asyncio.to_thread(
                    sign_pdf,
                    doc.data,
                    cert_path=self.cert_path,
                    key_path=self.key_path,
                    location=location,
                    signer_name=signer.common_name,
                )
            except Exception as exc:
                raise PermanentConnectorError(f"cannot sign {doc.name}: {exc}") from exc
            outputs.append(
                OutputFile(
                    name=doc.name, role="signed_document", data=signed, media_type="application/pdf"
                )
            )
        return job.reference, outputs

    async def poll(self, job: StageJob, remote_id: str) -> StageResult:
        try:
            signer = self._signer()
        except ConnectorError:
            return StageResult("done")
        return StageResult("done", fields={"signer": signer.common_name})

    async def aclose(self) -> None:
        return None
