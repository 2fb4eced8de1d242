"""ACTES natures and file-name rules (docs/protocols.md §1.3, §1.6, §1.10)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

__all__ = [
    "ENVELOPPE_NAME_RE",
    "NATURES",
    "NATURES_BY_ABBR",
    "Nature",
    "anomalie_enveloppe_file_name",
    "archive_name",
    "business_file_name",
    "check_archive_name",
    "enveloppe_name",
    "id_acte",
    "nature_info",
    "parse_id_acte",
    "response_enveloppe_name",
    "response_file_name",
]


@dataclass(frozen=True)
class Nature:
    code: int
    abbr: str
    label: str
    typologie: str  # default typology code when the caller gives none


NATURES: dict[int, Nature] = {
    n.code: n
    for n in (
        Nature(1, "DE", "Délibérations", "99_DE"),
        Nature(2, "AR", "Arrêtés réglementaires", "99_AR"),
        Nature(3, "AI", "Arrêtés individuels", "99_AI"),
        Nature(4, "CC", "Contrats, conventions et avenants", "99_DC"),
        Nature(5, "BF", "Documents budgétaires et financiers", "99_BU"),
        Nature(6, "AU", "Autres", "99_AU"),
    )
}
NATURES_BY_ABBR: dict[str, Nature] = {n.abbr: n for n in NATURES.values()}

DEPARTEMENT_RE = re.compile(r"^[09][0-9][AB0-9]$")
SIREN_RE = re.compile(r"^[0-9]{9}$")
ID_ACTE_RE = re.compile(
    r"^(?P<dep>[09][0-9][AB0-9])-(?P<siren>[0-9]{9})-(?P<date>[0-9]{8})-"
    r"(?P<numero>[a-zA-Z0-9_]{1,15})-(?P<nature>[A-Z]{2})$"
)
ENVELOPPE_NAME_RE = re.compile(r"^(?P<appli>[A-Za-z0-9]+)--(?P<siren>[0-9]{9})--(?P<day>[0-9]{8})-(?P<serial>[0-9]{1,4})\.xml$")
TYPE_CODE_RE = re.compile(r"^[1-7]-[1-5]$")


def nature_info(nature: int | str) -> Nature:
    """Nature by code (1..6, int or str) or by abbreviation ("DE")."""
    if isinstance(nature, str) and nature in NATURES_BY_ABBR:
        return NATURES_BY_ABBR[nature]
    try:
        return NATURES[int(nature)]
    except (KeyError, ValueError):
        raise ValueError(f"unknown ACTES nature {nature!r}") from None


def _check_dep_siren(departement: str, siren: str) -> None:
    if not DEPARTEMENT_RE.match(departement):
        raise ValueError(f"invalid departement {departement!r} (3 chars, e.g. 034, 02A)")
    if not SIREN_RE.match(siren):
        raise ValueError(f"invalid SIREN {siren!r} (9 digits)")


def id_acte(departement: str, siren: str, date_decision: date, numero: str, nature: int) -> str:
    """`<DEP>-<SIREN>-<YYYYMMDD>-<NUMERO>-<NAT>`, e.g. `034-491011698-20171207-CL20171227_06-DE`."""
    _check_dep_siren(departement, siren)
    value = f"{departement}-{siren}-{date_decision:%Y%m%d}-{numero}-{nature_info(nature).abbr}"
    if not ID_ACTE_RE.match(value):
        raise ValueError(f"invalid IDActe {value!r}")
    return value


def parse_id_acte(value: str) -> dict[str, str]:
    """Split an IDActe into dep, siren, date (YYYYMMDD), numero, nature (abbr)."""
    m = ID_ACTE_RE.match(value)
    if not m:
        raise ValueError(f"invalid IDActe {value!r}")
    return m.groupdict()


def _ext(ext: str) -> str:
    ext = ext.lstrip(".").lower()
    if not re.fullmatch(r"[a-z0-9]{1,10}", ext):
        raise ValueError(f"invalid file extension {ext!r}")
    return ext


def business_file_name(
    departement: str,
    siren: str,
    date_decision: date | None,
    numero: str | None,
    nature: int | None,
    type_code: str = "1-1",
    index: int | None = 0,
    ext: str = "xml",
    typologie: str | None = None,
) -> str:
    """`[<typologie>-]<DEP>-<SIREN>-<YYYYMMDD>-<NUMERO>-<NAT>-<T>-<S>[_<index>].<ext>`.

    index 0 is the message XML, 1 the acte document, 2.. the annexes. Date, numero and
    nature may be None (classification request, anomalies): their slots stay empty.
    """
    _check_dep_siren(departement, siren)
    if not TYPE_CODE_RE.match(type_code):
        raise ValueError(f"invalid message type code {type_code!r}")
    parts = [
        departement,
        siren,
        f"{date_decision:%Y%m%d}" if date_decision else "",
        numero or "",
        nature_info(nature).abbr if nature is not None else "",
        type_code,
    ]
    name = "-".join(parts)
    if index is not None:
        if index < 0:
            raise ValueError("index must be >= 0")
        name += f"_{index}"
    name += "." + _ext(ext)
    if typologie:
        if not re.fullmatch(r"[A-Z0-9_]{5}", typologie):
            raise ValueError(f"invalid typologie {typologie!r}")
        name = f"{typologie}-{name}"
    return name


def enveloppe_name(quadrigramme: str, siren: str, day: date, serial: int) -> str:
    """`EACT--210600235--20180522-3.xml`; serial restarts at 1 each day, max 9999."""
    if not re.fullmatch(r"[A-Za-z0-9]+", quadrigramme):
        raise ValueError(f"invalid quadrigramme {quadrigramme!r}")
    if not SIREN_RE.match(siren):
        raise ValueError(f"invalid SIREN {siren!r}")
    if not 1 <= serial <= 9999:
        raise ValueError(f"enveloppe serial out of range 1..9999: {serial}")
    return f"{quadrigramme}--{siren}--{day:%Y%m%d}-{serial}.xml"


def archive_name(trigramme: str, enveloppe_name: str) -> str:
    """`SLO-EACT--210600235--20180522-3.tar.gz`."""
    if not re.fullmatch(r"[A-Za-z0-9]+", trigramme):
        raise ValueError(f"invalid trigramme {trigramme!r}")
    if not ENVELOPPE_NAME_RE.match(enveloppe_name):
        raise ValueError(f"invalid enveloppe name {enveloppe_name!r}")
    return f"{trigramme}-{enveloppe_name[: -len('.xml')]}.tar.gz"


def check_archive_name(name: str, trigramme: str, quadrigramme: str) -> bool:
    """Stricter than S²low's `verifNameOK` (which only checks parts 0 and 1): full pattern."""
    prefix = f"{trigramme}-"
    if not name.startswith(prefix) or not name.endswith(".tar.gz"):
        return False
    env = name[len(prefix) : -len(".tar.gz")] + ".xml"
    m = ENVELOPPE_NAME_RE.match(env)
    return bool(m) and m.group("appli") == quadrigramme


