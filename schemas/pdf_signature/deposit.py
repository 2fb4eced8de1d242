"""Deposit metadata and checks of the generic PDF signature flow (`pdf-signature`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from schemas.deposit import DepositContext, DepositFile, sniff_media_type
from schemas.errors import MetadataError, SchemaError

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class PdfSignatureMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    libelle: Text
    iparapheur_type: Text | None = None  # the parapheur circuit; default: the collectivité's connector
    iparapheur_sous_type: Text | None = None
    date_limite: date | None = None
    archive: bool = False  # send the signed document to the SAE


def check_deposit(metadata: dict[str, Any], document: DepositFile, annexes: list[DepositFile],
                  context: DepositContext) -> dict[str, Any]:
    try:
        meta = PdfSignatureMetadata.model_validate(metadata)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise MetadataError("invalid_metadata", f"Métadonnées invalides / invalid metadata: {where} {err['msg']}") from None
    if sniff_media_type(document.head) != "application/pdf":
        raise SchemaError("document_not_pdf", f"Le document doit être un PDF / {document.name!r} is not a PDF")
    return meta.model_dump(mode="json", exclude_none=True)
