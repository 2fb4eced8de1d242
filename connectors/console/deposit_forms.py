"""The console's deposit forms, one per flow: their fields (labels, and choices taken from the
collectivité's own configuration), the deposit metadata a filled form makes, the checks of what
the form offers, and which field each refusal concerns.

Accepting the document stays `bus.deposits.Depositor`'s job: the form only checks its own
selects and runs the flow's metadata model (`metadata_model` of `bus/flows/<flow>.yaml`) so that
every field's error shows at once, where the deposit would stop at the first.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic_core import core_schema

from bus.collectivite_config import connectors_of
from bus.flows.definition import load_flow, resolve
from bus.store.models import Collectivite
from connectors.inbound.pastell.connecteurs import signature_config
from connectors.inbound.pastell.external import iparapheur_subtypes, iparapheur_types
from schemas.actes.classification import Classification
from schemas.actes.naming import NATURES

Kind = Literal["text", "number", "date", "select", "checkbox", "file", "files"]
DOCUMENT, ANNEXES = "document", "annexes"  # the file fields' names
PYDANTIC_TYPES = frozenset(typing.get_args(core_schema.ErrorType))  # custom types are refusal codes


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class Group:
    label: str  # "" for options outside any <optgroup>
    options: tuple[Option, ...]


@dataclass(frozen=True)
class Field:
    name: str  # the input's name and id; for a metadata field, its metadata key
    label: str
    kind: Kind
    required: bool = False
    hint: str = ""
    invalid: str = ""  # what a correct value looks like, shown when the model refuses the value
    groups: tuple[Group, ...] = ()  # a select's options
    accept: str = ""  # a file input's types
    unknown: str = "invalid_metadata"  # refusal code of a value the select does not offer
    default: str = ""

    def offers(self, value: str) -> bool:
        return any(o.value == value for g in self.groups for o in g.options)

    @property
    def metadata(self) -> bool:
        return self.kind not in ("file", "files")


@dataclass(frozen=True)
class FieldError:
    code: str
    message: str


@dataclass
class Slot:
    """One file of a filled form, by its name and size (the bytes are in the request or the blob store)."""

    name: str
    size: int
    typologie: str = ""  # ACTES annexes: the typologie chosen for this file ("" = the nature's default)


@dataclass
class Filled:
    """A submitted form: its scalar values (a checked box is "on") and its files per file field."""

    values: dict[str, str]
    files: dict[str, list[Slot]] = field(default_factory=dict)


@dataclass(frozen=True)
class DepositForm:
    flow: str
    title: str  # what is deposited: "un acte", "un fichier PES"…
    fields: tuple[Field, ...]
    codes: dict[str, str]  # refusal code (or "prefix_*") → the field it concerns
    typologies: dict[int, Group] = field(default_factory=dict)  # the annexes' select, per nature (ACTES)
    extra_metadata: Callable[[Filled], dict[str, Any]] | None = None
    extra_checks: Callable[[Filled], dict[str, FieldError]] | None = None

    def typology_groups(self, filled: Filled) -> tuple[Group, ...]:
        """The annexes' typologies: the chosen nature's, or every nature's before one is chosen."""
        nature = _nature(filled)
        return (self.typologies[nature],) if nature in self.typologies else tuple(self.typologies.values())

    def by_name(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def defaults(self) -> Filled:
        return Filled({f.name: f.default for f in self.fields if f.metadata})

    def metadata(self, filled: Filled) -> dict[str, Any]:
        """The deposit's metadata: a checkbox is a boolean, an optional field left empty is left out."""
        meta: dict[str, Any] = {}
        for f in self.fields:
            value = filled.values.get(f.name, "")
            if f.kind == "checkbox":
                meta[f.name] = value == "on"
            elif f.metadata and (value or f.required):
                meta[f.name] = value
        if self.extra_metadata:
            meta.update(self.extra_metadata(filled))
        return meta

    def check(self, filled: Filled) -> dict[str, FieldError]:
        """Every field's first error: what the flow's metadata model refuses (as the deposit would
        first), then a choice the form does not offer, a missing file."""
        errors: dict[str, FieldError] = {}
        model: type[BaseModel] = resolve(load_flow(self.flow).metadata_model)
        try:
            model.model_validate(self.metadata(filled))
        except ValidationError as exc:
            for err in exc.errors():
                loc = str(err["loc"][0]) if err.get("loc") else ""
                # A check over several fields (the model's validator) has no loc: its code says which.
                name = self.field_of(loc) or self.field_of(err["type"]) or ""
                if name not in errors:
                    errors[name] = self._model_error(loc, name, err)
        for f in self.fields:
            value = filled.values.get(f.name, "")
            if f.kind == "select" and value and not f.offers(value):
                errors.setdefault(f.name, FieldError(f.unknown, f"« {value} » n'est pas un choix proposé pour {f.label}."))
            if f.kind == "file" and f.required and not filled.files.get(f.name):
                errors.setdefault(f.name, FieldError("missing_file", f"Choisissez le fichier ({f.label})."))
        for name, error in (self.extra_checks(filled) if self.extra_checks else {}).items():
            errors.setdefault(name, error)
        order = [f.name for f in self.fields]
        return dict(sorted(errors.items(), key=lambda e: order.index(e[0]) if e[0] in order else -1))

    def _model_error(self, loc: str, name: str, err: Any) -> FieldError:
        """The code the deposit would refuse this value with: a custom error's type
        (`date_in_future`), else the flow's `invalid_<field>` when it has one, else `invalid_metadata`."""
        if err["type"] not in PYDANTIC_TYPES:
            return FieldError(err["type"], err["msg"])
        code = f"invalid_{loc}" if f"invalid_{loc}" in self.codes else "invalid_metadata"
        f = self.by_name(name)
        return FieldError(code, (f.invalid if f and f.invalid else "Valeur incorrecte") + ".")

    def field_of(self, code: str, message: str = "", filled: Filled | None = None) -> str | None:
        """The field a refusal code (or a metadata key) concerns; a file's refusal names the file."""
        if self.by_name(code):
            return code
        if code in self.codes:
            return self.codes[code]
        for prefix, name in self.codes.items():
            if prefix.endswith("*") and code.startswith(prefix[:-1]):
                return name
        for name, slots in (filled.files if filled else {}).items():
            if any(repr(s.name) in message for s in slots):
                return name
        return None


def _signature_field(flow: str, coll: Collectivite, hint: str) -> tuple[Field, ...]:
    """« Signature », when the flow's signature stage is asked for by the depositor and the
    collectivité has the connector it runs with."""
    stage = next((s for s in load_flow(flow).stages if s.kind == "signature" and s.enabled_by == "signature"), None)
    config = connectors_of(coll)
    if stage is None or not config.has(stage.connector_key):
        return ()
    options = config.flow_options(flow)
    return (Field("signature", "Signature", "checkbox", hint=hint,
                  default="on" if options.get("signature_default") else ""),)


# -- ACTES ---------------------------------------------------------------------------------------

ACTES_CODES = {
    "invalid_nature": "nature", "invalid_numero_interne": "numero_interne",
    "duplicate_numero_interne": "numero_interne", "invalid_date_decision": "date_decision",
    "date_in_future": "date_decision", "invalid_objet": "objet", "invalid_classification": "classification",
    "unknown_classification": "classification", "invalid_typologie": ANNEXES, "unknown_typologie": ANNEXES,
    "typologie_count": ANNEXES, "typologie": ANNEXES, "document_not_pdf": DOCUMENT, "annexe_bad_type": ANNEXES,
    "too_many_annexes": ANNEXES,
    "publication_not_enabled": "publication", "publication_needs_pdf": DOCUMENT,
    "publication_auteur_required": "auteur_nom", "invalid_auteur": "auteur_nom", "invalid_vote": "vote_effectif",
}
VOTES = (("vote_effectif", "Membres en exercice"), ("vote_reel", "Votants"), ("vote_pour", "Voix pour"),
         ("vote_contre", "Voix contre"), ("vote_abstention", "Abstentions"))


def _publication_fields() -> tuple[Field, ...]:
    """Publication (R2131-1 CGCT): whether the acte goes to the public registry, its author, and
    the vote figures of a délibération (SCDL open data)."""
    return (
        Field("publication", "Publication", "select",
              hint="Publier l'acte sur le registre public de la collectivité après l'accusé de réception "
                   "de la préfecture. « Par défaut » suit le réglage de la collectivité.",
              groups=(Group("", (Option("true", "Publier"), Option("false", "Ne pas publier"))),)),
        Field("auteur_prenom", "Prénom de l'auteur", "text", hint="Exigé pour publier (mention légale).",
              invalid="Le prénom comporte 1 à 100 caractères"),
        Field("auteur_nom", "Nom de l'auteur", "text", hint="Exigé pour publier.",
              invalid="Le nom comporte 1 à 100 caractères"),
        Field("auteur_qualite", "Qualité de l'auteur", "text", hint="Par exemple : Maire. Exigée pour publier.",
              invalid="La qualité comporte 1 à 200 caractères"),
        *(Field(name, label, "number", hint="Délibérations : un nombre entier, facultatif.",
                invalid="Un nombre entier de 0 à 100 000") for name, label in VOTES),
    )


def _classification(coll: Collectivite) -> Classification | None:
    return Classification.parse(coll.classification_xml, check_xsd=False) if coll.classification_xml else None


def _classification_field(classification: Classification | None) -> Field:
    label, hint = "Classification", "La classification de la préfecture : matière, puis sous-matière."
    if classification is None:
        return Field("classification", label, "text", required=True, hint=hint, invalid="Un code tel que 1.1 ou 7.1.2")
    groups: list[Group] = []
    for code, text in classification.labels.items():
        if "." not in code:
            groups.append(Group(f"{code} {text}", ()))
        elif groups:
            groups[-1] = Group(groups[-1].label, (*groups[-1].options, Option(code, f"{code} {text}")))
    return Field("classification", label, "select", required=True, unknown="unknown_classification",
                 hint=f"{hint} Classification du {classification.date.strftime('%d/%m/%Y')}.",
                 groups=tuple(g for g in groups if g.options))


def _typologies(classification: Classification | None) -> dict[int, Group]:
    natures = classification.natures.values() if classification else ()
    return {n.code: Group(n.label, tuple(Option(code, f"{code} {text}") for code, text in n.typologies))
            for n in sorted(natures, key=lambda n: n.code)}


def _nature(filled: Filled) -> int | None:
    value = filled.values.get("nature", "")
    return int(value) if value.isdigit() and int(value) in NATURES else None


def _actes_metadata(filled: Filled) -> dict[str, Any]:
    """The nature as a number, and the typologies once an annexe's is chosen (acte first, then the
    annexes, each defaulting to the nature's as S²low does)."""
    nature = _nature(filled)
    meta: dict[str, Any] = {"nature": nature if nature is not None else filled.values.get("nature", "")}
    chosen = [s.typologie for s in filled.files.get(ANNEXES, [])]
    if nature is not None and any(chosen):
        default = NATURES[nature].typologie
        meta["typologie"] = [default] + [t or default for t in chosen]
    return meta


def actes(coll: Collectivite) -> DepositForm:
    classification = _classification(coll)
    typologies = _typologies(classification)

    def annexes_typologies(filled: Filled) -> dict[str, FieldError]:
        nature = _nature(filled)
        allowed = classification.typologies_for(nature) if classification and nature is not None else set()
        offered = {o.value for g in typologies.values() for o in g.options}
        for i, slot in enumerate(filled.files.get(ANNEXES, []), 1):
            if slot.typologie and (slot.typologie not in offered or (allowed and slot.typologie not in allowed)):
                return {ANNEXES: FieldError("unknown_typologie", f"La typologie {slot.typologie} de l'annexe {i} "
                                            f"({slot.name}) n'est pas autorisée pour cette nature d'acte.")}
        return {}

    fields = (
        Field("nature", "Nature", "select", required=True, unknown="invalid_nature",
              groups=(Group("", tuple(Option(str(n.code), n.label) for n in NATURES.values())),)),
        Field("numero_interne", "Numéro interne", "text", required=True,
              hint="Le numéro de l'acte dans la collectivité, unique : 15 caractères au plus, "
                   "majuscules, chiffres et _ (par exemple DELIB_2026_042).",
              invalid="Le numéro interne comporte 1 à 15 caractères : majuscules, chiffres ou _, "
                      "sans _ à la fin"),
        Field("date_decision", "Date de décision", "date", required=True,
              invalid="Une date de décision (jour, mois, année), pas dans le futur"),
        Field("objet", "Objet", "text", required=True, hint="500 caractères au plus.",
              invalid="L'objet comporte 1 à 500 caractères"),
        _classification_field(classification),
        Field(DOCUMENT, "Document", "file", required=True, accept="application/pdf,.pdf",
              hint="L'acte, en PDF (un document budgétaire 7.1 peut être en XML)."),
        Field(ANNEXES, "Annexes", "files", accept="application/pdf,.pdf,application/xml,.xml,image/png,image/jpeg",
              hint="PDF, XML, PNG ou JPEG, plusieurs à la fois. Chaque annexe prend la typologie par défaut "
                   "de la nature ; « Envoyer les annexes et choisir leur typologie » propose une typologie par annexe."),
        *_signature_field("actes", coll, "Faire signer l'acte par le parapheur de la collectivité avant l'envoi."),
        *_publication_fields(),
    )
    return DepositForm("actes", "un acte", fields, ACTES_CODES, typologies,
                       extra_metadata=_actes_metadata, extra_checks=annexes_typologies)


# -- HELIOS --------------------------------------------------------------------------------------

def helios(coll: Collectivite) -> DepositForm:
    fields = (
        Field(DOCUMENT, "Fichier PES", "file", required=True, accept="application/xml,.xml",
              hint="Le PES_Aller (XML) ; son IdColl doit être le SIRET de la collectivité."),
        *_signature_field("helios", coll, "Faire signer le PES (XAdES, par bordereau) avant l'envoi à la DGFiP."),
    )
    return DepositForm("helios", "un fichier PES", fields,
                       {"pes_not_signed": "signature", "pes_*": DOCUMENT, "helios_*": DOCUMENT,
                        "duplicate_nom_fic": DOCUMENT})


# -- PDF signature -------------------------------------------------------------------------------

def pdf_signature(coll: Collectivite) -> DepositForm:
    circuit: tuple[Field, ...] = ()
    signature = signature_config(coll)
    if types := iparapheur_types(signature):
        circuit = (
            Field("iparapheur_type", "Type i-Parapheur", "select", hint="Le circuit de signature.",
                  groups=(Group("", tuple(Option(t, t) for t in types)),)),
            Field("iparapheur_sous_type", "Sous-type i-Parapheur", "select",
                  groups=(Group("", tuple(Option(t, t) for t in iparapheur_subtypes(signature))),)),
        )
    archive = connectors_of(coll).has("sae")
    fields = (
        Field("libelle", "Libellé", "text", required=True, hint="Ce que le signataire verra : 500 caractères au plus.",
              invalid="Le libellé comporte 1 à 500 caractères"),
        Field(DOCUMENT, "Document", "file", required=True, accept="application/pdf,.pdf", hint="Le PDF à signer."),
        *circuit,
        Field("date_limite", "Date limite de signature", "date", invalid="Une date (jour, mois, année)"),
        *((Field("archive", "Archiver le document signé", "checkbox", hint="L'envoyer au service d'archives (SAE)."),)
          if archive else ()),
    )
    return DepositForm("pdf-signature", "un PDF à faire signer", fields, {"document_not_pdf": DOCUMENT})


FORMS: dict[str, Callable[[Collectivite], DepositForm]] = {
    "actes": actes, "helios": helios, "pdf-signature": pdf_signature,
}
