"""ACTES business messages: parsing every type of docs/protocols.md §1.8 and building the préfecture's replies."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from lxml import etree

from schemas.errors import SchemaError
from schemas.xml import parse_xml, validate

from .naming import (
    anomalie_enveloppe_file_name,
    parse_id_acte,
    response_enveloppe_name,
    response_file_name,
)
from .ns import (
    ACTES_NS,
    attr,
    child,
    child_text,
    local,
    q,
    root_element,
    serialize,
    sub,
    to_date,
)

__all__ = [
    "MESSAGE_TYPES",
    "PREFECTURE_MESSAGE_LABELS",
    "TYPE_CODES",
    "ActesMessage",
    "anomalie_enveloppe_file_name",
    "build_annulation",
    "build_anomalie_acte",
    "build_anomalie_enveloppe",
    "build_ar_annulation",
    "build_ar_reponse_cl",
    "build_aracte",
    "build_courrier_pref",
    "build_defere_ta",
    "build_demande_classification",
    "build_enveloppe_misillcl",
    "build_reponse_classification_sans_changement",
    "build_reponse_courrier",
    "message_from_root",
    "parse_actes_message",
    "response_enveloppe_name",
    "response_file_name",
]

# §1.8: type code -> root element name.
MESSAGE_TYPES: dict[str, str] = {
    "1-1": "Acte",
    "1-2": "ARActe",
    "1-3": "AnomalieActe",
    "2-1": "CourrierSimple",
    "2-2": "ReponseCourrierSimple",
    "3-1": "DemandePieceComplementaire",
    "3-2": "ARDemandePieceComplementaire",
    "3-3": "RefusPieceComplementaire",
    "3-4": "PieceComplementaire",
    "3-5": "ARPieceComplementaire",
    "4-1": "LettreObservations",
    "4-2": "ARLettreObservations",
    "4-3": "RejetLettreObservations",
    "4-4": "ReponseLettreObservations",
    "4-5": "ARReponseRejetLettreObservations",
    "5-1": "DefereTA",
    "6-1": "Annulation",
    "6-2": "ARAnnulation",
    "7-1": "DemandeClassification",
    "7-2": "RetourClassification",
    "7-3": "ReponseClassificationSansChangement",
}
TYPE_CODES: dict[str, str] = {v: k for k, v in MESSAGE_TYPES.items()}
# The préfecture's messages about an acknowledged acte, as a collectivité reads them.
PREFECTURE_MESSAGE_LABELS: dict[str, str] = {
    "2-1": "Courrier simple",
    "3-1": "Demande de pièces complémentaires",
    "4-1": "Lettre d'observations",
    "5-1": "Déféré au tribunal administratif",
}
# Roots without a business type code.
ENVELOPPE_ROOTS = ("EnveloppeCLMISILL", "EnveloppeMISILLCL", "AnomalieEnveloppe")


@dataclass
class ActesMessage:
    type_code: str | None  # "1-2"; None for enveloppes and AnomalieEnveloppe
    root: str  # "ARActe"
    fields: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Parsing


def _fichier(el: etree._Element | None) -> str | None:
    return None if el is None else child_text(el, "NomFichier")


def _signed(el: etree._Element | None) -> bool:
    return el is not None and child(el, "Signature") is not None


def _donnees_acte(el: etree._Element) -> dict[str, Any]:
    """Fields of a DonneesActe (Acte, ActeRecu)."""
    codes = []
    for i in range(1, 6):
        c = child(el, f"CodeMatiere{i}")
        if c is None:
            break
        codes.append(attr(c, "CodeMatiere") or "")
    annexes_el = child(el, "Annexes")
    annexes = (
        [_fichier(a) or "" for a in annexes_el.iterchildren(q("Annexe"))] if annexes_el is not None else []
    )
    nature = attr(el, "CodeNatureActe")
    prec = child(el, "PrecedentIdentifiantActe")
    return {
        "date_decision": to_date(attr(el, "Date")),
        "numero_interne": attr(el, "NumeroInterne"),
        "nature": int(nature) if nature and nature.isdigit() else nature,
        "classification": ".".join(codes),
        "objet": child_text(el, "Objet"),
        "precedent_id_acte": attr(prec, "IDActe") if prec is not None else None,
        "classification_date": to_date(child_text(el, "ClassificationDateVersion")),
        "document": _fichier(child(el, "Document")),
        "document_signed": _signed(child(el, "Document")),
        "annexes": annexes,
        "annexes_nombre": int(attr(annexes_el, "Nombre") or 0) if annexes_el is not None else 0,
        "document_papier": child_text(el, "DocumentPapier"),
    }


def _formulaires(el: etree._Element | None) -> list[str]:
    if el is None:
        return []
    return [_fichier(f) or "" for f in el.iterchildren(q("Formulaire"))]


def _enveloppe_cl(el: etree._Element) -> dict[str, Any]:
    emetteur = child(el, "Emetteur")
    idcl = child(emetteur, "IDCL") if emetteur is not None else None
    referent = child(emetteur, "Referent") if emetteur is not None else None
    adresses = child(el, "AdressesRetour")
    return {
        "siren": attr(idcl, "SIREN"),
        "departement": attr(idcl, "Departement"),
        "arrondissement": attr(idcl, "Arrondissement"),
        "nature": attr(idcl, "Nature"),
        "referent_nom": child_text(referent, "Nom") if referent is not None else None,
        "referent_telephone": child_text(referent, "Telephone") if referent is not None else None,
        "referent_email": child_text(referent, "Email") if referent is not None else None,
        "return_emails": [e.text or "" for e in adresses.iterchildren(q("Email"))] if adresses is not None else [],
        "files": _formulaires(child(el, "FormulairesEnvoyes")),
    }


def _courrier(el: etree._Element) -> dict[str, Any]:
    return {"id_acte": attr(el, "IDActe"), "date_courrier_pref": to_date(attr(el, "DateCourrierPref"))}


def _fields(root_name: str, el: etree._Element) -> dict[str, Any]:
    if root_name == "Acte":
        return _donnees_acte(el)
    if root_name == "ARActe":
        recu = child(el, "ActeRecu")
        f = {"id_acte": attr(el, "IDActe"), "date_reception": to_date(attr(el, "DateReception"))}
        f.update(_donnees_acte(recu) if recu is not None else {})
        f["classification_date_en_cours"] = to_date(child_text(el, "ClassificationDateVersionEnCours"))
        return f
    if root_name == "AnomalieActe":
        recu = child(el, "ActeRecu")
        f = {"date": to_date(child_text(el, "Date")), "nature": child_text(el, "Nature"), "detail": child_text(el, "Detail")}
        acte = _donnees_acte(recu) if recu is not None else {}
        acte["nature_acte"] = acte.pop("nature", None)
        f.update(acte)
        f["classification_date_en_cours"] = to_date(child_text(el, "ClassificationDateVersionEnCours"))
        return f
    if root_name == "EnveloppeCLMISILL":
        return _enveloppe_cl(el)
    if root_name == "AnomalieEnveloppe":
        f = {"date": to_date(child_text(el, "Date")), "nature": child_text(el, "Nature"), "detail": child_text(el, "Detail")}
        recue = child(el, "EnveloppeRecue")
        env = _enveloppe_cl(recue) if recue is not None else {}
        env["nature_collectivite"] = env.pop("nature", None)
        f.update(env)
        return f
    if root_name == "EnveloppeMISILLCL":
        emetteur = child(el, "Emetteur")
        kind = dep = arr = None
        if emetteur is not None:
            for name in ("IDSGAR", "IDPref", "IDSousPref"):
                e = child(emetteur, name)
                if e is not None:
                    kind, dep, arr = name, attr(e, "Departement"), attr(e, "Arrondissement")
        dest = child(el, "Destinataire")
        return {
            "emetteur": kind,
            "departement": dep,
            "arrondissement": arr,
            "destinataire_siren": attr(dest, "SIREN"),
            "files": _formulaires(child(el, "FormulairesEnvoyes")),
        }
    if root_name in (
        "CourrierSimple",
        "ReponseCourrierSimple",
        "RefusPieceComplementaire",
        "RejetLettreObservations",
        "ReponseLettreObservations",
        "ARDemandePieceComplementaire",
        "ARLettreObservations",
        "DemandePieceComplementaire",
        "LettreObservations",
    ):
        f = _courrier(el)
        doc = child(el, "Document")
        f["document"] = _fichier(doc)
        f["document_signed"] = _signed(doc)
        if root_name == "DemandePieceComplementaire":
            f["description_pieces"] = child_text(el, "DescriptionPieces")
        if root_name == "LettreObservations":
            f["motif"] = child_text(el, "Motif")
        return f
    if root_name == "PieceComplementaire":
        f = _courrier(el)
        docs = child(el, "Documents")
        f["documents"] = [_fichier(d) or "" for d in docs.iterchildren(q("Document"))] if docs is not None else []
        return f
    if root_name in ("ARPieceComplementaire", "ARReponseRejetLettreObservations"):
        infos = child(el, "InfosCourrierPref")
        f = {"date_reception": to_date(attr(el, "DateReception"))}
        f.update(_courrier(infos) if infos is not None else {"id_acte": None, "date_courrier_pref": None})
        return f
    if root_name == "DefereTA":
        pj = child(el, "PiecesJointes")
        return {
            "id_acte": attr(el, "IDActe"),
            "date_depot": to_date(child_text(el, "DateDepot")),
            "nature_illegalite": child_text(el, "NatureIllegalite"),
            "pieces_jointes": [_fichier(p) or "" for p in pj.iterchildren(q("PieceJointe"))] if pj is not None else [],
        }
    if root_name == "Annulation":
        return {"id_acte": attr(el, "IDActe")}
    if root_name == "ARAnnulation":
        return {"id_acte": attr(el, "IDActe"), "date_reception": to_date(attr(el, "DateReception"))}
    if root_name in ("DemandeClassification", "ReponseClassificationSansChangement"):
        return {"date_classification": to_date(child_text(el, "DateClassification"))}
    if root_name == "RetourClassification":
        natures = child(el, "NaturesActes")
        matieres = child(el, "Matieres")
        nat_codes = [int(attr(n, "CodeNatureActe") or 0) for n in natures.iterchildren(q("NatureActe"))] if natures is not None else []
        return {
            "date_classification": to_date(child_text(el, "DateClassification")),
            "natures": sorted(nat_codes),
            "natures_count": len(nat_codes),
            "matieres_count": len(matieres.findall(q("Matiere1"))) if matieres is not None else 0,
        }
    raise SchemaError("actes_unknown_message", f"message ACTES inconnu / unknown ACTES message: {root_name}")


def message_from_root(root: etree._Element, *, check_xsd: bool = False) -> ActesMessage:
    if etree.QName(root).namespace != ACTES_NS:
        raise SchemaError(
            "actes_unknown_message",
            f"pas un message ACTES / not an ACTES message: {root.tag}",
        )
    name = local(root)
    if name not in TYPE_CODES and name not in ENVELOPPE_ROOTS:
        raise SchemaError("actes_unknown_message", f"message ACTES inconnu / unknown ACTES message: {name}")
    if check_xsd:
        validate("actes", root)
    return ActesMessage(TYPE_CODES.get(name), name, _fields(name, root))


def parse_actes_message(data: bytes, *, check_xsd: bool = False) -> ActesMessage:
    """Parse any ACTES message (root element name == type name).

    XSD validation is off by default: real préfecture messages are sometimes outside the XSD
    (e.g. AnomalieEnveloppe Nature 999).
    """
    return message_from_root(parse_xml(data), check_xsd=check_xsd)


# ---------------------------------------------------------------------------------------------
# Building (préfecture side, used by the S²low simulator). Every builder validates its output.


def _finish(root: etree._Element) -> bytes:
    validate("actes", root)
    return serialize(root)


def _acte_root(acte_xml: bytes) -> etree._Element:
    root = parse_xml(acte_xml)
    if local(root) != "Acte" or etree.QName(root).namespace != ACTES_NS:
        raise SchemaError("actes_unexpected_message", f"actes:Acte attendu / expected actes:Acte, got {root.tag}")
    return root


def _copy_into(target: etree._Element, source: etree._Element) -> None:
    """Copy the attributes and children of source (DonneesActe / DonneesEnveloppe content)."""
    for k, v in source.attrib.items():
        if k != "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation":
            target.set(k, v)
    for c in source:
        if isinstance(c.tag, str):
            target.append(copy.deepcopy(c))


def _nature3(nature: str | int) -> str:
    s = str(nature).strip()
    if not s.isdigit() or len(s) > 3:
        raise SchemaError("actes_invalid_nature", f"nature d'anomalie sur 3 chiffres / 3-digit nature: {nature!r}")
    return s.zfill(3)


def build_aracte(acte_xml: bytes, *, id_acte: str, date_reception: date, classification_date: date) -> bytes:
    """ARActe (1-2): ActeRecu echoes the Acte's attributes and content."""
    acte = _acte_root(acte_xml)
    parse_id_acte(id_acte)
    root = root_element("ARActe", {"IDActe": id_acte, "DateReception": date_reception.isoformat()})
    _copy_into(sub(root, "ActeRecu"), acte)
    sub(root, "ClassificationDateVersionEnCours", classification_date.isoformat())
    return _finish(root)


