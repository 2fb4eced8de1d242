"""Deposit metadata of a HELIOS (PES) document: only whether the bus must have it signed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.errors import MetadataError

__all__ = ["HeliosMetadata", "parse_helios_metadata"]


class HeliosMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # None: use the collectivité's option `signature_default` (False if unset).
    signature: bool | None = None


def parse_helios_metadata(data: Mapping[str, Any] | str | bytes | None) -> HeliosMetadata:
    """Validate raw metadata (mapping or JSON); `invalid_metadata` on the first problem."""
    try:
        if data is None:
            return HeliosMetadata()
        if isinstance(data, (str, bytes)):
            return HeliosMetadata.model_validate_json(data)
        return HeliosMetadata.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(x) for x in err.get("loc", ())) or "?"
        if err.get("type") == "extra_forbidden":
            raise MetadataError("invalid_metadata", f"Champ inconnu / unknown field: {loc}") from None
        raise MetadataError(
            "invalid_metadata", f"Métadonnées invalides / invalid metadata: {loc} {err.get('msg', '')}"
        ) from None
