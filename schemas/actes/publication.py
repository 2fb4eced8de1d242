"""Publication of actes (R2131-1 CGCT): who publishes, which actes, and the SCDL open data.

A collectivité turns publication on with its `actes` flow options (`connectors.flows.actes`):

    "publication": {"natures": [1, 2], "siret": "21440015200017"}

`natures`: the natures published by default (an acte of such a nature is published unless its
metadata says `"publication": false`); any other acte is published when its metadata says
`"publication": true`. `siret`: the collectivité's SIRET, for the SCDL files (COLL_SIRET).
The deposit check decides once, at deposit, and stores `publication: true|false` in the
metadata: the flow's `publication` stage then reads that flag, and a later change of options
never changes what an acte already deposited asked for.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.errors import MetadataError

__all__ = [
    "SCDL_DELIBERATIONS_HEADER",
    "DeliberationRow",
    "PublicationSettings",
    "deliberations_csv",
    "matiere",
    "publication_settings",
    "wants_publication",
]

OPTION = "publication"


class PublicationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    natures: list[int] = Field(default_factory=list)  # published by default
    siret: str | None = Field(default=None, pattern=r"^\d{14}$")


def publication_settings(options: Mapping[str, Any] | None) -> PublicationSettings | None:
    """The collectivité's publication settings (its `actes` flow options), None when it does
    not publish. `true` turns publication on with no nature published by default."""
    raw = (options or {}).get(OPTION)
    if raw is None or raw is False:
        return None
    try:
        return PublicationSettings() if raw is True else PublicationSettings.model_validate(raw)
    except ValidationError as exc:
        raise MetadataError("invalid_publication_settings",
                            f"Réglages de publication invalides / invalid publication settings: {exc.errors()[0]['msg']}"
                            ) from None


def wants_publication(asked: bool | None, nature: int, settings: PublicationSettings | None) -> bool:
    """Whether an acte is published: what its metadata asks, else the collectivité's default for
    its nature. Asking a collectivité that does not publish is refused."""
    wanted = asked if asked is not None else bool(settings and nature in settings.natures)
    if wanted and settings is None:
        raise MetadataError("publication_not_enabled",
                            "Cette collectivité ne publie pas ses actes par dematbus / this collectivité "
                            "has not turned publication on (connectors.flows.actes.publication)")
    return wanted


def matiere(code: str, labels: Mapping[str, str]) -> tuple[str, str]:
    """SCDL's DELIB_MATIERE_CODE (the level-2 code, "7.1") and DELIB_MATIERE_NOM (the level-1 and
    level-2 labels in lower case, without commas or parentheses, joined by "/")."""
    parts = code.split(".")
    level2 = ".".join(parts[:2])
    names = [labels.get(parts[0], ""), labels.get(level2, "")]

    def clean(label: str) -> str:
        return " ".join(label.replace(",", " ").replace("(", " ").replace(")", " ").split()).lower()

    return level2, "/".join(clean(n) for n in names if n)


SCDL_DELIBERATIONS_HEADER = (
    "COLL_NOM", "COLL_SIRET", "DELIB_ID", "DELIB_DATE", "DELIB_MATIERE_CODE", "DELIB_MATIERE_NOM",
    "DELIB_OBJET", "BUDGET_ANNEE", "BUDGET_NOM", "PREF_ID", "PREF_DATE", "VOTE_EFFECTIF", "VOTE_REEL",
    "VOTE_POUR", "VOTE_CONTRE", "VOTE_ABSTENTION", "DELIB_URL",
)


@dataclass(frozen=True)
class DeliberationRow:
    """One line of the SCDL « Délibérations » 2.1 file."""

    coll_nom: str
    coll_siret: str
    delib_id: str
    delib_date: date
    matiere_code: str
    matiere_nom: str
    objet: str
    pref_id: str  # "PREF044": the préfecture of the département
    pref_date: date | None  # the préfecture's acknowledgement (DateReception of the ARActe)
    votes: tuple[int | None, int | None, int | None, int | None, int | None]  # effectif, réel, pour, contre, abstention
    url: str


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(value: str) -> str:
    """A free-text value that a spreadsheet would run as a formula (CSV injection) gets a leading
    apostrophe, as OWASP recommends; every other value is written as the collectivité gave it."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def deliberations_csv(rows: Iterable[DeliberationRow]) -> str:
    """SCDL « Délibérations » 2.1.x: UTF-8, `;`-separated, header line, dates AAAA-MM-JJ. Values
    are written as the collectivité gave them (the open data is the acte's own text), except that
    free text cannot start a spreadsheet formula."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(SCDL_DELIBERATIONS_HEADER)
    for r in rows:
        writer.writerow([
            _text_cell(r.coll_nom), r.coll_siret, r.delib_id, r.delib_date.isoformat(), r.matiere_code,
            _text_cell(r.matiere_nom), _text_cell(r.objet), "", "", r.pref_id, r.pref_date.isoformat() if r.pref_date else "",
            *("" if v is None else v for v in r.votes), r.url,
        ])
    return out.getvalue()
