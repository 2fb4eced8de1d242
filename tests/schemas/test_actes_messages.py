from __future__ import annotations

from datetime import date

import pytest
from schemas_testlib import PDF, sample

from schemas.actes import messages as m
from schemas.actes.archive import build_acte_archive
from schemas.actes.messages import (
    MESSAGE_TYPES,
    ActesMessage,
    build_anomalie_acte,
    build_anomalie_enveloppe,
    build_aracte,
    parse_actes_message,
    response_file_name,
)
from schemas.errors import SchemaError, XsdError
from schemas.xml import validate

ID = "034-491011698-20171207-CL20171227_06-DE"
NS = 'xmlns:actes="http://www.interieur.gouv.fr/ACTES#v1.1-20040216" xmlns:insee="http://xml.insee.fr/schema"'


@pytest.fixture
def built(emetteur, metadata):
    return build_acte_archive(
        emetteur=emetteur,
        metadata=metadata,
        classification_date=date(2019, 3, 1),
        document=("acte.pdf", PDF),
        annexes=[("a.pdf", PDF)],
        trigramme="SLO",
        quadrigramme="EACT",
        serial=1,
        day=date(2017, 12, 27),
        return_emails=["tdt@example.org"],
    )


def test_real_aracte_sample() -> None:
    msg = parse_actes_message(sample("actes_ARActe"), check_xsd=True)
    assert isinstance(msg, ActesMessage)
    assert (msg.type_code, msg.root) == ("1-2", "ARActe")
    f = msg.fields
    assert f["id_acte"] == "006-210600235-20180522-684-AI"
    assert f["date_reception"] == date(2018, 5, 28)
    assert f["numero_interne"] == "684"
    assert f["nature"] == 3
    assert f["date_decision"] == date(2018, 5, 22)
    assert f["objet"] == "Contrat à durée déterminée - Jean Dupont"
    assert f["classification"] == "4.2"
    assert f["classification_date_en_cours"] == date(2017, 4, 19)
    assert f["document"] == "99_DE-006-210600235-20180522-684-AI-1-1_1.pdf"


def test_real_retour_classification_sample() -> None:
    msg = parse_actes_message(sample("actes_RetourClassification"))
    assert (msg.type_code, msg.root) == ("7-2", "RetourClassification")
    assert msg.fields["date_classification"] == date(2019, 3, 1)
    assert msg.fields["natures"] == [1, 2, 3, 4, 5, 6]
    assert msg.fields["matieres_count"] >= 9


def test_build_aracte(built) -> None:
    xml = build_aracte(built.acte_xml, id_acte=ID, date_reception=date(2017, 12, 28), classification_date=date(2019, 3, 1))
    validate("actes", xml)
    f = parse_actes_message(xml).fields
    assert f["id_acte"] == ID
    assert f["date_reception"] == date(2017, 12, 28)
    assert f["numero_interne"] == "CL20171227_06"
    assert f["nature"] == 1
    assert f["classification"] == "7.1.2"
    assert f["annexes"] == [built.members[3]]
    assert f["classification_date_en_cours"] == date(2019, 3, 1)
    assert response_file_name("1-2", 5279, id_acte=ID) == f"{ID}-1-2_5279.xml"


def test_build_aracte_bad_id(built) -> None:
    with pytest.raises((ValueError, XsdError)):
        build_aracte(built.acte_xml, id_acte="nope", date_reception=date(2017, 12, 28), classification_date=date(2019, 3, 1))


def test_build_aracte_needs_acte(built) -> None:
    with pytest.raises(SchemaError):
        build_aracte(built.enveloppe_xml, id_acte=ID, date_reception=date(2017, 12, 28), classification_date=date(2019, 3, 1))


def test_build_anomalie_acte(built) -> None:
    detail = "ODT-VERIF-01 : Votre acte a été transmis avec une date de classification qui n'est pas à jour"
    xml = build_anomalie_acte(built.acte_xml, nature="2", detail=detail, day=date(2018, 1, 2), classification_date=date(2019, 3, 1))
    msg = parse_actes_message(xml, check_xsd=True)
    assert (msg.type_code, msg.root) == ("1-3", "AnomalieActe")
    assert msg.fields["nature"] == "002"
    assert msg.fields["detail"] == detail
    assert msg.fields["date"] == date(2018, 1, 2)
    assert msg.fields["numero_interne"] == "CL20171227_06"
    assert msg.fields["nature_acte"] == 1


def test_build_anomalie_enveloppe(built) -> None:
    xml = build_anomalie_enveloppe(built.enveloppe_xml, nature="003", detail="Enveloppe invalide", day=date(2018, 1, 2))
    msg = parse_actes_message(xml, check_xsd=True)
    assert (msg.type_code, msg.root) == (None, "AnomalieEnveloppe")
    assert msg.fields["nature"] == "003"
    assert msg.fields["siren"] == "491011698"
    assert msg.fields["files"] == [built.acte_xml_name]
    # The XSD enumerates 001-005 and 100 only, but the real ministry sends 999 too.
    with pytest.raises(XsdError):
        build_anomalie_enveloppe(built.enveloppe_xml, nature="999", detail="x", day=date(2018, 1, 2), strict_nature=True)
    xml = build_anomalie_enveloppe(built.enveloppe_xml, nature="999", detail="ODT-VERIF-17", day=date(2018, 1, 2))
    assert parse_actes_message(xml).fields["nature"] == "999"


def test_real_anomalie_enveloppe_999_is_parsed() -> None:
    xml = f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<actes:AnomalieEnveloppe {NS}><actes:Date>2018-09-25</actes:Date><actes:Nature>999</actes:Nature>
