"""ACTES transfer archive (.tar.gz with the enveloppe + message + documents),
docs/protocols.md §1.2–§1.5."""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import PurePosixPath
from typing import Any

from lxml import etree

from schemas.errors import ArchiveError, SchemaError, XmlError, XsdError
from schemas.xml import parse_xml, validate

from .messages import message_from_root
from .metadata import ActesMetadata
from .naming import (
    ENVELOPPE_NAME_RE,
    archive_name,
    business_file_name,
    check_archive_name,
    enveloppe_name,
)
from .ns import local, root_element, serialize, sub

__all__ = [
    "ACTE_EXTENSIONS",
    "ANNEXE_EXTENSIONS",
    "BuiltArchive",
    "Emetteur",
    "ParsedArchive",
    "ParsedMessageArchive",
    "build_acte_archive",
    "build_acte_xml",
    "build_enveloppe",
    "build_message_archive",
    "pack_tar_gz",
    "read_acte_archive",
    "read_message_archive",
]

ACTE_EXTENSIONS = frozenset({"pdf", "xml"})
ANNEXE_EXTENSIONS = frozenset({"pdf", "xml", "png", "jpg", "jpeg"})
_TAR_BLOCK = 512


@dataclass
class Emetteur:
    siren: str
    departement: str
    arrondissement: str
    nature: str  # authority-type code, 2 digits (e.g. "31" commune)
    referent_email: str | None = None


@dataclass
class BuiltArchive:
    name: str
    data: bytes
    enveloppe_name: str
    acte_xml_name: str
    acte_xml: bytes
    enveloppe_xml: bytes
    members: list[str]


@dataclass
class ParsedArchive:
    enveloppe: dict[str, Any]
    acte: dict[str, Any]
    acte_xml: bytes
    enveloppe_xml: bytes
    files: dict[str, bytes]
    # Additions: names and the message type (an archive may carry an Annulation, etc.).
    enveloppe_name: str = ""
    acte_xml_name: str = ""
    message_root: str = "Acte"
    message_type: str | None = "1-1"
    name: str | None = None
    members: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Building


def _ext_of(filename: str) -> str:
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower().lstrip(".")
    return suffix or "pdf"


def build_enveloppe(emetteur: Emetteur, return_emails: list[str], formulaires: list[str]) -> bytes:
    if not return_emails:
        raise ArchiveError("archive_invalid_enveloppe", "au moins une adresse de retour / at least one return e-mail")
    root = root_element("EnveloppeCLMISILL")
    em = sub(root, "Emetteur")
    sub(
        em,
        "IDCL",
        SIREN=emetteur.siren,
        Departement=emetteur.departement,
        Arrondissement=str(emetteur.arrondissement),
        Nature=str(emetteur.nature),
    )
    if emetteur.referent_email:
        sub(sub(em, "Referent"), "Email", emetteur.referent_email)
    adr = sub(root, "AdressesRetour")
    for mail in dict.fromkeys(return_emails):  # dedupe, keep order
        sub(adr, "Email", mail)
    fe = sub(root, "FormulairesEnvoyes")
    for f in formulaires:
        sub(sub(fe, "Formulaire"), "NomFichier", f)
    validate("actes", root)
    return serialize(root)


def build_acte_xml(
    metadata: ActesMetadata, classification_date: date, document_name: str, annex_names: list[str]
) -> bytes:
    root = root_element(
        "Acte",
        {
            "Date": metadata.date_decision.isoformat(),
            "NumeroInterne": metadata.numero_interne,
            "CodeNatureActe": str(metadata.nature),
        },
    )
    for i, level in enumerate(metadata.classification_levels[:5], start=1):
        sub(root, f"CodeMatiere{i}", CodeMatiere=str(level))
    sub(root, "Objet", metadata.objet)
    sub(root, "ClassificationDateVersion", classification_date.isoformat())
    sub(sub(root, "Document"), "NomFichier", document_name)
    annexes = sub(root, "Annexes", Nombre=str(len(annex_names)))
    for n in annex_names:
        sub(sub(annexes, "Annexe"), "NomFichier", n)
    sub(root, "DocumentPapier", "N")
    validate("actes", root)
    return serialize(root)


