from __future__ import annotations

from datetime import date, timedelta

import pytest

from schemas.actes.classification import Classification, default_classification
from schemas.actes.metadata import ActesMetadata, parse_metadata
from schemas.errors import MetadataError

GOOD = {
    "nature": 1,
    "numero_interne": "CL20171227_06",
    "date_decision": "2017-12-07",
    "objet": "  Tarifs 2018  ",
    "classification": "7.1.2",
}


@pytest.fixture(scope="module")
def cls() -> Classification:
    return Classification.parse(default_classification())


def code_of(**changes) -> str:
    data = {**GOOD, **changes}
    with pytest.raises(MetadataError) as exc:
        parse_metadata(data)
    return exc.value.code


def test_good() -> None:
    md = parse_metadata(GOOD)
    assert md.objet == "Tarifs 2018"
    assert md.date_decision == date(2017, 12, 7)
    assert md.signature is False
    assert parse_metadata('{"nature": 3, "numero_interne": "684", "date_decision": "2018-05-22", '
                          '"objet": "x", "classification": "4.2"}').nature == 3


@pytest.mark.parametrize("numero", ["", "_ABC", "ABC_", "abc", "A-B", "A" * 16, "A B"])
def test_bad_numero(numero: str) -> None:
    assert code_of(numero_interne=numero) == "invalid_numero_interne"


@pytest.mark.parametrize("numero", ["A", "1", "A_B", "A" * 15, "CL2017_06"])
def test_good_numero(numero: str) -> None:
    assert parse_metadata({**GOOD, "numero_interne": numero}).numero_interne == numero


def test_numero_message() -> None:
    with pytest.raises(MetadataError) as exc:
        parse_metadata({**GOOD, "numero_interne": "bad-1"})
    assert "numéro interne" in exc.value.message


@pytest.mark.parametrize("nature", [0, 7, "DE"])
def test_bad_nature(nature) -> None:
    assert code_of(nature=nature) == "invalid_nature"


def test_future_date() -> None:
    assert code_of(date_decision=(date.today() + timedelta(days=2)).isoformat()) == "date_in_future"
    assert code_of(date_decision="2017-13-45") == "invalid_date_decision"


def test_objet() -> None:
    assert code_of(objet="x" * 501) == "invalid_objet"
    assert code_of(objet="   ") == "invalid_objet"
    assert parse_metadata({**GOOD, "objet": "x" * 500}).objet == "x" * 500


@pytest.mark.parametrize("c", ["7", "7.", "a.b", "1.2.3.4.5.6", ""])
def test_bad_classification(c: str) -> None:
    assert code_of(classification=c) == "invalid_classification"


def test_bad_typologie_and_extra() -> None:
    assert code_of(typologie=["99de"]) == "invalid_typologie"
    assert code_of(typologie=["99_DEX"]) == "invalid_typologie"
    assert code_of(foo=1) == "invalid_metadata"


def test_typologies_defaults() -> None:
    md = parse_metadata({**GOOD, "nature": 4})
    assert md.typologies(2) == ["99_DC", "99_DC", "99_DC"]
    md = parse_metadata({**GOOD, "typologie": ["99_DE"]})
    assert md.typologies(1) == ["99_DE", "99_DE"]


def test_check_against(cls: Classification) -> None:
    parse_metadata(GOOD).check_against(cls, 0)
    with pytest.raises(MetadataError) as exc:
        parse_metadata({**GOOD, "classification": "7.1.99"}).check_against(cls, 0)
    assert exc.value.code == "unknown_classification"
    with pytest.raises(MetadataError) as exc:
        parse_metadata({**GOOD, "classification": "99.1"}).check_against(cls, 0)
    assert exc.value.code == "unknown_classification"
    md = parse_metadata({**GOOD, "typologie": ["99_DE", "21_EP"]})
    md.check_against(cls, 1)
    with pytest.raises(MetadataError) as exc:
        md.check_against(cls, 2)
    assert exc.value.code == "typologie_count"
    with pytest.raises(MetadataError) as exc:
        parse_metadata({**GOOD, "typologie": ["99_DC"]}).check_against(cls, 0)  # contract type on a délibération
    assert exc.value.code == "unknown_typologie"


def test_model_direct() -> None:
    assert isinstance(ActesMetadata(**{**GOOD, "date_decision": date(2017, 12, 7)}), ActesMetadata)
