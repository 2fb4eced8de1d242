from __future__ import annotations

import json
from datetime import date

import pytest
from helios_testlib import acquit_sample, pes_sample

from schemas.helios.acquit import build_acquit, parse_acquit
from schemas.helios.pes import HeliosError, read_pes_aller
from schemas.helios.retour import parse_pes_retour
from schemas.inspect import inspect_message

RETOUR = """<?xml version="1.0" encoding="ISO-8859-1"?>
<n:PES_Retour xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour">
  <Enveloppe><Parametres><Version V="2"/><TypFic V="PESRETOUR_DEP"/><NomFic V="RET1"/></Parametres></Enveloppe>
  <EnTetePES><DteStr V="2019-08-07"/><IdPost V="034000"/><LibellePoste V="TRESORERIE"/>
    <IdColl V="20004910400025"/><CodColl V="123"/><CodBud V="12"/></EnTetePES>
  <PES_DepenseRetour>
    <EnTeteDepense><TypRestit V="1"/><IdVer V="1"/><NatInf V="1"/></EnTeteDepense>
    <Bordereau><BlocBordereau><Exer V="2019"/><IdBord V="42"/><TypBord V="01"/></BlocBordereau>
      <Piece><InfoPiece><IdPce V="7"/><TypPce V="01"/><NatPce V="01"/><Obj V="Achat été"/>
        <DtePcePec V="2019-08-01"/><EtatPce V="3"/></InfoPiece></Piece>
      <Piece><InfoPiece><IdPce V="8"/><EtatPce V="5"/></InfoPiece></Piece>
    </Bordereau>
  </PES_DepenseRetour>
</n:PES_Retour>""".encode("latin-1")


def test_inspect_pes_aller() -> None:
    r = inspect_message(pes_sample())
    json.dumps(r)
    assert r["format"] == "PES_Aller"
    assert (r["nom_fic"], r["id_coll"], r["id_post"], r["cod_col"], r["cod_bud"]) == (
        "STELA11", "75580064600099", "010001", "244", "00")
    assert r["bordereaux"] == 1 and r["pj"] == 2 and r["pj_count"] == 2
    assert r["bordereaux_detail"] == [{
        "domain": "depense", "exercice": "2019", "id_bord": "11", "id": "N10025", "type_bord": "01",
        "pieces": 1, "montant_ht": "4874.40", "signed": True,
    }]
    assert r["signatures"] == 1 and r["signed"] is True
    assert r["check"] == {"ok": True}


def test_inspect_invalid_pes_still_summarised() -> None:
    r = inspect_message(pes_sample().replace(b'<IdBord V="11"/>', b'<IdBord V="x11"/>'))
    assert r["format"] == "PES_Aller" and r["nom_fic"] == "STELA11"
    assert r["check"]["ok"] is False and r["check"]["code"] == "pes_xsd_invalid"


def test_inspect_acquit() -> None:
    r = inspect_message(acquit_sample())
    assert r["format"] == "PES_ACQUIT" and r["verdict"] == "accepted"
    assert r["element_count"] == 5 and len(r["elements"]) == 5
    assert r["elements"][0]["domain_label"] == "dépense" and r["elements"][0]["num_bord"] == "1847"
    built = build_acquit(read_pes_aller(pes_sample()), rejected_bordereaux={"11"}, day=date(2019, 3, 29))
    r = inspect_message(built)
    json.dumps(r)
    assert r["verdict"] == "partial" and r["failed_bordereaux"] == ["11"]
    assert r["elements"][0]["errors"] == [{"code": "ERREUR_AUTRE", "label": "1971 - Compte fonction présent à tort"}]


def test_pes_retour() -> None:
    r = parse_pes_retour(RETOUR)
    assert r["typ_fic"] == "PESRETOUR_DEP"
    assert (r["id_post"], r["id_coll"], r["cod_coll"], r["cod_bud"]) == ("034000", "20004910400025", "123", "12")
    assert [(p["id_pce"], p["etat_pce"]) for p in r["pieces"]] == [("7", "3"), ("8", "5")]
    assert r["pieces"][0]["obj"] == "Achat été" and r["pieces"][0]["id_bord"] == "42"
    assert inspect_message(RETOUR) == r


OLD_ACQUIT_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour"


def older_revision(acquit: bytes) -> bytes:
    """The real acquit sample as older files carry it: the root in `…/Rev0/retour`, not `…/retour/v2`."""
    old = acquit.replace(b'xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2"',
                         f'xmlns:n="{OLD_ACQUIT_NS}"'.encode())
    assert old != acquit
    return old


def test_inspect_acquit_in_the_older_revision_namespace_gives_the_same_fields() -> None:
    current, old = inspect_message(acquit_sample()), inspect_message(older_revision(acquit_sample()))
    assert old["format"] == "PES_ACQUIT" and old["namespace"] == OLD_ACQUIT_NS
    assert {k: v for k, v in old.items() if k != "namespace"} == {k: v for k, v in current.items() if k != "namespace"}
    assert old["verdict"] == "accepted" and old["element_count"] == 5 and old["nom_fic"]


def test_parse_acquit_reads_the_older_revision_and_still_validates_it() -> None:
    assert parse_acquit(older_revision(acquit_sample())).to_dict() == parse_acquit(acquit_sample()).to_dict()
    with pytest.raises(HeliosError) as broken:
        parse_acquit(older_revision(acquit_sample()).replace(b'<DomaineAck V="5"/>', b'<Inconnu V="5"/>', 1))
    assert broken.value.code == "pes_acquit_xsd_invalid"
    with pytest.raises(HeliosError) as aller:
        parse_acquit(acquit_sample().replace(b"/Rev0/retour/v2", b"/Rev0/aller"))
    assert aller.value.code == "pes_not_acquit"
