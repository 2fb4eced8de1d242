from __future__ import annotations

from datetime import date

import pytest

from schemas.actes.naming import (
    NATURES,
    archive_name,
    business_file_name,
    check_archive_name,
    enveloppe_name,
    id_acte,
    parse_id_acte,
    response_enveloppe_name,
    response_file_name,
)

D = date(2017, 12, 7)


def test_natures_table() -> None:
    assert [(n.abbr, n.typologie) for n in NATURES.values()] == [
        ("DE", "99_DE"), ("AR", "99_AR"), ("AI", "99_AI"), ("CC", "99_DC"), ("BF", "99_BU"), ("AU", "99_AU"),
    ]


def test_id_acte() -> None:
    assert id_acte("034", "491011698", D, "CL20171227_06", 1) == "034-491011698-20171207-CL20171227_06-DE"
    assert parse_id_acte("006-210600235-20180522-684-AI")["numero"] == "684"
    with pytest.raises(ValueError):
        id_acte("34", "491011698", D, "X", 1)
    with pytest.raises(ValueError):
        id_acte("034", "491011698", D, "X", 9)


def test_business_file_names() -> None:
    args = ("034", "491011698", D, "CL20171227_06", 1)
    assert business_file_name(*args) == "034-491011698-20171207-CL20171227_06-DE-1-1_0.xml"
    assert business_file_name(*args, index=1, ext="pdf", typologie="99_DE") == (
        "99_DE-034-491011698-20171207-CL20171227_06-DE-1-1_1.pdf"
    )
    assert business_file_name(*args, index=2, ext=".PDF", typologie="32_DP") == (
        "32_DP-034-491011698-20171207-CL20171227_06-DE-1-1_2.pdf"
    )
    assert business_file_name("034", "491011698", None, None, None, "7-1") == "034-491011698----7-1_0.xml"
    assert business_file_name("02A", "491011698", D, "1", 4, "6-1") == "02A-491011698-20171207-1-CC-6-1_0.xml"


def test_enveloppe_and_archive_names() -> None:
    env = enveloppe_name("EACT", "210600235", date(2018, 5, 22), 3)
    assert env == "EACT--210600235--20180522-3.xml"
    arc = archive_name("SLO", env)
    assert arc == "SLO-EACT--210600235--20180522-3.tar.gz"
    assert check_archive_name(arc, "SLO", "EACT")
    assert not check_archive_name(arc, "abc", "EACT")
    assert not check_archive_name(arc, "SLO", "TACT")
    assert not check_archive_name("SLO-EACT--210600235--20180522-3.tgz", "SLO", "EACT")
    assert check_archive_name("SIC-EACT--210600730--20180115-1.tar.gz", "SIC", "EACT")
    with pytest.raises(ValueError):
        enveloppe_name("EACT", "210600235", date(2018, 5, 22), 10000)


def test_response_names() -> None:
    assert response_file_name("1-2", 5279, id_acte="006-210600235-20180522-684-AI") == (
        "006-210600235-20180522-684-AI-1-2_5279.xml"
    )
    assert response_file_name("6-2", 10, id_acte="044-214400152-20181106-TEST_DGCL_4-DE") == (
        "044-214400152-20181106-TEST_DGCL_4-DE-6-2_10.xml"
    )
    assert response_file_name("1-3", 1, id_acte="044-214400152-20181106-X-DE") == "044-214400152----1-3_1.xml"
    assert response_file_name("7-2", 1, departement="999", siren="000001234") == "999-000001234----7-2_1.xml"
    assert response_enveloppe_name("EACT", "044", "1", "214400152", date(2018, 10, 12), 9) == (
        "EACT--SPREF0441-214400152-20181012-9.xml"
    )
