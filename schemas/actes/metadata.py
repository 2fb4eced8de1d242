"""Deposit metadata of an acte (what a collectivité gives with the PDF), S²low rules
(docs/protocols.md §1.7)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas.errors import MetadataError

from .classification import Classification
from .naming import NATURES

__all__ = [
    "NUMERO_INTERNE_RE",
    "ActesMetadata",
    "metadata_error_from_validation",
    "parse_metadata",
    "today_paris",
]

NUMERO_INTERNE_RE = r"^([A-Z0-9][A-Z0-9_]{0,13})?[A-Z0-9]$"
CLASSIFICATION_RE = r"^[0-9]{1,3}(\.[0-9]{1,3}){1,4}$"  # ASCII digits (the regex engine's \d is Unicode)
TYPOLOGIE_RE = re.compile(r"^[A-Z0-9_]{5}$")


def today_paris() -> date:
    try:
        from zoneinfo import ZoneInfo

        return datetime.now(ZoneInfo("Europe/Paris")).date()
    except Exception:  # no tz database available
        return date.today()


Objet = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Nom = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Qualite = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Votes = Annotated[int, Field(ge=0, le=100_000)]
# R2131-1 CGCT: the published acte shows its author's first name, name and qualité.
AUTEUR_FIELDS = ("auteur_prenom", "auteur_nom", "auteur_qualite")


class ActesMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nature: int = Field(ge=1, le=6)
    numero_interne: str = Field(pattern=NUMERO_INTERNE_RE)
    date_decision: date
    objet: Objet
    classification: str = Field(pattern=CLASSIFICATION_RE)
    typologie: list[str] | None = None
    signature: bool = False
    # Publication (R2131-1 CGCT): None = the collectivité's default for the nature (deposit check).
    publication: bool | None = None
    auteur_prenom: Nom | None = None
    auteur_nom: Nom | None = None
    auteur_qualite: Qualite | None = None
    # Vote figures of a délibération, for the SCDL open data (all optional).
    vote_effectif: Votes | None = None  # members in office
    vote_reel: Votes | None = None  # members who took part in the vote
    vote_pour: Votes | None = None
    vote_contre: Votes | None = None
    vote_abstention: Votes | None = None

    @field_validator("date_decision")
    @classmethod
    def _not_in_future(cls, v: date) -> date:
        if v > today_paris():
            raise PydanticCustomError(
                "date_in_future",
                "La date de décision est dans le futur / decision date is in the future: {value}",
                {"value": v.isoformat()},
            )
        return v

    @field_validator("typologie")
    @classmethod
    def _typologie_codes(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        for t in v:
            if not TYPOLOGIE_RE.match(t):
                raise PydanticCustomError(
                    "invalid_typologie", "typologie invalide / invalid typology code: {value}", {"value": t}
                )
        return v

    @model_validator(mode="after")
    def _publication_and_votes(self) -> ActesMetadata:
        missing = [f for f in AUTEUR_FIELDS if not getattr(self, f)] if self.publication else []
        if missing:
            raise PydanticCustomError(
                "publication_auteur_required",
                "La publication exige le prénom, le nom et la qualité de l'auteur / publishing needs "
                "auteur_prenom, auteur_nom and auteur_qualite; missing: {missing}",
                {"missing": ", ".join(missing)},
            )
        reel, effectif = self.vote_reel, self.vote_effectif
        if reel is not None and effectif is not None and reel > effectif:
            raise PydanticCustomError("invalid_vote", "Plus de votants que de membres en exercice / "
                                      "vote_reel {reel} > vote_effectif {effectif}", {"reel": reel, "effectif": effectif})
        cast = sum(v or 0 for v in (self.vote_pour, self.vote_contre, self.vote_abstention))
        if reel is not None and cast > reel:
            raise PydanticCustomError("invalid_vote", "Plus de voix que de votants / vote_pour + vote_contre + "
                                      "vote_abstention = {cast} > vote_reel {reel}", {"cast": cast, "reel": reel})
        return self

    @property
    def classification_levels(self) -> list[int]:
        return [int(p) for p in self.classification.split(".")]

    @property
    def default_typologie(self) -> str:
        return NATURES[self.nature].typologie

    def typologies(self, annex_count: int) -> list[str]:
        """One typology per file (acte first, then annexes), filling missing ones with the
        nature default as S²low does."""
        wanted = 1 + annex_count
        given = list(self.typologie or [])
        if len(given) > wanted:
            raise MetadataError(
                "typologie_count",
                f"Trop de typologies / too many typology codes: {len(given)} for {wanted} files",
            )
        return given + [self.default_typologie] * (wanted - len(given))

    def check_against(self, classification: Classification, annex_count: int) -> None:
        if not classification.has_code(self.classification):
            raise MetadataError(
                "unknown_classification",
                "La classification n'existe pas / unknown classification code: "
                f"{self.classification} (classification du {classification.date.isoformat()})",
            )
        if self.typologie is not None:
            if len(self.typologie) != 1 + annex_count:
                raise MetadataError(
                    "typologie_count",
                    "Le nombre de typologies ne correspond pas au nombre de fichiers / "
                    f"typology count {len(self.typologie)} != 1 + {annex_count} annexes",
                )
            allowed = classification.typologies_for(self.nature)
            if allowed:
                for t in self.typologie:
                    if t not in allowed:
                        raise MetadataError(
                            "unknown_typologie",
                            "La typologie n'est pas autorisée pour cette nature / typology "
                            f"{t} not allowed for nature {self.nature}",
                        )


_FIELD_CODES: dict[str, tuple[str, str]] = {
    "numero_interne": ("invalid_numero_interne", "Le numéro interne n'est pas correct / invalid numéro interne"),
    "nature": ("invalid_nature", "La nature de l'acte n'est pas correcte / invalid nature"),
    "date_decision": ("invalid_date_decision", "La date de décision n'est pas correcte / invalid decision date"),
    "objet": ("invalid_objet", "L'objet n'est pas correct (1 à 500 caractères) / invalid objet (1..500 chars)"),
    "classification": ("invalid_classification", "La classification n'est pas correcte / invalid classification"),
    "typologie": ("invalid_typologie", "La typologie n'est pas correcte / invalid typologie"),
    "publication": ("invalid_publication", "publication doit valoir true ou false / publication must be a boolean"),
    **{f: ("invalid_auteur", "Auteur invalide (1 à 100 caractères, qualité 1 à 200) / invalid author field")
       for f in AUTEUR_FIELDS},
    **{f: ("invalid_vote", "Décompte de vote invalide (entier positif) / invalid vote figure")
       for f in ("vote_effectif", "vote_reel", "vote_pour", "vote_contre", "vote_abstention")},
}


CUSTOM_CODES = {"date_in_future", "publication_auteur_required", "invalid_vote"}


def metadata_error_from_validation(exc: ValidationError) -> MetadataError:
    """First error of a pydantic ValidationError as a MetadataError with a stable code."""
    errs = exc.errors()
    if not errs:
        return MetadataError("invalid_metadata", "Métadonnées invalides / invalid metadata")
    err = errs[0]
    loc = err.get("loc") or ()
    fld = str(loc[0]) if loc else ""
    value = err.get("input")
    shown = repr(value) if not isinstance(value, (dict, list)) or fld == "typologie" else ""
    if err.get("type") in CUSTOM_CODES:
        return MetadataError(str(err["type"]), err["msg"])
    if err.get("type") == "extra_forbidden":
        return MetadataError("invalid_metadata", f"Champ inconnu / unknown field: {fld}")
    if fld in _FIELD_CODES:
        code, text = _FIELD_CODES[fld]
        return MetadataError(code, f"{text}: {shown} ({err.get('msg')})".replace(": ()", ""))
    return MetadataError("invalid_metadata", f"Métadonnées invalides / invalid metadata: {fld} {err.get('msg')}")


def parse_metadata(data: Mapping[str, Any] | str | bytes) -> ActesMetadata:
    """Validate raw metadata (mapping or JSON); raise MetadataError on the first problem."""
    try:
        if isinstance(data, (str, bytes)):
            return ActesMetadata.model_validate_json(data)
        return ActesMetadata.model_validate(dict(data))
    except ValidationError as exc:
        raise metadata_error_from_validation(exc) from None
