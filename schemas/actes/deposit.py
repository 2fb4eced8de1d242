"""Deposit rules of the ACTES flow (docs/protocols.md §1.7, §1.12): metadata, classification, file types."""

from __future__ import annotations

from typing import Any

from schemas.actes.classification import Classification
from schemas.actes.metadata import parse_metadata
from schemas.actes.publication import publication_settings, wants_publication
from schemas.deposit import DepositContext, DepositFile, sniff_media_type
from schemas.errors import SchemaError

ANNEXE_TYPES = {"application/pdf", "application/xml", "image/png", "image/jpeg"}


def check_deposit(metadata: dict[str, Any], document: DepositFile, annexes: list[DepositFile],
                  context: DepositContext) -> dict[str, Any]:
    """Validate an acte deposit; returns the normalised metadata (typologies filled in, and
    `publication` decided: what the depositor asked, else the collectivité's default)."""
    meta = parse_metadata(metadata)
    publish = wants_publication(meta.publication, meta.nature, publication_settings(context.options))
    if publish != meta.publication:
        meta = parse_metadata({**metadata, "publication": publish})  # a published acte needs its author
    if context.classification_xml:
        meta.check_against(Classification.parse(context.classification_xml), len(annexes))
    kind = sniff_media_type(document.head)
    xml_allowed = meta.nature == 5 and meta.classification.startswith("7.1")
    if kind != "application/pdf" and not (xml_allowed and kind == "application/xml"):
        raise SchemaError(
            "document_not_pdf",
            f"L'acte doit être un PDF / the acte must be a PDF: {document.name!r} is not "
            "(XML is only allowed for budget documents, nature 5 classification 7.1)",
        )
    if publish and kind != "application/pdf":
        raise SchemaError("publication_needs_pdf",
                          "Seul un acte PDF peut être publié / only a PDF acte can be published")
    for annexe in annexes:
        if sniff_media_type(annexe.head) not in ANNEXE_TYPES:
            raise SchemaError(
                "annexe_bad_type",
                f"Type d'annexe non autorisé / annexe {annexe.name!r} must be PDF, XML, PNG or JPEG",
            )
    normalised = meta.model_dump(mode="json", exclude_none=True)
    normalised["typologie"] = meta.typologies(len(annexes))
    return normalised