<actes:Detail>ODT-VERIF-17 : La transaction que vous avez envoyé n'est pas reconnu</actes:Detail>
<actes:EnveloppeRecue><actes:Emetteur><actes:IDCL insee:SIREN="214400152" actes:Departement="044" actes:Arrondissement="1" actes:Nature="31"/></actes:Emetteur>
<actes:AdressesRetour><actes:Email>a@b.fr</actes:Email></actes:AdressesRetour>
<actes:FormulairesEnvoyes><actes:Formulaire><actes:NomFichier>x_0.xml</actes:NomFichier></actes:Formulaire></actes:FormulairesEnvoyes>
</actes:EnveloppeRecue></actes:AnomalieEnveloppe>""".encode("latin-1")
    f = parse_actes_message(xml).fields
    assert f["nature"] == "999" and f["siren"] == "214400152" and f["date"] == date(2018, 9, 25)


def _all_messages(built) -> dict[str, bytes]:
    d = date(2018, 2, 1)
    out = {
        "Acte": built.acte_xml,
        "ARActe": build_aracte(built.acte_xml, id_acte=ID, date_reception=d, classification_date=d),
        "AnomalieActe": build_anomalie_acte(built.acte_xml, nature="1", detail="x", day=d, classification_date=d),
        "CourrierSimple": m.build_courrier_pref("CourrierSimple", id_acte=ID, date_courrier=d, document="c.pdf"),
        "DemandePieceComplementaire": m.build_courrier_pref(
            "DemandePieceComplementaire", id_acte=ID, date_courrier=d, document="c.pdf", text="Le plan"
        ),
        "ARDemandePieceComplementaire": m.build_courrier_pref("ARDemandePieceComplementaire", id_acte=ID, date_courrier=d, document=""),
        "LettreObservations": m.build_courrier_pref("LettreObservations", id_acte=ID, date_courrier=d, document="l.pdf", text="Illégal"),
        "ARLettreObservations": m.build_courrier_pref("ARLettreObservations", id_acte=ID, date_courrier=d, document=""),
        "ARPieceComplementaire": m.build_ar_reponse_cl("ARPieceComplementaire", id_acte=ID, date_courrier=d, date_reception=d),
        "ARReponseRejetLettreObservations": m.build_ar_reponse_cl(
            "ARReponseRejetLettreObservations", id_acte=ID, date_courrier=d, date_reception=d
        ),
        "DefereTA": m.build_defere_ta(id_acte=ID, date_depot=d, nature_illegalite="Incompétence", pieces=["r.pdf"]),
        "Annulation": m.build_annulation(id_acte=ID),
        "ARAnnulation": m.build_ar_annulation(id_acte=ID, date_reception=d),
        "DemandeClassification": m.build_demande_classification(date_classification=d),
        "RetourClassification": sample("actes_RetourClassification"),
        "ReponseClassificationSansChangement": m.build_reponse_classification_sans_changement(date_classification=d),
        "EnveloppeCLMISILL": built.enveloppe_xml,
        "EnveloppeMISILLCL": m.build_enveloppe_misillcl(
            departement="034", arrondissement="1", siren="491011698", files=["r_1.xml"], emetteur="IDSousPref"
        ),
    }
    for kind in ("ReponseCourrierSimple", "RefusPieceComplementaire", "RejetLettreObservations", "ReponseLettreObservations"):
        out[kind] = m.build_reponse_courrier(kind, id_acte=ID, date_courrier=d, documents=["r.pdf"])
    out["PieceComplementaire"] = m.build_reponse_courrier("PieceComplementaire", id_acte=ID, date_courrier=d, documents=["p1.pdf", "p2.pdf"])
    return out


def test_every_message_type(built) -> None:
    msgs = _all_messages(built)
    assert set(MESSAGE_TYPES.values()) <= set(msgs)
    for root, xml in msgs.items():
        msg = parse_actes_message(xml, check_xsd=True)
        assert msg.root == root
        if root in MESSAGE_TYPES.values():
            assert MESSAGE_TYPES[msg.type_code] == root
    d = date(2018, 2, 1)
    assert parse_actes_message(msgs["CourrierSimple"]).fields == {
        "id_acte": ID, "date_courrier_pref": d, "document": "c.pdf", "document_signed": False
    }
    assert parse_actes_message(msgs["DemandePieceComplementaire"]).fields["description_pieces"] == "Le plan"
    assert parse_actes_message(msgs["LettreObservations"]).fields["motif"] == "Illégal"
    assert parse_actes_message(msgs["ARPieceComplementaire"]).fields == {
        "date_reception": d, "id_acte": ID, "date_courrier_pref": d
    }
    assert parse_actes_message(msgs["DefereTA"]).fields["pieces_jointes"] == ["r.pdf"]
    assert parse_actes_message(msgs["ARAnnulation"]).fields == {"id_acte": ID, "date_reception": d}
    assert parse_actes_message(msgs["PieceComplementaire"]).fields["documents"] == ["p1.pdf", "p2.pdf"]
    env = parse_actes_message(msgs["EnveloppeMISILLCL"]).fields
    assert env == {"emetteur": "IDSousPref", "departement": "034", "arrondissement": "1",
                   "destinataire_siren": "491011698", "files": ["r_1.xml"]}
    cl = parse_actes_message(msgs["EnveloppeCLMISILL"]).fields
    assert (cl["siren"], cl["departement"], cl["arrondissement"], cl["nature"]) == ("491011698", "034", "1", "31")


def test_unknown_root() -> None:
    with pytest.raises(SchemaError) as exc:
        parse_actes_message(f"<actes:Bidule {NS}/>".encode())
    assert exc.value.code == "actes_unknown_message"
    with pytest.raises(SchemaError) as exc:
        parse_actes_message(b"<ARActe/>")  # right name, wrong namespace
    assert exc.value.code == "actes_unknown_message"