def pack_tar_gz(members: list[tuple[str, bytes]]) -> bytes:
    """Flat tar piped through gzip, byte-for-byte reproducible (mtime 0, no owner)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(content))
    out = io.BytesIO()
    # Level 1, by measure (bench TdT tar, 20 KiB: 15.3 % of the tar in 2.7 ms/MiB; 14.5 % in 6.8 at
    # -9, S²low's own level); no level gains more than 2 % on already-compressed PDFs (~20 ms/MiB).
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=1, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_message_archive(
    *,
    emetteur: Emetteur,
    message_name: str,
    message_xml: bytes,
    files: list[tuple[str, bytes]],
    trigramme: str,
    quadrigramme: str,
    serial: int,
    day: date,
    return_emails: list[str],
) -> BuiltArchive:
    """Generic archive for one already-built business message (Annulation, replies...).
    `files` are (final member name, content), in order."""
    env_name = enveloppe_name(quadrigramme, emetteur.siren, day, serial)
    env_xml = build_enveloppe(emetteur, return_emails, [message_name])
    members = [(env_name, env_xml), (message_name, message_xml), *files]
    names = [n for n, _ in members]
    if len(set(names)) != len(names):
        raise ArchiveError("archive_duplicate_member", f"noms de fichiers en double / duplicate names: {names}")
    return BuiltArchive(
        name=archive_name(trigramme, env_name),
        data=pack_tar_gz(members),
        enveloppe_name=env_name,
        acte_xml_name=message_name,
        acte_xml=message_xml,
        enveloppe_xml=env_xml,
        members=names,
    )


def build_acte_archive(
    *,
    emetteur: Emetteur,
    metadata: ActesMetadata,
    classification_date: date,
    document: tuple[str, bytes],
    annexes: list[tuple[str, bytes]],
    trigramme: str,
    quadrigramme: str,
    serial: int,
    day: date,
    return_emails: list[str],
) -> BuiltArchive:
    """Build the transfer archive of one acte (message 1-1). Both XMLs are XSD-validated."""
    doc_ext = _ext_of(document[0])
    if doc_ext not in ACTE_EXTENSIONS:
        raise ArchiveError("archive_bad_file_type", f"l'acte doit être un PDF ou un XML / acte must be PDF or XML: {document[0]}")
    if doc_ext == "xml" and not (metadata.nature == 5 and metadata.classification.startswith("7.1")):
        raise ArchiveError(
            "archive_bad_file_type",
            "un acte XML n'est permis qu'en nature 5 classification 7.1 / XML acte only for nature 5 with 7.1",
        )
    for fname, _ in annexes:
        if _ext_of(fname) not in ANNEXE_EXTENSIONS:
            raise ArchiveError("archive_bad_file_type", f"type d'annexe non autorisé / annex type not allowed: {fname}")
        if doc_ext == "xml" and _ext_of(fname) != "pdf":
            raise ArchiveError("archive_bad_file_type", f"annexes d'un acte XML en PDF / annexes of an XML acte must be PDF: {fname}")

    typologies = metadata.typologies(len(annexes))
    common = dict(
        departement=emetteur.departement,
        siren=emetteur.siren,
        date_decision=metadata.date_decision,
        numero=metadata.numero_interne,
        nature=metadata.nature,
        type_code="1-1",
    )
    try:
        acte_xml_name = business_file_name(**common, index=0, ext="xml")
        doc_name = business_file_name(**common, index=1, ext=doc_ext, typologie=typologies[0])
        annex_names = [
            business_file_name(**common, index=i + 2, ext=_ext_of(fname), typologie=typologies[i + 1])
            for i, (fname, _) in enumerate(annexes)
        ]
    except ValueError as exc:
        raise ArchiveError("archive_invalid_enveloppe", str(exc)) from None

    acte_xml = build_acte_xml(metadata, classification_date, doc_name, annex_names)
    files = [(doc_name, document[1])] + [(n, c) for n, (_, c) in zip(annex_names, annexes)]
    return build_message_archive(
        emetteur=emetteur,
        message_name=acte_xml_name,
        message_xml=acte_xml,
        files=files,
        trigramme=trigramme,
        quadrigramme=quadrigramme,
        serial=serial,
        day=day,
        return_emails=return_emails,
    )


# ---------------------------------------------------------------------------------------------
# Reading (untrusted input)


def _gunzip_capped(data: bytes, cap: int) -> bytes:
    """Decompress (possibly multi-member) gzip, refusing to produce more than `cap` bytes."""
    out = bytearray()
    buf = data
    while buf:
        d = zlib.decompressobj(wbits=31)
        while True:
            chunk = d.decompress(buf, 1 << 16)
            out += chunk
            if len(out) > cap:
                raise ArchiveError(
                    "archive_too_large",
                    f"archive décompressée trop volumineuse / uncompressed archive exceeds {cap} bytes",
                )
            buf = d.unconsumed_tail
            if d.eof:
                buf = d.unused_data
                break
            if not buf:
                if not d.eof:
                    raise ArchiveError("archive_corrupt", "archive gzip tronquée / truncated gzip stream")
                break
        if buf and not buf.lstrip(b"\x00"):  # trailing zero padding
            break
    return bytes(out)


def _check_member(info: tarfile.TarInfo) -> str:
    name = info.name
    if not info.isreg():
        kind = "directory" if info.isdir() else "link" if (info.issym() or info.islnk()) else "special file"
        raise ArchiveError("archive_forbidden_member", f"membre interdit / forbidden member ({kind}): {name!r}")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm) or ".." in norm.split("/"):
        raise ArchiveError("archive_path_traversal", f"chemin interdit / unsafe path in archive: {name!r}")
    if "/" in norm:
        raise ArchiveError("archive_not_flat", f"l'archive doit être à plat / archive must be flat: {name!r}")
    if not name or name in (".",) or "\x00" in name:
        raise ArchiveError("archive_path_traversal", f"nom de membre invalide / invalid member name: {name!r}")
    return name


def _parse_member_xml(name: str, content: bytes) -> etree._Element:
    try:
        root = parse_xml(content)
        validate("actes", root)
    except XsdError as exc:
        raise ArchiveError("archive_invalid_xml", f"{name}: {exc.message}") from None
    except XmlError as exc:
        raise ArchiveError("archive_invalid_xml", f"{name}: {exc.message}") from None
    return root


def _members(data: bytes, max_bytes: int, max_members: int) -> dict[str, bytes]:
    """The members of a flat tar.gz, read in memory: no path leaves the archive, no link, no
    special file, and neither the uncompressed stream nor the content exceeds the caps."""
    if data[:2] != b"\x1f\x8b":
        raise ArchiveError("archive_corrupt", "pas une archive gzip / not a gzip file")
    # Tar headers and padding add at most 3 blocks per member plus the end marker.
    cap = max_bytes + _TAR_BLOCK * (3 * max_members + 4)
    try:
        raw = _gunzip_capped(data, cap)
    except zlib.error as exc:
        raise ArchiveError("archive_corrupt", f"archive gzip corrompue / corrupt gzip: {exc}") from None

    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for count, info in enumerate(tar, start=1):
                if count > max_members:
                    raise ArchiveError("archive_too_many_members", f"trop de fichiers / more than {max_members} members")
                member = _check_member(info)
                if member in files:
                    raise ArchiveError("archive_duplicate_member", f"fichier en double / duplicate member: {member!r}")
                total += info.size
                if total > max_bytes:
                    raise ArchiveError("archive_too_large", f"contenu trop volumineux / content exceeds {max_bytes} bytes")
                f = tar.extractfile(info)
                files[member] = f.read() if f is not None else b""
    except tarfile.TarError as exc:
        raise ArchiveError("archive_corrupt", f"archive tar corrompue / corrupt tar: {exc}") from None
    if not files:
        raise ArchiveError("archive_corrupt", "archive vide / empty archive")
    return files


@dataclass
class ParsedMessageArchive:
    """A ministry → TdT archive (a préfecture message: 2-1, 3-1, 4-1, 5-1, an AR...)."""

    enveloppe: dict[str, Any]  # EnveloppeMISILLCL fields (emetteur, destinataire_siren, files)
    enveloppe_name: str
    message_name: str
    message_xml: bytes
    message_root: str  # "DemandePieceComplementaire"
    message_type: str | None  # "3-1"
    fields: dict[str, Any]  # the message's fields (schemas.actes.messages)
    files: dict[str, bytes]  # every member, by name
    documents: list[str]  # the files the message lists (its Document / PiecesJointes), in order


def read_message_archive(data: bytes, *, max_bytes: int = 150 * 1024 * 1024,
                         max_members: int = 1000) -> ParsedMessageArchive:
    """Open a ministry → TdT archive safely: the EnveloppeMISILLCL and its one message, both
    XSD-valid, and every file the message lists present."""
    files = _members(data, max_bytes, max_members)
    roots: dict[str, etree._Element] = {}
    for name, content in files.items():
        if name.lower().endswith(".xml"):
            try:
                roots[name] = parse_xml(content)
            except XmlError as exc:
                raise ArchiveError("archive_invalid_xml", f"{name}: {exc.message}") from None
    envs = [n for n, r in roots.items() if local(r) == "EnveloppeMISILLCL"]
    if len(envs) != 1:
        raise ArchiveError("archive_missing_file",
                           "enveloppe EnveloppeMISILLCL introuvable ou multiple / missing or ambiguous")
    env_name = envs[0]
    env_root = _parse_member_xml(env_name, files[env_name])
    enveloppe = message_from_root(env_root).fields
    if len(enveloppe["files"]) != 1 or enveloppe["files"][0] not in files:
        raise ArchiveError("archive_missing_file", f"message absent de l'archive / message missing: {enveloppe['files']}")
    msg_name = enveloppe["files"][0]
    msg_root = _parse_member_xml(msg_name, files[msg_name])
    try:
        message = message_from_root(msg_root)
    except SchemaError as exc:
        raise ArchiveError("archive_invalid_xml", f"{msg_name}: {exc.message}") from None
    listed = [n.text or "" for n in msg_root.iter("{*}NomFichier")]
    for n in listed:
        if n not in files:
            raise ArchiveError("archive_missing_file", f"fichier absent de l'archive / missing file: {n!r}")
    return ParsedMessageArchive(
        enveloppe=enveloppe, enveloppe_name=env_name, message_name=msg_name, message_xml=files[msg_name],
        message_root=message.root, message_type=message.type_code, fields=message.fields, files=files,
        documents=listed,
    )


def read_acte_archive(
    data: bytes,
    *,
    name: str | None = None,
    trigramme: str | None = None,
    quadrigramme: str | None = None,
    max_bytes: int = 150 * 1024 * 1024,
    max_members: int = 1000,
) -> ParsedArchive:
    """Open an ACTES tar.gz safely and check it (names, XSD, listed files)."""
    if len(data) > max_bytes:
        raise ArchiveError("archive_too_large", f"archive trop volumineuse / archive exceeds {max_bytes} bytes")
    if name is not None:
        name = PurePosixPath(name.replace("\\", "/")).name
        ok = (
            check_archive_name(name, trigramme, quadrigramme)
            if trigramme and quadrigramme
            else bool(re.fullmatch(r"[A-Za-z0-9]+-[A-Za-z0-9]+--[0-9]{9}--[0-9]{8}-[0-9]{1,4}\.tar\.gz", name))
            and (not trigramme or name.startswith(f"{trigramme}-"))
            and (not quadrigramme or name.split("-")[1] == quadrigramme)
        )
        if not ok:
            raise ArchiveError("archive_bad_name", f"nom d'archive incorrect / bad archive name: {name!r}")
    files = _members(data, max_bytes, max_members)
    env_candidates = [n for n in files if ENVELOPPE_NAME_RE.match(n)]
    if name is not None:
        expected = name.split("-", 1)[1][: -len(".tar.gz")] + ".xml"
        env_candidates = [n for n in env_candidates if n == expected]
    if quadrigramme:
        env_candidates = [n for n in env_candidates if n.startswith(f"{quadrigramme}--")]
    if len(env_candidates) != 1:
        raise ArchiveError(
            "archive_missing_file",
            "enveloppe introuvable ou multiple / enveloppe missing or ambiguous: " + ", ".join(env_candidates or ["none"]),
        )
    env_name = env_candidates[0]
    env_root = _parse_member_xml(env_name, files[env_name])
    if local(env_root) != "EnveloppeCLMISILL":
        raise ArchiveError("archive_invalid_xml", f"{env_name}: EnveloppeCLMISILL attendue / expected")
    enveloppe = message_from_root(env_root).fields
    enveloppe["name"] = env_name

    if len(enveloppe["files"]) != 1:
        # S²low puts exactly one transaction per archive.
        raise ArchiveError("archive_invalid_xml", "une seule transaction par enveloppe / exactly one Formulaire expected")
    msg_name = enveloppe["files"][0]
    if msg_name not in files:
        raise ArchiveError("archive_missing_file", f"fichier absent de l'archive / missing file: {msg_name!r}")
    msg_root = _parse_member_xml(msg_name, files[msg_name])
    try:
        message = message_from_root(msg_root)
    except SchemaError as exc:
        raise ArchiveError("archive_invalid_xml", f"{msg_name}: {exc.message}") from None

    listed = [n.text or "" for n in msg_root.iter("{*}NomFichier")]
    for n in listed:
        if n not in files:
            raise ArchiveError("archive_missing_file", f"fichier absent de l'archive / missing file: {n!r}")
    if message.root == "Acte" and message.fields["annexes_nombre"] != len(message.fields["annexes"]):
        raise ArchiveError(
            "archive_inconsistent",
            f"Annexes/@Nombre={message.fields['annexes_nombre']} mais {len(message.fields['annexes'])} annexes",
        )

    return ParsedArchive(
        enveloppe=enveloppe,
        acte=message.fields,
        acte_xml=files[msg_name],
        enveloppe_xml=files[env_name],
        files=files,
        enveloppe_name=env_name,
        acte_xml_name=msg_name,
        message_root=message.root,
        message_type=message.type_code,
        name=name,
        members=list(files),
    )