def build_anomalie_acte(
    acte_xml: bytes, *, nature: str, detail: str, day: date, classification_date: date
) -> bytes:
    """AnomalieActe (1-3). nature is a 3-digit code, e.g. "002" (classification pas à jour)."""
    acte = _acte_root(acte_xml)
    root = root_element("AnomalieActe")
    sub(root, "Date", day.isoformat())
    sub(root, "Nature", _nature3(nature))
    if detail:
        sub(root, "Detail", detail)
    _copy_into(sub(root, "ActeRecu"), acte)
    sub(root, "ClassificationDateVersionEnCours", classification_date.isoformat())
    return _finish(root)


ANOMALIE_ENVELOPPE_XSD_NATURES = frozenset({"001", "002", "003", "004", "005", "100"})


def build_anomalie_enveloppe(
    enveloppe_xml: bytes, *, nature: str, detail: str, day: date, strict_nature: bool = False
) -> bytes:
    """AnomalieEnveloppe.

    The XSD enumerates Nature 001–005 and 100, but the real ministry also sends other codes
    (e.g. 999 "ODT-VERIF-17"). Unless strict_nature is set, any 3-digit code is accepted and the
    rest of the message is still XSD-validated (checked with an enumerated stand-in code).
    """
    env = parse_xml(enveloppe_xml)
    if local(env) != "EnveloppeCLMISILL":
        raise SchemaError("actes_unexpected_message", f"EnveloppeCLMISILL attendue / expected, got {env.tag}")
    code = _nature3(nature)
    root = root_element("AnomalieEnveloppe")
    sub(root, "Date", day.isoformat())
    nature_el = sub(root, "Nature", code)
    if detail:
        sub(root, "Detail", detail)
    _copy_into(sub(root, "EnveloppeRecue"), env)
    if strict_nature or code in ANOMALIE_ENVELOPPE_XSD_NATURES:
        return _finish(root)
    nature_el.text = "100"
    validate("actes", root)
    nature_el.text = code
    return serialize(root)


