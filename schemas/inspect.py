"""Recognise a dematerialisation message (ACTES, PES, SEDA, ACTES archive) and summarise it.

PES_Aller is read streaming (any size up to 600 MB) and leniently (`summarise_pes_aller`); the
`check` key then tells whether it passes the S²low checks of `read_pes_aller` (XSD included).
Signatures are counted, not verified (that is `connectors/signature/xades.py`'s job).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from lxml import etree

from schemas.actes.archive import read_acte_archive
from schemas.actes.messages import message_from_root
from schemas.actes.ns import ACTES_NS
from schemas.errors import SchemaError
from schemas.helios.acquit import acquit_from_root
from schemas.helios.ns import PES_ACQUIT_NS, PES_ALLER_NS, PES_RETOUR_NS, is_pes_acquit_ns
from schemas.helios.pes import (
    HeliosError,
    read_pes_aller,
    sniff_root,
    summarise_pes_aller,
)
from schemas.helios.retour import retour_from_root
from schemas.xml import parse_xml

__all__ = ["PES_ACQUIT_NS", "PES_ALLER_NS", "PES_RETOUR_NS", "SEDA_NS", "inspect_message"]

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


def _pes_aller(data: bytes) -> dict[str, Any]:
    s = summarise_pes_aller(data)
    try:
        read_pes_aller(data)
        check: dict[str, Any] = {"ok": True}
    except HeliosError as exc:
        check = {"ok": False, "code": exc.code, "message": exc.message}
    dep = sum(1 for b in s.bordereaux if b.domain == "depense")
    return {
        "format": "PES_Aller",
        "id_coll": s.id_coll,
        "siren": s.siren,
        "nom_fic": s.nom_fic,
        "typ_fic": s.typ_fic,
        "dte_str": s.dte_str,
        "id_post": s.id_post,
        "cod_col": s.cod_col,
        "cod_bud": s.cod_bud,
        "libelle_col_bud": s.libelle_col_bud,
        "encoding": s.encoding,
        "root_id": s.root_id,
        "bordereaux_depense": dep,
        "bordereaux_recette": len(s.bordereaux) - dep,
        "bordereaux": len(s.bordereaux),  # a count (kept for compatibility): details below
        "bordereaux_detail": [b.to_dict() for b in s.bordereaux],
        "pj": s.pj_count,
        "pj_count": s.pj_count,
        "signed": s.signed,
        "signatures": s.signatures,
        "size": s.size,
        "sha256": s.sha256,
        "check": check,
    }


def _pes_acquit(root: etree._Element) -> dict[str, Any]:
    summary = acquit_from_root(root)
    elements = root.findall("ACQUIT/ElementACQUIT")
    return {
        "format": "PES_ACQUIT",
        "namespace": etree.QName(root).namespace,
        "nom_fic": _v(root, "Enveloppe/Parametres/NomFic"),
        "typ_fic": _v(root, "Enveloppe/Parametres/TypFic"),
        "id_coll": _v(root, "EnTetePES/IdColl"),
        "id_post": _v(root, "EnTetePES/IdPost"),
        "dte_str": _v(root, "EnTetePES/DteStr"),
        "verdict": summary.verdict,
        "etat_ack": [_v(e, "EtatAck") for e in elements],
        "domaine_ack": [_v(e, "DomaineAck") for e in elements],
        "element_count": len(elements),
        "elements": [
            {
                "domain": e.domain,
                "domain_label": e.domain_label,
                "etat": e.etat,
                "accepted": e.accepted,
                "num_bord": e.num_bord,
                "exercice": e.exercice,
                "id_unique": e.id_unique,
                "errors": [{"code": c, "label": lbl} for c, lbl in e.errors],
                "pieces": e.pieces,
            }
            for e in summary.elements
        ],
        "failed_bordereaux": summary.failed_bordereaux,
        "failed_pj": summary.failed_pj,
    }


def _is_pes_aller(data: bytes) -> bool:
    try:
        sniff = sniff_root(data[: 1024 * 1024])
    except HeliosError:
        return False  # let parse_xml give the generic answer
    return sniff.localname == "PES_Aller" and sniff.namespace == PES_ALLER_NS


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
    if _is_pes_aller(data):  # streamed: a PES may exceed parse_xml's size limit
        return _jsonable(_pes_aller(data))
    root = parse_xml(data)
    ns = etree.QName(root).namespace
    name = etree.QName(root).localname
    if ns == ACTES_NS:
        msg = message_from_root(root)
        return _jsonable({"format": msg.root, "type_code": msg.type_code, **msg.fields})
    if name == "PES_ACQUIT" and is_pes_acquit_ns(ns):
        return _jsonable(_pes_acquit(root))
    if ns == PES_RETOUR_NS and name == "PES_Retour":
        return _jsonable(retour_from_root(root))
    if ns in SEDA_NS:
        return _seda(root, ns)
    raise SchemaError("unknown_format", f"format non reconnu / unknown format: {root.tag}")
