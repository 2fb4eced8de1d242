"""PES_Retour (docs/protocols.md §3.5): the DGFiP's return flows (e.g. PESRETOUR_DEP). Minimal, for inspection.

No XSD is shipped for it: the bytes are safe-parsed (`schemas.xml.parse_xml`, no DOCTYPE) and the
fields read by name. Errors: `pes_retour_invalid_xml`, `pes_retour_doctype_forbidden`,
`pes_not_pes_retour`.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from schemas.errors import XmlError
from schemas.helios.ns import PES_RETOUR_NS
from schemas.helios.pes import HeliosError
from schemas.xml import parse_xml

__all__ = ["parse_pes_retour", "retour_from_root"]


def _v(el: etree._Element, path: str) -> str | None:
    c = el.find(path)
    return None if c is None else c.get("V")


def retour_from_root(root: etree._Element) -> dict[str, Any]:
    """Fields of an already parsed PES_Retour root."""
    pieces: list[dict[str, Any]] = []
    bordereaux: list[dict[str, Any]] = []
    for section in root:
        if not isinstance(section.tag, str) or not section.tag.endswith("Retour"):
            continue
        for bord in section.findall("Bordereau"):
            b = {
                "domain": section.tag,
                "exercice": _v(bord, "BlocBordereau/Exer"),
                "id_bord": _v(bord, "BlocBordereau/IdBord"),
                "type_bord": _v(bord, "BlocBordereau/TypBord"),
            }
            bordereaux.append(b)
            for piece in bord.findall("Piece"):
                info = piece.find("InfoPiece")
                if info is None:
                    info = piece.find("BlocPiece/InfoPce")
                if info is None:
                    info = piece
                pieces.append({
                    "id_bord": b["id_bord"],
                    "exercice": b["exercice"],
                    "id_pce": _v(info, "IdPce"),
                    "etat_pce": _v(info, "EtatPce"),
                    "obj": _v(info, "Obj"),
                })
    return {
        "format": "PES_Retour",
        "typ_fic": _v(root, "Enveloppe/Parametres/TypFic"),
        "nom_fic": _v(root, "Enveloppe/Parametres/NomFic"),
        "dte_str": _v(root, "EnTetePES/DteStr"),
        "id_post": _v(root, "EnTetePES/IdPost"),
        "libelle_poste": _v(root, "EnTetePES/LibellePoste"),
        "id_coll": _v(root, "EnTetePES/IdColl"),
        # spelled CodColl in the real PES_Retour (§3.5); CodCol accepted too
        "cod_coll": _v(root, "EnTetePES/CodColl") or _v(root, "EnTetePES/CodCol"),
        "cod_bud": _v(root, "EnTetePES/CodBud"),
        "bordereaux": bordereaux,
        "pieces": pieces,
    }


def parse_pes_retour(data: bytes) -> dict[str, Any]:
    """Safe-parse a PES_Retour and return its fields (JSON-serialisable)."""
    try:
        root = parse_xml(data, max_bytes=200_000_000)
    except XmlError as exc:
        code = "pes_retour_doctype_forbidden" if exc.code == "xml_doctype_forbidden" else "pes_retour_invalid_xml"
        raise HeliosError(code, exc.message) from None
    qn = etree.QName(root)
    if qn.namespace != PES_RETOUR_NS or qn.localname != "PES_Retour":
        raise HeliosError("pes_not_pes_retour", f"ce fichier n'est pas un PES_Retour / not a PES_Retour: {root.tag}")
    return retour_from_root(root)
