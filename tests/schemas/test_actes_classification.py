from __future__ import annotations

from datetime import date

import pytest
from schemas_testlib import sample

from schemas.actes.classification import Classification, default_classification
from schemas.errors import SchemaError


@pytest.fixture(scope="module")
def cls() -> Classification:
    return Classification.parse(default_classification())


def test_default_is_the_sample() -> None:
    assert default_classification() == sample("actes_RetourClassification")


def test_parse(cls: Classification) -> None:
    assert cls.date == date(2019, 3, 1)
    assert sorted(cls.natures) == [1, 2, 3, 4, 5, 6]
    assert cls.natures[1].abbr == "DE"
    assert cls.natures[4].label == "Contrats, conventions et avenants"
    assert {m.code for m in cls.matieres} >= {1, 2, 3, 4, 5, 6, 7}
    assert cls.label("7") == "Finances locales"
    assert cls.label("7.1") == "Decisions budgetaires"


def test_has_code(cls: Classification) -> None:
    assert cls.has_code("7.1")
    assert cls.has_code("7.1.2")
    assert cls.has_code("7.10.1")
    assert not cls.has_code("7.1.99")
    assert not cls.has_code("99.1")
    assert not cls.has_code("7.99.1")


def test_typologies(cls: Classification) -> None:
    assert "99_DE" in cls.typologies_for(1)
    assert "99_DC" in cls.typologies_for(4)
    assert "32_DP" in cls.typologies_for(4)
    assert "99_BU" in cls.typologies_for(5)
    assert cls.typologies_for(9) == set()


def test_frozen(cls: Classification) -> None:
    with pytest.raises(Exception):
        cls.date = date(2020, 1, 1)  # type: ignore[misc]


def test_not_a_classification() -> None:
    with pytest.raises(SchemaError) as exc:
        Classification.parse(sample("actes_ARActe"))
    assert exc.value.code == "classification_invalid"