def build_ar_annulation(*, id_acte: str, date_reception: date) -> bytes:
    """ARAnnulation (6-2)."""
    return _finish(root_element("ARAnnulation", {"IDActe": id_acte, "DateReception": date_reception.isoformat()}))


def build_courrier_pref(
    kind: str,
    *,
    id_acte: str,
    date_courrier: date,
    document: str,
    text: str | None = None,
) -> bytes:
    """Courrier from the préfecture: CourrierSimple (2-1), DemandePieceComplementaire (3-1,
    text = DescriptionPieces) or LettreObservations (4-1, text = Motif). Also usable for the
    automatic ARs ARDemandePieceComplementaire / ARLettreObservations (no document)."""
    root = root_element(kind, {"IDActe": id_acte, "DateCourrierPref": date_courrier.isoformat()})
    if kind == "DemandePieceComplementaire":
        sub(root, "DescriptionPieces", text or "")
    elif kind == "LettreObservations":
        sub(root, "Motif", text or "")
    elif kind in ("ARDemandePieceComplementaire", "ARLettreObservations"):
        return _finish(root)
    elif kind != "CourrierSimple":
        raise SchemaError("actes_unknown_message", f"courrier inconnu / unknown courrier kind {kind!r}")
    sub(sub(root, "Document"), "NomFichier", document)
    return _finish(root)


