"""SEDA 2.1 messages exchanged with an SAE (As@lae): build and read them.

* :func:`build_archive_transfer` - the ``ArchiveTransfer`` bordereau we send (one ``BinaryDataObject``
  per file, one ``ArchiveUnit`` referencing them all).
* :func:`build_acknowledgement` / :func:`build_transfer_reply` - what the SAE answers (used by the
  As@lae simulator, and handy in tests).
* :func:`parse_acknowledgement` / :func:`parse_transfer_reply` / :func:`parse_archive_transfer` -
  read them back with a hardened parser (no DTD, no entities, no network).
* :func:`validate_seda21` - validation against the SEDA 2.1 XSD shipped in ``schemas/xsd``.

Conventions follow As@lae's reading of SEDA 2.1 (docs/protocols.md §5): in an ``ArchiveTransferReply``,
``MessageIdentifier`` is the *original transfer id* and ``MessageRequestIdentifier`` the reply's own
id; the archive identifier is
``DataObjectPackage/DescriptiveMetadata/ArchiveUnit/Content/ArchivalAgencyArchiveUnitIdentifier``.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import date as date_type
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree

SEDA21_NS = "fr:gouv:culture:archivesdefrance:seda:v2.1"
_NS = {"s": SEDA21_NS}
_XSD = Path(__file__).resolve().parent.parent / "xsd" / "seda_v2" / "2.1" / "seda-2.1-main.xsd"
MAX_MESSAGE_BYTES = 50 * 1024 * 1024

SedaFile = tuple[str, bytes, str]


class SedaError(ValueError):
    """A SEDA message that cannot be read or is not valid SEDA 2.1."""


# --------------------------------------------------------------------------------------- helpers


def _q(tag: str) -> str:
    return f"{{{SEDA21_NS}}}{tag}"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, _q(tag), attrs)
    if text is not None:
        el.text = text
    return el


def _organization(parent: etree._Element, tag: str, identifier: str) -> None:
    _sub(_sub(parent, tag), "Identifier", identifier)


def _dt(value: datetime) -> str:
    return value.replace(microsecond=0).isoformat()


def _root(tag: str) -> etree._Element:
    return etree.Element(_q(tag), nsmap={None: SEDA21_NS})


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _code_list_versions(parent: etree._Element) -> None:
    clv = _sub(parent, "CodeListVersions")
    _sub(clv, "ReplyCodeListVersion", "ReplyCodeListVersion0")
    _sub(clv, "MessageDigestAlgorithmCodeListVersion", "MessageDigestAlgorithmCodeListVersion0")
    _sub(clv, "MimeTypeCodeListVersion", "MimeTypeCodeListVersion0")
    _sub(clv, "FileFormatCodeListVersion", "FileFormatCodeListVersion0")


# --------------------------------------------------------------------------------------- builders


def build_archive_transfer(
    *,
    message_identifier: str,
    archival_agency: str,
    transferring_agency: str,
    originating_agency: str,
    archival_agreement: str | None,
    title: str,
    description: str | None,
    files: list[SedaFile],
    start_date: date_type | None,
    keywords: dict[str, str] | None,
    date: datetime,
) -> bytes:
    """An ``ArchiveTransfer``: one BinaryDataObject per ``(name, data, media type)`` file (the files
    travel in the attachment archive under the same names) and one ArchiveUnit describing them."""
    if not files:
        raise SedaError("an ArchiveTransfer needs at least one file")
    names = [name for name, _, _ in files]
    if len(set(names)) != len(names):
        raise SedaError("file names must be unique within a transfer")

    root = _root("ArchiveTransfer")
    if description:
        _sub(root, "Comment", description)
    _sub(root, "Date", _dt(date))
    _sub(root, "MessageIdentifier", message_identifier)
    if archival_agreement:
        _sub(root, "ArchivalAgreement", archival_agreement)
    _code_list_versions(root)

    package = _sub(root, "DataObjectPackage")
    for index, (name, data, media_type) in enumerate(files, start=1):
        bdo = _sub(package, "BinaryDataObject", id=f"BDO{index}")
        _sub(bdo, "DataObjectVersion", "BinaryMaster_1")
        _sub(bdo, "Attachment", filename=name)
        _sub(bdo, "MessageDigest", hashlib.sha256(data).hexdigest(), algorithm="SHA-256")
        if data:  # Size is a positiveInteger: an empty file simply has none
            _sub(bdo, "Size", str(len(data)))
        _sub(_sub(bdo, "FormatIdentification"), "MimeType", media_type)
        _sub(_sub(bdo, "FileInfo"), "Filename", name)

    unit = _sub(_sub(package, "DescriptiveMetadata"), "ArchiveUnit", id="AU1")
    content = _sub(unit, "Content")
    _sub(content, "DescriptionLevel", "File")
    _sub(content, "Title", title)
    _sub(content, "OriginatingAgencyArchiveUnitIdentifier", message_identifier)
    if description:
        _sub(content, "Description", description)
    for reference, value in (keywords or {}).items():
        keyword = _sub(content, "Keyword")
        _sub(keyword, "KeywordContent", value)
        _sub(keyword, "KeywordReference", reference)
        _sub(keyword, "KeywordType", "subject")
    _organization(content, "OriginatingAgency", originating_agency)
    _organization(content, "SubmissionAgency", transferring_agency)
    if start_date is not None:
        _sub(content, "StartDate", start_date.isoformat())
        _sub(content, "EndDate", start_date.isoformat())
    for index in range(1, len(files) + 1):
        _sub(_sub(unit, "DataObjectReference"), "DataObjectReferenceId", f"BDO{index}")

    management = _sub(package, "ManagementMetadata")
    _sub(management, "OriginatingAgencyIdentifier", originating_agency)
    _sub(management, "SubmissionAgencyIdentifier", transferring_agency)

    _organization(root, "ArchivalAgency", archival_agency)
    _organization(root, "TransferringAgency", transferring_agency)
    return _serialize(root)


def build_acknowledgement(
    *,
    message_identifier: str,
    message_received_identifier: str,
    sender: str,
    receiver: str,
    date: datetime,
    comment: str | None = None,
) -> bytes:
    """An ``Acknowledgement`` of a received message (``sender`` is the SAE, ``receiver`` the
    transferring agency)."""
    root = _root("Acknowledgement")
    if comment:
        _sub(root, "Comment", comment)
    _sub(root, "Date", _dt(date))
    _sub(root, "MessageIdentifier", message_identifier)
    _sub(root, "MessageReceivedIdentifier", message_received_identifier)
    _organization(root, "Sender", sender)
    _organization(root, "Receiver", receiver)
    return _serialize(root)


def build_transfer_reply(
    *,
    message_identifier: str,
    reply_code: str,
    comment: str | None,
    archive_unit_identifier: str | None,
    request_identifier: str,
    archival_agency: str,
    transferring_agency: str,
    date: datetime,
) -> bytes:
    """An ``ArchiveTransferReply`` the As@lae way: ``MessageIdentifier`` = the transfer id,
    ``MessageRequestIdentifier`` = the reply's own id (``request_identifier``)."""
    root = _root("ArchiveTransferReply")
    if comment:
        _sub(root, "Comment", comment)
    _sub(root, "Date", _dt(date))
    _sub(root, "MessageIdentifier", message_identifier)
    _code_list_versions(root)
    if archive_unit_identifier:
        package = _sub(root, "DataObjectPackage")
        unit = _sub(_sub(package, "DescriptiveMetadata"), "ArchiveUnit", id="AU1")
        content = _sub(unit, "Content")
        _sub(content, "DescriptionLevel", "File")
        _sub(content, "ArchivalAgencyArchiveUnitIdentifier", archive_unit_identifier)
        _sub(package, "ManagementMetadata")
    _sub(root, "ReplyCode", reply_code)
    _sub(root, "MessageRequestIdentifier", request_identifier)
    if reply_code == "000":
        _sub(root, "GrantDate", _dt(date))
    _organization(root, "ArchivalAgency", archival_agency)
    _organization(root, "TransferringAgency", transferring_agency)
    return _serialize(root)


