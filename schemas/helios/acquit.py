"""PES_ACQUIT v2, the DGFiP's acknowledgement of a PES_Aller (docs/protocols.md §3.4): parse, build, name.

* `parse_acquit(data)`: safe parse (`schemas.xml.parse_xml`), validation against
  PES_V2_Acquit_Autonome_V2.xsd (an acquit in an older revision namespace, `…/Rev0/retour`, is
  validated as the same elements in the current one), one `AckElement` per ElementACQUIT, and a verdict:
  all EtatAck=1 → "accepted", none → "rejected", otherwise "partial".
  Errors (`HeliosError`): `pes_acquit_invalid_xml`, `pes_acquit_doctype_forbidden`,
  `pes_not_acquit`, `pes_acquit_xsd_invalid`.
* `build_acquit(summary, ...)`: what the DGFiP (simulator) answers to a PES_Aller: one
  ElementACQUIT per bordereau (DomaineAck 5 dépense / 6 recette, NumBord + ExerciceBord) and per
  PJ (DomaineAck 4, IdUnique); EtatAck 1, or 0 with an Erreur (NumAnoAck / LibelleAnoAck).
  NomFic is the PES NomFic (the correlation key). The result is ISO-8859-1 and XSD-valid (checked).
* `acquit_file_name(id_post, when, ok)`: the DGFiP's file name shape.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from lxml import etree

from schemas.errors import XmlError, XsdError
from schemas.helios.ns import PES_ACQUIT_NS, is_pes_acquit_ns
from schemas.helios.pes import HeliosError, PesSummary
from schemas.xml import parse_xml, validate

__all__ = [
    "DOMAIN_LABELS",
    "AckElement",
    "AcquitSummary",
    "acquit_file_name",
    "build_acquit",
    "parse_acquit",
]

# Pastell's viewer labels (§3.4).
DOMAIN_LABELS: dict[str, str] = {
    "0": "technique",
    "1": "technique",
    "2": "technique",
    "3": "validité du certificat",
    "4": "pièce justificative",
    "5": "dépense",
    "6": "recette",
    "7": "budget",
}

_MAX_ACQUIT_BYTES = 50_000_000


@dataclass
class AckElement:
    domain: str  # DomaineAck/@V
    domain_label: str
    etat: str  # EtatAck/@V
    accepted: bool  # etat == "1"
    num_bord: str | None
    exercice: str | None  # ExerciceBord
    id_unique: str | None  # PJ (domain 4)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (NumAnoAck, LibelleAnoAck)
    # DetailPiece: {"num_piece": str, "errors": [(code, label)], "lines": [{"num_ligne", "errors"}]}
    pieces: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AcquitSummary:
    nom_fic: str
    id_coll: str | None
    verdict: Literal["accepted", "rejected", "partial"]
    elements: list[AckElement]

    @property
    def failed_bordereaux(self) -> list[str]:
        """NumBord of the refused bordereau elements, in file order."""
        return [e.num_bord for e in self.elements if not e.accepted and e.num_bord is not None]

    @property
    def failed_pj(self) -> list[str]:
        """IdUnique of the refused PJ elements, in file order."""
        return [e.id_unique for e in self.elements if not e.accepted and e.id_unique is not None]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for el in d["elements"]:
            el["errors"] = [list(e) for e in el["errors"]]
        d["failed_bordereaux"] = self.failed_bordereaux
        d["failed_pj"] = self.failed_pj
        return d


# --------------------------------------------------------------------------------------- parsing


def _v(el: etree._Element, path: str) -> str | None:
    c = el.find(path)
    return None if c is None else c.get("V")


def _errors(el: etree._Element) -> list[tuple[str, str]]:
    return [(_v(e, "NumAnoAck") or "", _v(e, "LibelleAnoAck") or "") for e in el.findall("Erreur")]


def _element(el: etree._Element) -> AckElement:
    domain = _v(el, "DomaineAck") or ""
    etat = _v(el, "EtatAck") or ""
    pieces = [
        {
            "num_piece": _v(p, "NumPiece"),
            "errors": _errors(p),
            "lines": [{"num_ligne": _v(li, "NumLigne"), "errors": _errors(li)} for li in p.findall("DetailLigne")],
        }
        for p in el.findall("DetailPiece")
    ]
    return AckElement(
        domain=domain,
        domain_label=DOMAIN_LABELS.get(domain, "autre"),
        etat=etat,
        accepted=etat == "1",
        num_bord=_v(el, "NumBord"),
        exercice=_v(el, "ExerciceBord"),
        id_unique=_v(el, "IdUnique"),
        errors=_errors(el),
        pieces=pieces,
    )


def acquit_from_root(root: etree._Element) -> AcquitSummary:
    """Summarise an already parsed (and trusted to be well-formed) PES_ACQUIT root, no XSD."""
    elements = [_element(e) for e in root.findall("ACQUIT/ElementACQUIT")]
    accepted = sum(1 for e in elements if e.accepted)
    verdict: Literal["accepted", "rejected", "partial"]
    if elements and accepted == len(elements):
        verdict = "accepted"
    elif accepted == 0:
        verdict = "rejected"
    else:
        verdict = "partial"
    return AcquitSummary(
        nom_fic=_v(root, "Enveloppe/Parametres/NomFic") or "",
        id_coll=_v(root, "EnTetePES/IdColl"),
        verdict=verdict,
        elements=elements,
    )


def parse_acquit(data: bytes) -> AcquitSummary:
    """Parse and validate a PES_ACQUIT v2 (untrusted bytes)."""
    try:
        root = parse_xml(data, max_bytes=_MAX_ACQUIT_BYTES)
    except XmlError as exc:
        code = "pes_acquit_doctype_forbidden" if exc.code == "xml_doctype_forbidden" else "pes_acquit_invalid_xml"
        raise HeliosError(code, exc.message) from None
    qn = etree.QName(root)
    if not is_pes_acquit_ns(qn.namespace) or qn.localname != "PES_ACQUIT":
        raise HeliosError("pes_not_acquit", f"ce fichier n'est pas un PES_ACQUIT / not a PES_ACQUIT: {root.tag}")
    checked = root
    if qn.namespace != PES_ACQUIT_NS:  # the children are unqualified: only the root's name changes
        checked = copy.deepcopy(root)
        checked.tag = f"{{{PES_ACQUIT_NS}}}PES_ACQUIT"
    try:
        validate("pes_acquit", checked)
    except XsdError as exc:
        raise HeliosError(
            "pes_acquit_xsd_invalid",
            "PES_ACQUIT non conforme au schéma / does not validate against PES_V2_Acquit_Autonome_V2.xsd: "
            + "; ".join(exc.errors[:3]),
            exc.errors,
        ) from None
    return acquit_from_root(root)


# --------------------------------------------------------------------------------------- building


def _add(parent: etree._Element, tag: str, value: str | None) -> None:
    if value is not None and value != "":
        etree.SubElement(parent, tag).set("V", value)


def _erreur(parent: etree._Element, error: tuple[str, str]) -> None:
    err = etree.SubElement(parent, "Erreur")
    _add(err, "NumAnoAck", error[0])
    _add(err, "LibelleAnoAck", error[1])


def build_acquit(
    summary: PesSummary,
    *,
    rejected_bordereaux: set[str] | frozenset[str] = frozenset(),
    rejected_pj: set[str] | frozenset[str] = frozenset(),
    reject_all: bool = False,
    error: tuple[str, str] = ("ERREUR_AUTRE", "1971 - Compte fonction présent à tort"),
    day: date,
) -> bytes:
    """The PES_ACQUIT v2 the DGFiP would send for `summary` (ISO-8859-1 bytes, XSD-checked).

    `rejected_bordereaux` holds IdBord values, `rejected_pj` IdUnique values; `reject_all` refuses
    every element. Each refused element gets EtatAck 0 and one Erreur `error` (NumAnoAck must be
    one of the XSD's codes, e.g. ERREUR_AUTRE, ERREUR_DOUBLON_PJ). A PES with neither bordereau nor
    PJ gets one technical element (DomaineAck 0).
    """
    nsmap = {"n": PES_ACQUIT_NS}
    root = etree.Element(f"{{{PES_ACQUIT_NS}}}PES_ACQUIT", nsmap=nsmap)
    env = etree.SubElement(root, "Enveloppe")
    params = etree.SubElement(env, "Parametres")
    _add(params, "Version", "2")
    _add(params, "TypFic", "PESALR2")
    _add(params, "NomFic", summary.nom_fic)
    emetteur = etree.SubElement(env, "Emetteur")
    _add(emetteur, "Sigle", "HELIOS")
    _add(emetteur, "Adresse", "DGFIP")
    recepteur = etree.SubElement(env, "Recepteur")
    _add(recepteur, "Sigle", "DEMATBUS")
    head = etree.SubElement(root, "EnTetePES")
    _add(head, "DteStr", day.isoformat())
    _add(head, "IdPost", summary.id_post)
    _add(head, "IdColl", summary.id_coll)
    _add(head, "CodCol", summary.cod_col)
    _add(head, "CodBud", summary.cod_bud)
    _add(head, "LibelleColBud", summary.libelle_col_bud)
    acquit = etree.SubElement(root, "ACQUIT")
    _add(etree.SubElement(acquit, "EnTeteAcquit"), "IdVer", "2")

    def element(domain: str, ok: bool, ids: list[tuple[str, str | None]]) -> None:
        el = etree.SubElement(acquit, "ElementACQUIT")
        _add(el, "DomaineAck", domain)
        _add(el, "EtatAck", "1" if ok else "0")
        for tag, value in ids:
            _add(el, tag, value)
        if not ok:
            _erreur(el, error)

    for b in summary.bordereaux:
        ok = not reject_all and b.id_bord not in rejected_bordereaux
        element("5" if b.domain == "depense" else "6", ok, [("NumBord", b.id_bord), ("ExerciceBord", b.exercice)])
    for uid in summary.pj_ids:
        element("4", not reject_all and uid not in rejected_pj, [("IdUnique", uid)])
    if not summary.bordereaux and not summary.pj_ids:
        element("0", not reject_all, [])
    validate("pes_acquit", root)  # our own output must be valid: fail loudly in tests if not
    body = etree.tostring(root, encoding="ISO-8859-1", xml_declaration=False, pretty_print=True)
    return b'<?xml version="1.0" encoding="ISO-8859-1"?>\n' + body


def acquit_file_name(id_post: str, when: datetime, ok: bool) -> str:
    """`<IdPost>_<yyMMddHHmmss>-ACK-A3020100_A0000MIX_<OK|KO>.xml`, the DGFiP shape (§3.4).

    Simplification: the middle part `A3020100_A0000MIX` is copied verbatim from the real name
    (`006111_190130123456-ACK-A3020100_A0000MIX_KO.xml`); only IdPost, the timestamp and OK/KO
    (KO when any element is refused) vary.
    """
    return f"{id_post}_{when:%y%m%d%H%M%S}-ACK-A3020100_A0000MIX_{'OK' if ok else 'KO'}.xml"
