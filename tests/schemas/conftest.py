"""Fixtures for the schemas tests."""

from __future__ import annotations

from datetime import date

import pytest

from schemas.actes.archive import Emetteur
from schemas.actes.metadata import ActesMetadata


@pytest.fixture
def emetteur() -> Emetteur:
    return Emetteur(siren="491011698", departement="034", arrondissement="1", nature="31")


@pytest.fixture
def metadata() -> ActesMetadata:
    return ActesMetadata(
        nature=1,
        numero_interne="CL20171227_06",
        date_decision=date(2017, 12, 7),
        objet="Délibération relative aux tarifs — œuvres",
        classification="7.1.2",
    )
