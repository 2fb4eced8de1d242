"""The manifest of a payslip batch: a CSV with a header line, `;` or `,` separated, one line per
agent with at least `matricule`, `nom`, `prenom`, `fichier`, `coffre` (an optional `periode`
column must match the batch's period).

`read_manifest` checks everything a batch needs before anything is stored: columns, each line,
duplicate matricules and files, and that the manifest and the uploaded PDFs name the same files.
Messages name lines and matricules, never an agent's name.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass

from schemas.errors import SchemaError
from schemas.rh.metadata import MATRICULE_RE

REQUIRED = ("matricule", "nom", "prenom", "fichier", "coffre")
MAX_LINES = 20_000
MAX_BYTES = 10 * 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # C0 and C1 controls but tab and line breaks


class ManifestError(SchemaError):
    pass


@dataclass(frozen=True)
class PayslipLine:
    line: int
    matricule: str
    nom: str
    prenom: str
    fichier: str
    coffre: str


def _column(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return plain.strip().lower().replace(" ", "_")


def _decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise ManifestError("manifest_too_large", f"Manifeste trop gros / manifest larger than {MAX_BYTES} bytes")
    for encoding in ("utf-8-sig", "cp1252"):  # HR software still exports Windows-1252
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ManifestError("manifest_unreadable", "Manifeste illisible / manifest is neither UTF-8 nor Windows-1252")


def read_manifest(data: bytes, periode: str, pdf_names: list[str]) -> list[PayslipLine]:
    text = _decode(data)
    if _CONTROL.search(text):
        raise ManifestError("manifest_unreadable", "Caractère de contrôle dans le manifeste / control character in the manifest")
    header = text.split("\n", 1)[0]
    delimiter = ";" if header.count(";") >= header.count(",") else ","
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:  # a NUL byte, a cell past csv's field size limit
        raise ManifestError("manifest_unreadable", f"Manifeste illisible / unreadable manifest: {exc}") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise ManifestError("manifest_empty", "Manifeste vide / the manifest is empty")
    columns = [_column(c) for c in rows[0]]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ManifestError("manifest_missing_column",
                            f"Colonnes manquantes / missing manifest columns: {', '.join(missing)}")
    if len(rows) == 1:
        raise ManifestError("manifest_empty", "Manifeste sans bulletin / the manifest lists no payslip")
    if len(rows) - 1 > MAX_LINES:
        raise ManifestError("manifest_too_large", f"Plus de {MAX_LINES} bulletins / more than {MAX_LINES} payslips")
    lines = [_line(n, dict(zip(columns, row)), len(row) == len(columns), periode)
             for n, row in enumerate(rows[1:], start=2)]
    _unique(lines)
    _same_files(lines, pdf_names)
    return lines


def _line(n: int, cells: dict[str, str], complete: bool, periode: str) -> PayslipLine:
    values = {k: (v or "").strip() for k, v in cells.items()}
    if not complete:
        raise ManifestError("manifest_invalid_line", f"Ligne {n}: nombre de colonnes incorrect / wrong column count")
    for column in REQUIRED:
        if not values.get(column):
            raise ManifestError("manifest_invalid_line", f"Ligne {n}: {column} vide / line {n}: empty {column}")
    if not re.match(MATRICULE_RE, values["matricule"]):
        raise ManifestError("manifest_invalid_line", f"Ligne {n}: matricule invalide / line {n}: invalid matricule")
    if values.get("periode") and values["periode"] != periode:
        raise ManifestError("periode_mismatch",
                            f"Ligne {n}: période {values['periode']} ≠ {periode} / line {n}: period differs from the batch's")
    return PayslipLine(n, values["matricule"], values["nom"], values["prenom"], values["fichier"], values["coffre"])


def _unique(lines: list[PayslipLine]) -> None:
    seen: dict[str, int] = {}
    files: dict[str, int] = {}
    for line in lines:
        if line.matricule in seen:
            raise ManifestError("duplicate_matricule", f"Matricule {line.matricule} en double (lignes {seen[line.matricule]} "
                                f"et {line.line}) / duplicate matricule")
        if line.fichier in files:
            raise ManifestError("duplicate_payslip_file", f"Fichier {line.fichier!r} en double (lignes {files[line.fichier]} "
                                f"et {line.line}) / a file is listed twice")
        seen[line.matricule] = files[line.fichier] = line.line


def _same_files(lines: list[PayslipLine], pdf_names: list[str]) -> None:
    listed = {line.fichier for line in lines}
    uploaded = set(pdf_names)
    absent = sorted(listed - uploaded)
    if absent:
        raise ManifestError("missing_payslip",
                            f"{len(absent)} bulletin(s) du manifeste sans PDF / no PDF for: {', '.join(absent[:10])}")
    extra = sorted(uploaded - listed)
    if extra:
        raise ManifestError("unlisted_payslip",
                            f"{len(extra)} PDF absent(s) du manifeste / PDF not in the manifest: {', '.join(extra[:10])}")
