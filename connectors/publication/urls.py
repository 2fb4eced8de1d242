"""Where the public registry serves what: the one place both the stage connector (which records
`publication_url`) and the registry's routes (connectors/inbound/publication) take paths from.

Paths are stable: an acte is addressed by its SIREN and IDActe, which never change.
"""

from __future__ import annotations

from urllib.parse import quote

PREFIX = "/publication"
SIREN_PATTERN = r"^[0-9]{9}$"
ID_ACTE_PATTERN = r"^[09][0-9][AB0-9]-[0-9]{9}-[0-9]{8}-[A-Za-z0-9_]{1,15}-[A-Z]{2}$"


def registry_path(siren: str) -> str:
    return f"{PREFIX}/{siren}"


def actes_json_path(siren: str) -> str:
    return f"{PREFIX}/{siren}/actes.json"


def deliberations_csv_path(siren: str) -> str:
    return f"{PREFIX}/{siren}/deliberations.csv"


def pdf_path(siren: str, id_acte: str) -> str:
    return f"{PREFIX}/{siren}/actes/{quote(id_acte)}.pdf"


def annexe_path(siren: str, id_acte: str, number: int) -> str:
    """`number` counts the annexes from 1, in their deposit order."""
    return f"{PREFIX}/{siren}/actes/{quote(id_acte)}/annexes/{number}"


def absolute(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path