def build_reponse_courrier(
    kind: str, *, id_acte: str, date_courrier: date, documents: list[str]
) -> bytes:
    """Collectivité replies: ReponseCourrierSimple (2-2), RefusPieceComplementaire (3-3),
    PieceComplementaire (3-4, several documents), RejetLettreObservations (4-3),
    ReponseLettreObservations (4-4)."""
    root = root_element(kind, {"IDActe": id_acte, "DateCourrierPref": date_courrier.isoformat()})
    if kind == "PieceComplementaire":
        docs = sub(root, "Documents")
        for d in documents:
            sub(sub(docs, "Document"), "NomFichier", d)
    elif kind in ("ReponseCourrierSimple", "RefusPieceComplementaire", "RejetLettreObservations", "ReponseLettreObservations"):
        if len(documents) != 1:
            raise SchemaError("actes_invalid_message", f"{kind} takes exactly one document")
        sub(sub(root, "Document"), "NomFichier", documents[0])
    else:
        raise SchemaError("actes_unknown_message", f"réponse inconnue / unknown reply kind {kind!r}")
    return _finish(root)


def build_ar_reponse_cl(kind: str, *, id_acte: str, date_courrier: date, date_reception: date) -> bytes:
    """ARPieceComplementaire (3-5) or ARReponseRejetLettreObservations (4-5)."""
    if kind not in ("ARPieceComplementaire", "ARReponseRejetLettreObservations"):
        raise SchemaError("actes_unknown_message", f"unknown AR kind {kind!r}")
    root = root_element(kind, {"DateReception": date_reception.isoformat()})
    sub(root, "InfosCourrierPref", IDActe=id_acte, DateCourrierPref=date_courrier.isoformat())
    return _finish(root)