def response_enveloppe_name(
    quadrigramme: str, departement: str, arrondissement: str, siren: str, day: date, serial: int
) -> str:
    """Ministry → TdT enveloppe: `EACT--SPREF0441-214400152-20181012-9.xml`."""
    _check_dep_siren(departement, siren)
    if not re.fullmatch(r"[0-9]", str(arrondissement)):
        raise ValueError(f"invalid arrondissement {arrondissement!r}")
    return f"{quadrigramme}--SPREF{departement}{arrondissement}-{siren}-{day:%Y%m%d}-{serial}.xml"


def response_file_name(
    type_code: str,
    serial: int,
    *,
    id_acte: str | None = None,
    departement: str | None = None,
    siren: str | None = None,
) -> str:
    """Ministry business file name (§1.10).

    With an IDActe: `006-210600235-20180522-684-AI-1-2_5279.xml`. AnomalieActe (1-3) and
    classification replies leave date, number and nature empty: `044-214400152----1-3_1.xml`.
    """
    if not TYPE_CODE_RE.match(type_code):
        raise ValueError(f"invalid message type code {type_code!r}")
    if id_acte is not None:
        p = parse_id_acte(id_acte)
        departement, siren = p["dep"], p["siren"]
        if type_code != "1-3" and not type_code.startswith("7-"):
            return f"{id_acte}-{type_code}_{serial}.xml"
    if departement is None or siren is None:
        raise ValueError("response_file_name needs id_acte or departement + siren")
    _check_dep_siren(departement, siren)
    return f"{departement}-{siren}----{type_code}_{serial}.xml"


def anomalie_enveloppe_file_name(enveloppe_name: str) -> str:
    """AnomalieEnveloppe arrives as `ANO_` + the rejected enveloppe's name."""
    return f"ANO_{enveloppe_name}"
