"""The préfecture's classification (RetourClassification, message 7-2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from schemas.errors import SchemaError
from schemas.xml import parse_xml, validate

from .ns import attr, child, child_text, local, q, to_date

__all__ = ["Classification", "Matiere", "NatureClassification", "default_classification"]

_DATA = Path(__file__).resolve().parent / "data" / "classification-exemple.xml"


@dataclass(frozen=True)
class NatureClassification:
    code: int
    abbr: str
    label: str
    typologies: tuple[tuple[str, str], ...]  # (CodeTypePJ, Libelle) in document order

    @property
    def typology_codes(self) -> frozenset[str]:
        return frozenset(c for c, _ in self.typologies)


@dataclass(frozen=True)
class Matiere:
    code: int
    label: str
    children: tuple[Matiere, ...] = ()


@dataclass(frozen=True)
class Classification:
    date: date
    natures: dict[int, NatureClassification] = field(hash=False)
    matieres: tuple[Matiere, ...] = field(hash=False)
    # Every valid dotted code prefix ("7", "7.1", "7.1.2") with its label.
    labels: dict[str, str] = field(hash=False, repr=False)

    @classmethod
    def parse(cls, xml: bytes, *, check_xsd: bool = True) -> Classification:
        root = parse_xml(xml)
        if local(root) != "RetourClassification":
            raise SchemaError(
                "classification_invalid",
                f"RetourClassification attendu / expected RetourClassification, got {local(root)}",
            )
        if check_xsd:
            validate("actes", root)
        day = to_date(child_text(root, "DateClassification"))
        if day is None:
            raise SchemaError("classification_invalid", "DateClassification manquante / missing")
        natures: dict[int, NatureClassification] = {}
        nat_root = child(root, "NaturesActes")
        for n in nat_root.iterchildren(q("NatureActe")) if nat_root is not None else ():
            code = int(attr(n, "CodeNatureActe") or 0)
            typs = tuple(
                (attr(t, "CodeTypePJ") or "", attr(t, "Libelle") or "")
                for t in n.iterchildren(q("TypePJNatureActe"))
            )
            natures[code] = NatureClassification(
                code, attr(n, "TypeAbrege") or "", attr(n, "Libelle") or "", typs
            )

        labels: dict[str, str] = {}

        def walk(el, level: int, prefix: str) -> tuple[Matiere, ...]:
            out: list[Matiere] = []
            for m in el.iterchildren(q(f"Matiere{level}")):
                code = int(attr(m, "CodeMatiere") or 0)
                dotted = f"{prefix}.{code}" if prefix else str(code)
                labels.setdefault(dotted, attr(m, "Libelle") or "")
                kids = walk(m, level + 1, dotted) if level < 5 else ()
                out.append(Matiere(code, attr(m, "Libelle") or "", kids))
            return tuple(out)

        mat_root = child(root, "Matieres")
        matieres = walk(mat_root, 1, "") if mat_root is not None else ()
        return cls(date=day, natures=natures, matieres=matieres, labels=labels)

    def has_code(self, code: str) -> bool:
        """True when every level of the dotted code exists ("7.1.2" needs 7, 7.1 and 7.1.2)."""
        return code.strip() in self.labels

    def label(self, code: str) -> str | None:
        return self.labels.get(code.strip())

    def typologies_for(self, nature: int) -> set[str]:
        n = self.natures.get(int(nature))
        return set(n.typology_codes) if n else set()


def default_classification() -> bytes:
    """The shipped sample classification (RetourClassification of 2019-03-01)."""
    return _DATA.read_bytes()