def build_defere_ta(*, id_acte: str, date_depot: date, nature_illegalite: str, pieces: list[str]) -> bytes:
    """DefereTA (5-1)."""
    root = root_element("DefereTA", {"IDActe": id_acte})
    sub(root, "DateDepot", date_depot.isoformat())
    sub(root, "NatureIllegalite", nature_illegalite)
    pj = sub(root, "PiecesJointes")
    for p in pieces:
        sub(sub(pj, "PieceJointe"), "NomFichier", p)
    return _finish(root)


def build_annulation(*, id_acte: str) -> bytes:
    """Annulation (6-1), collectivité side."""
    return _finish(root_element("Annulation", {"IDActe": id_acte}))


def build_demande_classification(*, date_classification: date | None = None) -> bytes:
    """DemandeClassification (7-1), collectivité side."""
    root = root_element("DemandeClassification")
    if date_classification:
        sub(root, "DateClassification", date_classification.isoformat())
    return _finish(root)


def build_reponse_classification_sans_changement(*, date_classification: date) -> bytes:
    """ReponseClassificationSansChangement (7-3)."""
    root = root_element("ReponseClassificationSansChangement")
    sub(root, "DateClassification", date_classification.isoformat())
    return _finish(root)


def build_enveloppe_misillcl(
    *,
    departement: str,
    siren: str,
    files: list[str],
    arrondissement: str | None = None,
    emetteur: str = "IDPref",
) -> bytes:
    """EnveloppeMISILLCL (ministry → TdT). emetteur: IDSGAR, IDPref or IDSousPref (needs
    arrondissement)."""
    root = root_element("EnveloppeMISILLCL")
    em = sub(root, "Emetteur")
    if emetteur == "IDSousPref":
        sub(em, "IDSousPref", Departement=departement, Arrondissement=str(arrondissement))
    elif emetteur in ("IDPref", "IDSGAR"):
        sub(em, emetteur, Departement=departement)
    else:
        raise SchemaError("actes_invalid_message", f"unknown emetteur kind {emetteur!r}")
    fe = sub(root, "FormulairesEnvoyes")
    for f in files:
        sub(sub(fe, "Formulaire"), "NomFichier", f)
    sub(root, "Destinataire", SIREN=siren)
    return _finish(root)
