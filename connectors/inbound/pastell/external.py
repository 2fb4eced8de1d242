"""Pastell's `externalData` fields: the choices offered (classification, typologie des pièces,
i-Parapheur type and sous-type) and how a choice is stored in the document's fields."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bus.store.models import Collectivite
from connectors.inbound.pastell.connecteurs import signature_config
from connectors.inbound.pastell.errors import PastellError
from schemas.actes.classification import Classification

if TYPE_CHECKING:
    from connectors.inbound.pastell.documents import Loaded


def piece_names(loaded: Loaded) -> list[str]:
    """The files to type, main document first, then the annexes in upload order."""
    flux, files = loaded.flux, loaded.row.files
    ordered = [f for f in flux.file_fields() if flux.fields[f].role == "document"]
    ordered += [f for f in flux.file_fields() if flux.fields[f].role == "annexe"]
    return [e["name"] for f in ordered for e in files.get(f, [])]


def _listed(options: dict[str, Any], many: str, one: str) -> list[str]:
    return list(options.get(many) or ([options[one]] if options.get(one) else []))


def iparapheur_types(options: dict[str, Any]) -> list[str]:
    """The i-Parapheur types a signature connector offers (`types`, or its one `type`)."""
    return _listed(options, "types", "type")


def iparapheur_subtypes(options: dict[str, Any]) -> list[str]:
    """The i-Parapheur sous-types a signature connector offers (`subtypes`, or its one `subtype`)."""
    return _listed(options, "subtypes", "subtype")


def _classification(coll: Collectivite) -> Classification:
    if not coll.classification_xml:
        raise PastellError(400, "La classification de la collectivité n'est pas disponible")
    return Classification.parse(coll.classification_xml, check_xsd=False)


def choices(loaded: Loaded, field: str) -> Any:
    if field == "classification":
        return {f"{code} {label}": True for code, label in _classification(loaded.coll).labels.items()}
    if field == "type_piece":
        classification = _classification(loaded.coll)
        nature = loaded.row.fields.get("acte_nature", "")
        natures = list(classification.natures.values())
        if nature.isdigit() and int(nature) in classification.natures:
            natures = [classification.natures[int(nature)]]
        types = {code: label for n in natures for code, label in n.typologies}
        return {"actes_type_pj_list": types, "pieces": piece_names(loaded)}
    if field == "iparapheur_sous_type":
        return iparapheur_subtypes(signature_config(loaded.coll))
    if field == "iparapheur_type":
        return iparapheur_types(signature_config(loaded.coll))
    raise PastellError(400, f"Le champ {field} n'est pas une donnée externe du type {loaded.row.flux}")


def chosen(loaded: Loaded, field: str, values: dict[str, str], lists: dict[str, list[str]]) -> dict[str, str]:
    """The document's fields once the choice is made (`type_pj[]`: one code per piece, in order)."""
    fields = dict(loaded.row.fields)
    if field == "type_piece":
        codes = lists.get("type_pj") or []
        pieces = piece_names(loaded)
        if len(codes) != len(pieces):
            raise PastellError(400, f"Le nombre de type de pièces ({len(codes)}) ne correspond pas "
                                    f"au nombre de pièces ({len(pieces)})")
        fields.update(type_pj=json.dumps(codes), type_acte=codes[0] if codes else "",
                      type_piece=f"{len(codes)} fichier(s) typé(s)")
    elif field in values:
        fields[field] = values[field]
    else:
        raise PastellError(400, f"Le paramètre {field} est obligatoire")
    return fields
