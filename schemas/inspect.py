"""Recognise a dematerialisation message (ACTES, PES, SEDA, ACTES archive) and summarise it."""

from __future__ import annotations

from datetime import date
from typing import Any

from lxml import etree

from schemas.actes.archive import read_acte_archive
from schemas.actes.messages import message_from_root
from schemas.actes.ns import ACTES_NS
from schemas.errors import SchemaError
from schemas.xml import parse_xml

__all__ = ["inspect_message", "PES_ALLER_NS", "PES_ACQUIT_NS", "SEDA_NS"]

PES_ALLER_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller"
PES_ACQUIT_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
SEDA_NS = {
    "fr:gouv:culture:archivesdefrance:seda:v2.1": "2.1",
    "fr:gouv:culture:archivesdefrance:seda:v2.2": "2.2",
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _v(root: etree._Element, path: str) -> str | None:
    """@V of the first element at `path` (PES children are unqualified)."""
    el = root.find(path)
    return None if el is None else el.get("V")


def _pes_aller(root: etree._Element) -> dict[str, Any]:
    dep = root.findall("PES_DepenseAller/Bordereau")
    rec = root.findall("PES_RecetteAller/Bordereau")
    return {
        "format": "PES_Aller",
        "id_coll": _v(root, "EnTetePES/IdColl"),
        "nom_fic": _v(root, "Enveloppe/Parametres/NomFic"),
        "typ_fic": _v(root, "Enveloppe/Parametres/TypFic"),
        "dte_str": _v(root, "EnTetePES/DteStr"),
        "cod_col": _v(root, "EnTetePES/CodCol"),
        "cod_bud": _v(root, "EnTetePES/CodBud"),
        "bordereaux_depense": len(dep),
        "bordereaux_recette": len(rec),
        "bordereaux": len(dep) + len(rec),
        "pj": len(root.findall("PES_PJ/PJ")),
        "signed": root.find(f".//{{{DSIG_NS}}}Signature") is not None,
    }


def _pes_acquit(root: etree._Element) -> dict[str, Any]:
    elements = root.findall("ACQUIT/ElementACQUIT")
    return {
        "format": "PES_ACQUIT",
        "nom_fic": _v(root, "Enveloppe/Parametres/NomFic"),
        "typ_fic": _v(root, "Enveloppe/Parametres/TypFic"),
        "id_coll": _v(root, "EnTetePES/IdColl"),
        "dte_str": _v(root, "EnTetePES/DteStr"),
        "etat_ack": [_v(e, "EtatAck") for e in elements],
        "domaine_ack": [_v(e, "DomaineAck") for e in elements],
        "elements": len(elements),
    }


def _seda(root: etree._Element, ns: str) -> dict[str, Any]:
    def text(path: str) -> str | None:
        el = root.find(path.replace("s:", f"{{{ns}}}"))
        return None if el is None or el.text is None else el.text.strip()

    return {
        "format": etree.QName(root).localname,
        "seda_version": SEDA_NS[ns],
        "message_identifier": text("s:MessageIdentifier"),
        "date": text("s:Date"),
        "reply_code": text("s:ReplyCode"),
        "message_request_identifier": text("s:MessageRequestIdentifier") or text("s:MessageReceivedIdentifier"),
        "archival_agency": text("s:ArchivalAgency/s:Identifier"),
        "transferring_agency": text("s:TransferringAgency/s:Identifier"),
        "archival_agreement": text("s:ArchivalAgreement"),
    }


def inspect_message(data: bytes) -> dict[str, Any]:
    """JSON-serialisable summary of a message; SchemaError `unknown_format` if unrecognised."""
    if data[:2] == b"\x1f\x8b":
        parsed = read_acte_archive(data)
        return _jsonable(
            {
                "format": "actes_archive",
                "members": parsed.members,
                "enveloppe_name": parsed.enveloppe_name,
                "enveloppe": parsed.enveloppe,
                "message_name": parsed.acte_xml_name,
                "message_format": parsed.message_root,
                "type_code": parsed.message_type,
                "message": parsed.acte,
            }
        )
    if b"<" not in data[:1024]:
        raise SchemaError("unknown_format", "format non reconnu / unknown format (neither XML nor tar.gz)")
    root = parse_xml(data)
    ns = etree.QName(root).namespace
    name = etree.QName(root).localname
    if ns == ACTES_NS:
        msg = message_from_root(root)
        return _jsonable({"format": msg.root, "type_code": msg.type_code, **msg.fields})
    if ns == PES_ALLER_NS and name == "PES_Aller":
        return _pes_aller(root)
    if ns == PES_ACQUIT_NS and name == "PES_ACQUIT":
        return _pes_acquit(root)
    if ns in SEDA_NS:
        return _seda(root, ns)
    raise SchemaError("unknown_format", f"format non reconnu / unknown format: {root.tag}")
