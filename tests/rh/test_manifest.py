"""The payslip manifest: every refusal has its own code, names never appear in messages."""

from __future__ import annotations

import pytest

from schemas.errors import MetadataError
from schemas.rh.manifest import ManifestError, read_manifest
from schemas.rh.metadata import check_periode

HEADER = "matricule;nom;prenom;fichier;coffre\n"


def manifest(*lines: str, header: str = HEADER) -> bytes:
    return (header + "".join(line + "\n" for line in lines)).encode()


def test_semicolon_manifest_with_accents_and_bom() -> None:
    data = "\ufeffMatricule;Nom;Prénom;Fichier;Coffre;Période\nA001;Dupré;Zoé;a001.pdf;CFN-1;2026-10\n".encode()
    [line] = read_manifest(data, "2026-10", ["a001.pdf"])
    assert (line.matricule, line.nom, line.prenom, line.fichier, line.coffre) == ("A001", "Dupré", "Zoé", "a001.pdf", "CFN-1")


def test_comma_manifest_in_windows_1252() -> None:
    data = "matricule,nom,prenom,fichier,coffre\nB7,Lefèvre,Hélène,b7.pdf,CFN-7\n".encode("cp1252")
    assert read_manifest(data, "2026-10", ["b7.pdf"])[0].nom == "Lefèvre"


@pytest.mark.parametrize(("data", "pdfs", "code"), [
    (manifest("A1;Martin;Paul;a1.pdf;C1", "A1;Durand;Anne;a2.pdf;C2"), ["a1.pdf", "a2.pdf"], "duplicate_matricule"),
    (manifest("A1;Martin;Paul;a1.pdf;C1", "A2;Durand;Anne;a2.pdf;C2"), ["a1.pdf"], "missing_payslip"),
    (manifest("A1;Martin;Paul;a1.pdf;C1"), ["a1.pdf", "intrus.pdf"], "unlisted_payslip"),
    (manifest("A1;Martin;Paul;a1.pdf"), ["a1.pdf"], "manifest_invalid_line"),
    (manifest("A1;Martin;;a1.pdf;C1"), ["a1.pdf"], "manifest_invalid_line"),
    (manifest("A 1;Martin;Paul;a1.pdf;C1"), ["a1.pdf"], "manifest_invalid_line"),
    (manifest("A1;Martin;a1.pdf;C1", header="matricule;nom;fichier;coffre\n"), ["a1.pdf"], "manifest_missing_column"),
    (manifest(), [], "manifest_empty"),
    (b"", [], "manifest_empty"),
    (manifest("A1;Martin;Paul;a1.pdf;C1;2026-09", header="matricule;nom;prenom;fichier;coffre;periode\n"),
     ["a1.pdf"], "periode_mismatch"),
    (manifest("A1;Martin;Paul;a1.pdf;C1", "A2;Durand;Anne;a1.pdf;C2"), ["a1.pdf"], "duplicate_payslip_file"),
])
def test_refusals(data: bytes, pdfs: list[str], code: str) -> None:
    with pytest.raises(ManifestError) as exc:
        read_manifest(data, "2026-10", pdfs)
    assert exc.value.code == code
    for name in ("Martin", "Paul", "Durand", "Anne"):
        assert name not in exc.value.message


@pytest.mark.parametrize("periode", ["2026-13", "2026-00", "26-10", "2026/10", "", "2999-01", "1999-12"])
def test_bad_periods(periode: str) -> None:
    with pytest.raises(MetadataError) as exc:
        check_periode(periode)
    assert exc.value.code == "invalid_periode"


def test_good_period() -> None:
    assert check_periode("2024-02") == "2024-02"
