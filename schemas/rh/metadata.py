"""Deposit metadata of the RH flows (pydantic at the boundary)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from schemas.actes.metadata import today_paris
from schemas.errors import MetadataError

MATRICULE_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,29}$"
PERIODE_RE = re.compile(r"^(\d{4})-(\d{2})$")
# Fields holding an agent's identity or contact: hidden from keys without the flow's read role.
PERSONAL_FIELDS = ("nom", "prenom", "agent_email", "agent_mobile", "coffre")

Matricule = Annotated[str, StringConstraints(strip_whitespace=True, pattern=MATRICULE_RE)]


def check_periode(value: str) -> str:
    """`YYYY-MM`, a real month, not after next month (payslips may be issued a little ahead)."""
    match = PERIODE_RE.match(value or "")
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise MetadataError("invalid_periode", f"Période invalide (AAAA-MM) / invalid period {value!r}")
    today = today_paris()
    latest = (today.year + (today.month == 12), today.month % 12 + 1)
    if (int(match.group(1)), int(match.group(2))) > latest:
        raise MetadataError("invalid_periode", f"Période dans le futur / period {value} is in the future")
    return value


class BatchMetadata(BaseModel):
    """What a payslip batch deposit carries besides its files."""

    model_config = ConfigDict(extra="forbid")

    periode: str

    @field_validator("periode")
    @classmethod
    def _periode(cls, v: str) -> str:
        return check_periode(v)


def parse_batch_metadata(raw: dict[str, Any]) -> BatchMetadata:
    try:
        return BatchMetadata.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        if err.get("type") == "missing":
            raise MetadataError("invalid_periode", "La période est obligatoire / periode is required") from None
        raise MetadataError("invalid_metadata", f"Métadonnées invalides / invalid metadata: {where} {err['msg']}") from None


class AgentContact(BaseModel):
    """The agent of a contract, as the external signer of the parapheur needs them."""

    model_config = ConfigDict(extra="ignore")

    matricule: Matricule
    agent_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=200)
    agent_mobile: str = Field(pattern=r"^\+?[0-9 .]{10,20}$")
    nom: str = Field(min_length=1, max_length=100)
    prenom: str = Field(min_length=1, max_length=100)


class Agent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    matricule: Matricule


def redact(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: ("***" if k in PERSONAL_FIELDS and v not in (None, "") else v) for k, v in metadata.items()}
