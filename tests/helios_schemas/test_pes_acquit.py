from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest
from helios_testlib import SIRET, acquit_sample, pes_sample

from schemas.errors import XsdError
from schemas.helios.acquit import (
    DOMAIN_LABELS,
    AcquitSummary,
    acquit_file_name,
    build_acquit,
    parse_acquit,
)
from schemas.helios.generate import generate_pes_aller
from schemas.helios.pes import HeliosError, PesSummary, read_pes_aller
from schemas.xml import parse_xml, validate

DAY = date(2024, 3, 16)


@pytest.fixture
def summary(tmp_path: Path) -> PesSummary:
    p = generate_pes_aller(tmp_path / "g.xml", siret=SIRET, nom_fic="PESALR2_TEST_001", bordereaux=3,
                           pieces_per_bordereau=2, pj_count=2, pj_size=200)
    return read_pes_aller(p)


def test_parse_real_sample() -> None:
    a = parse_acquit(acquit_sample())
    assert isinstance(a, AcquitSummary)
    assert a.nom_fic == "HELIOS_SIMU_ALR2_1514384631_264491346.xml"
    assert a.id_coll == "20004910400025"
    assert a.verdict == "accepted"
    assert len(a.elements) == 5
    first = a.elements[0]
    assert (first.domain, first.domain_label, first.etat, first.accepted) == ("5", "dépense", "1", True)
    assert (first.num_bord, first.exercice, first.id_unique) == ("1847", "2015", None)
    assert [e.domain_label for e in a.elements[1:]] == ["pièce justificative"] * 4
    assert a.elements[1].id_unique == "200049104000252015DEPENSE0000087458"
    assert a.failed_bordereaux == []
    json.dumps(a.to_dict())


def test_domain_labels() -> None:
    assert [DOMAIN_LABELS[str(i)] for i in range(8)] == [
        "technique", "technique", "technique", "validité du certificat", "pièce justificative",
        "dépense", "recette", "budget",
    ]


def _check_built(data: bytes, summary: PesSummary) -> AcquitSummary:
    assert data.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    validate("pes_acquit", parse_xml(data))
    a = parse_acquit(data)
    assert a.nom_fic == summary.nom_fic and a.id_coll == summary.id_coll
    assert len(a.elements) == len(summary.bordereaux) + summary.pj_count
    return a


def test_build_all_accepted(summary: PesSummary) -> None:
    a = _check_built(build_acquit(summary, day=DAY), summary)
    assert a.verdict == "accepted" and a.failed_bordereaux == [] and a.failed_pj == []
    assert [(e.domain, e.num_bord, e.exercice) for e in a.elements[:3]] == [
        ("5", "1", "2024"), ("5", "2", "2024"), ("5", "3", "2024")]
    assert [(e.domain, e.id_unique) for e in a.elements[3:]] == [("4", i) for i in summary.pj_ids]
    assert all(e.errors == [] for e in a.elements)


def test_build_all_rejected(summary: PesSummary) -> None:
    data = build_acquit(summary, reject_all=True, day=DAY)
    a = _check_built(data, summary)
    assert a.verdict == "rejected"
    assert a.failed_bordereaux == ["1", "2", "3"]
    assert a.failed_pj == summary.pj_ids
    assert all(e.etat == "0" and e.errors == [("ERREUR_AUTRE", "1971 - Compte fonction présent à tort")]
               for e in a.elements)
    assert "présent à tort".encode("latin-1") in data  # really ISO-8859-1 bytes


def test_build_mixed(summary: PesSummary) -> None:
    data = build_acquit(
        summary, rejected_bordereaux={"2"}, rejected_pj={summary.pj_ids[1]}, day=DAY,
        error=("ERREUR_DOUBLON_PJ", "1984 - L'identifiant unique de la PJ a déjà été intégré dans HELIOS"),
    )
    a = _check_built(data, summary)
    assert a.verdict == "partial"
    assert a.failed_bordereaux == ["2"]
    assert a.failed_pj == [summary.pj_ids[1]]
    refused = [e for e in a.elements if not e.accepted]
    assert refused[0].errors[0][0] == "ERREUR_DOUBLON_PJ"


def test_build_recette_and_real_sample(tmp_path: Path) -> None:
    p = generate_pes_aller(tmp_path / "r.xml", siret=SIRET, nom_fic="REC", bordereaux=1,
                           pieces_per_bordereau=1, pj_count=0, pj_size=0, domain="recette")
    a = parse_acquit(build_acquit(read_pes_aller(p), day=DAY))
    assert [e.domain for e in a.elements] == ["6"] and a.elements[0].domain_label == "recette"
    s = read_pes_aller(pes_sample())
    a = parse_acquit(build_acquit(s, rejected_bordereaux={"11"}, day=DAY))
    assert a.nom_fic == "STELA11" and a.verdict == "partial" and a.failed_bordereaux == ["11"]


def test_build_invalid_error_code(summary: PesSummary) -> None:
    with pytest.raises(XsdError):
        build_acquit(summary, reject_all=True, error=("NOT_A_CODE", "x"), day=DAY)


def test_detail_piece() -> None:
    data = acquit_sample().replace(
        b'<ExerciceBord V="2015"/>',
        b'<ExerciceBord V="2015"/><DetailPiece><NumPiece V="12"/><Erreur><NumAnoAck V="ERREUR_AUTRE"/>'
        b'<LibelleAnoAck V="x"/></Erreur><DetailLigne><NumLigne V="1"/><Erreur><NumAnoAck V="ERREUR_AUTRE"/>'
        b'<LibelleAnoAck V="y"/></Erreur></DetailLigne></DetailPiece>',
    ).replace(b'<EtatAck V="1"/>\n            <NumBord', b'<EtatAck V="0"/>\n            <NumBord')
    a = parse_acquit(data)
    assert a.verdict == "partial" and a.failed_bordereaux == ["1847"]
    assert a.elements[0].pieces == [
        {"num_piece": "12", "errors": [("ERREUR_AUTRE", "x")],
         "lines": [{"num_ligne": "1", "errors": [("ERREUR_AUTRE", "y")]}]}
    ]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "pes_acquit_doctype_forbidden"),
        (b"<x><y></x>", "pes_acquit_invalid_xml"),
        (b'<n:PES_Aller xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller"/>', "pes_not_acquit"),
    ],
)
def test_parse_errors(data: bytes, code: str) -> None:
    with pytest.raises(HeliosError) as exc:
        parse_acquit(data)
    assert exc.value.code == code


def test_parse_xsd_invalid() -> None:
    with pytest.raises(HeliosError) as exc:
        parse_acquit(acquit_sample().replace(b'<EtatAck V="1"/>', b'<EtatAck V="2"/>', 1))
    assert exc.value.code == "pes_acquit_xsd_invalid"


def test_acquit_file_name() -> None:
    when = datetime(2019, 1, 30, 12, 34, 56)
    assert acquit_file_name("006111", when, False) == "006111_190130123456-ACK-A3020100_A0000MIX_KO.xml"
    assert acquit_file_name("006111", when, True) == "006111_190130123456-ACK-A3020100_A0000MIX_OK.xml"