# --------------------------------------------------------------------------------------- reading


def parse_seda(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> etree._Element:
    """Parse a SEDA message safely: no DOCTYPE, no entity expansion, no network, bounded size."""
    if not isinstance(data, (bytes, bytearray)):
        raise SedaError("SEDA message must be bytes")
    if len(data) > max_bytes:
        raise SedaError(f"SEDA message larger than {max_bytes} bytes")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )
    try:
        root = etree.fromstring(bytes(data), parser)
    except etree.XMLSyntaxError as exc:
        raise SedaError(f"not well-formed XML: {exc}") from exc
    if root.getroottree().docinfo.doctype:
        raise SedaError("DOCTYPE is not allowed in a SEDA message")
    if etree.QName(root).namespace != SEDA21_NS:
        raise SedaError(f"not a SEDA 2.1 message (namespace {etree.QName(root).namespace!r})")
    return root


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(_XSD)))


# An XMLSchema object keeps its error log on itself: one validation at a time.
_SCHEMA_LOCK = threading.Lock()


def validate_seda21(message: bytes | etree._Element) -> etree._Element:
    """Validate against the SEDA 2.1 XSD; returns the root, raises :class:`SedaError` otherwise."""
    root = parse_seda(message) if isinstance(message, (bytes, bytearray)) else message
    schema = _schema()
    with _SCHEMA_LOCK:
        ok = schema.validate(root)
        errors = "; ".join(f"line {e.line}: {e.message}" for e in list(schema.error_log)[:5])
    if not ok:
        raise SedaError(f"invalid SEDA 2.1 message: {errors}")
    return root


