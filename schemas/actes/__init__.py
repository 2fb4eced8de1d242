"""ACTES (@ctes) formats: naming, metadata, classification, archive, messages."""

from .archive import (
    BuiltArchive,
    Emetteur,
    ParsedArchive,
    build_acte_archive,
    read_acte_archive,
)
from .classification import Classification, default_classification
from .messages import (
    ActesMessage,
    build_anomalie_acte,
    build_anomalie_enveloppe,
    build_aracte,
    parse_actes_message,
    response_file_name,
)
from .metadata import ActesMetadata, parse_metadata
from .naming import (
    NATURES,
    archive_name,
    business_file_name,
    check_archive_name,
    enveloppe_name,
    id_acte,
)

__all__ = [
    "NATURES",
    "ActesMessage",
    "ActesMetadata",
    "BuiltArchive",
    "Classification",
    "Emetteur",
    "ParsedArchive",
    "archive_name",
    "build_acte_archive",
    "build_anomalie_acte",
    "build_anomalie_enveloppe",
    "build_aracte",
    "business_file_name",
    "check_archive_name",
    "default_classification",
    "enveloppe_name",
    "id_acte",
    "parse_actes_message",
    "parse_metadata",
    "read_acte_archive",
    "response_file_name",
]
