"""Asking for publication: the metadata, the collectivité's default natures, and the SCDL format."""

from __future__ import annotations

from datetime import date

import pytest

from schemas.actes.classification import Classification, default_classification
from schemas.actes.deposit import check_deposit
from schemas.actes.publication import (
    SCDL_DELIBERATIONS_HEADER,
    DeliberationRow,
    deliberations_csv,
    matiere,
)
from schemas.deposit import DepositContext, DepositFile
from schemas.errors import SchemaError

ACTE = {"nature": 1, "numero_interne": "DEL2026_001", "date_decision": "2026-01-15", "objet": "Budget",
        "classification": "7.1"}
AUTEUR = {"auteur_prenom": "Jeanne", "auteur_nom": "Dupont", "auteur_qualite": "Maire"}
PDF = DepositFile(name="acte.pdf", role="document", media_type="application/pdf", size=10, head=b"%PDF-1.7\n")
XML = DepositFile(name="budget.xml", role="document", media_type="application/xml", size=10, head=b"<?xml ?>")
PUBLISHES = {"publication": {"natures": [1, 2], "siret": "21440015200017"}}


def deposit(meta: dict, options: dict | None = None, document: DepositFile = PDF) -> dict:
    return check_deposit(meta, document, [], DepositContext(siren="214400152", options=options or {}))


def refusal(meta: dict, options: dict | None = None, document: DepositFile = PDF) -> str:
    with pytest.raises(SchemaError) as exc:
        deposit(meta, options, document)
    return exc.value.code


def test_publication_true_needs_first_name_name_and_qualite() -> None:
    assert refusal({**ACTE, "publication": True}, PUBLISHES) == "publication_auteur_required"
    assert refusal({**ACTE, "publication": True, **AUTEUR, "auteur_prenom": " "}, PUBLISHES) == "invalid_auteur"
    missing = {**AUTEUR}
    del missing["auteur_qualite"]
    assert refusal({**ACTE, "publication": True, **missing}, PUBLISHES) == "publication_auteur_required"
    meta = deposit({**ACTE, "publication": True, **AUTEUR}, PUBLISHES)
    assert meta["publication"] is True and meta["auteur_qualite"] == "Maire"


def test_default_natures_publish_unless_the_acte_says_no() -> None:
    # nature 1 is published by default: the author is then required, as if asked
    assert refusal(dict(ACTE), PUBLISHES) == "publication_auteur_required"
    assert deposit({**ACTE, **AUTEUR}, PUBLISHES)["publication"] is True
    assert deposit({**ACTE, "publication": False}, PUBLISHES)["publication"] is False
    # nature 3 (actes individuels) is not in the defaults
    assert deposit({**ACTE, "nature": 3, "classification": "4.1"}, PUBLISHES)["publication"] is False


def test_a_collectivite_that_does_not_publish_refuses_publication_and_publishes_nothing_by_default() -> None:
    assert refusal({**ACTE, "publication": True, **AUTEUR}, {}) == "publication_not_enabled"
    assert deposit(dict(ACTE), {})["publication"] is False
    assert deposit({**ACTE, "publication": True, **AUTEUR}, {"publication": True})["publication"] is True
    assert refusal(dict(ACTE), {"publication": {"natures": ["x"]}}) == "invalid_publication_settings"


def test_only_a_pdf_acte_is_published() -> None:
    budget = {**ACTE, "nature": 5, "publication": True, **AUTEUR}
    assert refusal(budget, PUBLISHES, XML) == "publication_needs_pdf"
    assert deposit({**budget, "publication": False}, PUBLISHES, XML)["publication"] is False


def test_vote_figures_are_checked() -> None:
    votes = {"vote_effectif": 29, "vote_reel": 27, "vote_pour": 20, "vote_contre": 5, "vote_abstention": 2}
    assert deposit({**ACTE, **votes}, {})["vote_pour"] == 20
    assert refusal({**ACTE, **votes, "vote_reel": 30}, {}) == "invalid_vote"
    assert refusal({**ACTE, **votes, "vote_pour": 21}, {}) == "invalid_vote"
    assert refusal({**ACTE, "vote_pour": -1}, {}) == "invalid_vote"


def test_scdl_matiere_and_header() -> None:
    labels = Classification.parse(default_classification()).labels
    assert matiere("7.1.2", labels) == ("7.1", "finances locales/decisions budgetaires")
    assert matiere("1.1", {"1": "Commande Publique", "1.1": "Marchés, accords-cadres (art. R2131-5)"}) == (
        "1.1", "commande publique/marchés accords-cadres art. r2131-5")
    code, name = matiere("7.1.2", labels)
    csv_text = deliberations_csv([DeliberationRow(
        coll_nom="Commune; de Test", coll_siret="21440015200017", delib_id="DEL_1", delib_date=date(2026, 1, 15),
        matiere_code=code, matiere_nom=name, objet='Objet "cité"', pref_id="PREF044", pref_date=date(2026, 1, 16),
        votes=(29, 27, 20, 5, 2), url="https://example.test/a.pdf")])
    header, row, end = csv_text.split("\r\n")
    assert header == ("COLL_NOM;COLL_SIRET;DELIB_ID;DELIB_DATE;DELIB_MATIERE_CODE;DELIB_MATIERE_NOM;DELIB_OBJET;"
                      "BUDGET_ANNEE;BUDGET_NOM;PREF_ID;PREF_DATE;VOTE_EFFECTIF;VOTE_REEL;VOTE_POUR;VOTE_CONTRE;"
                      "VOTE_ABSTENTION;DELIB_URL") == ";".join(SCDL_DELIBERATIONS_HEADER)
    assert row.startswith('"Commune; de Test";21440015200017;DEL_1;2026-01-15;7.1;')
    assert row.endswith(';"Objet ""cité""";;;PREF044;2026-01-16;29;27;20;5;2;https://example.test/a.pdf')
    assert end == ""


def test_scdl_csv_never_starts_a_spreadsheet_formula() -> None:
    import csv
    import io
    from datetime import date

    from schemas.actes.publication import DeliberationRow, deliberations_csv

    row = DeliberationRow(coll_nom="=HYPERLINK(\"http://x\")", coll_siret="21440015200011", delib_id="DEL_1",
                          delib_date=date(2026, 11, 20), matiere_code="7.1", matiere_nom="Budget",
                          objet="+cmd|' /C calc'!A0", pref_id="PREF044", pref_date=None,
                          votes=(None, None, None, None, None), url="https://example.org/a.pdf")
    line = list(csv.reader(io.StringIO(deliberations_csv([row])), delimiter=";"))[1]
    assert line[0] == "'=HYPERLINK(\"http://x\")" and line[6] == "'+cmd|' /C calc'!A0"
    assert line[5] == "Budget" and line[2] == "DEL_1"  # ordinary values are written as given