def _text(root: etree._Element, path: str) -> str | None:
    found = root.find(path, _NS)
    return found.text.strip() if found is not None and found.text else None


def _expect(root: etree._Element, tag: str) -> None:
    if etree.QName(root).localname != tag:
        raise SedaError(f"expected {tag}, got {etree.QName(root).localname}")


def parse_acknowledgement(data: bytes) -> dict[str, Any]:
    """Keys: ``message_identifier`` (the acknowledgement's id), ``message_received_identifier``
    (the transfer id), ``reply_code`` (None: SEDA 2.1 acknowledgements carry none), ``comment``,
    ``date``, ``archive_identifier`` (None), ``sender``, ``receiver``."""
    root = parse_seda(data)
    _expect(root, "Acknowledgement")
    return {
        "message_identifier": _text(root, "s:MessageIdentifier"),
        "message_received_identifier": _text(root, "s:MessageReceivedIdentifier"),
        "reply_code": _text(root, "s:ReplyCode"),
        "comment": _text(root, "s:Comment"),
        "date": _text(root, "s:Date"),
        "archive_identifier": None,
        "sender": _text(root, "s:Sender/s:Identifier"),
        "receiver": _text(root, "s:Receiver/s:Identifier"),
    }


def parse_transfer_reply(data: bytes) -> dict[str, Any]:
    """Keys: ``reply_code``, ``comment``, ``message_identifier`` (the transfer id),
    ``request_identifier`` (the reply's own id), ``archive_identifier``, ``date``, ``grant_date``."""
    root = parse_seda(data)
    _expect(root, "ArchiveTransferReply")
    return {
        "reply_code": _text(root, "s:ReplyCode"),
        "comment": _text(root, "s:Comment"),
        "message_identifier": _text(root, "s:MessageIdentifier"),
        "request_identifier": _text(root, "s:MessageRequestIdentifier"),
        "archive_identifier": _text(
            root,
            "s:DataObjectPackage/s:DescriptiveMetadata/s:ArchiveUnit/s:Content/"
            "s:ArchivalAgencyArchiveUnitIdentifier",
        ),
        "date": _text(root, "s:Date"),
        "grant_date": _text(root, "s:GrantDate"),
    }


def parse_archive_transfer(data: bytes) -> dict[str, Any]:
    """Read the parts of an ``ArchiveTransfer`` a receiver checks: identifiers, agencies and the
    ``files`` list of ``{"id", "filename", "digest", "algorithm", "size", "mime_type"}``."""
    root = parse_seda(data)
    _expect(root, "ArchiveTransfer")
    files = []
    for bdo in root.iterfind("s:DataObjectPackage/s:BinaryDataObject", _NS):
        attachment = bdo.find("s:Attachment", _NS)
        digest = bdo.find("s:MessageDigest", _NS)
        size = _text(bdo, "s:Size")
        files.append(
            {
                "id": bdo.get("id"),
                "filename": _text(bdo, "s:FileInfo/s:Filename")
                or (attachment.get("filename") if attachment is not None else None)
                or _text(bdo, "s:Uri"),
                "digest": (digest.text or "").strip() if digest is not None else None,
                "algorithm": digest.get("algorithm") if digest is not None else None,
                "size": int(size) if size else 0,
                "mime_type": _text(bdo, "s:FormatIdentification/s:MimeType"),
            }
        )
    return {
        "message_identifier": _text(root, "s:MessageIdentifier"),
        "archival_agreement": _text(root, "s:ArchivalAgreement"),
        "archival_agency": _text(root, "s:ArchivalAgency/s:Identifier"),
        "transferring_agency": _text(root, "s:TransferringAgency/s:Identifier"),
        "originating_agency": _text(
            root, "s:DataObjectPackage/s:ManagementMetadata/s:OriginatingAgencyIdentifier"
        )
        or _text(
            root,
            "s:DataObjectPackage/s:DescriptiveMetadata/s:ArchiveUnit/s:Content/"
            "s:OriginatingAgency/s:Identifier",
        ),
        "title": _text(
            root, "s:DataObjectPackage/s:DescriptiveMetadata/s:ArchiveUnit/s:Content/s:Title"
        ),
        "files": files,
    }
