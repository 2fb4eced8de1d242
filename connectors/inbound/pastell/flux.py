"""Pastell flux as data (`flux/*.yaml`): fields, the dematbus flow they map to, how Pastell fields
become dematbus metadata, and how dematbus states and result files look in Pastell terms."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

FLUX_DIR = Path(__file__).parent / "flux"
TRUE = {"1", "on", "true", "oui", "yes"}


class FieldDef(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str = ""
    type: str = "text"
    requis: bool = False
    multiple: bool = False
    title: bool = False
    index: bool = False
    role: str | None = None  # dematbus file role of a file field the client uploads
    read_only: bool = Field(False, alias="read-only")
    preg_match: str | None = None

    def schema(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(by_alias=True, exclude_none=True).items()
                if k != "role" and v not in (False, "")}


class MetaRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str | None = None
    action: str | None = None  # true when the starting action is this one, else the flow's default
    as_: str = Field("str", alias="as")


class StartAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    if_: list[str] = Field(default_factory=list, alias="if")
    unless: list[str] = Field(default_factory=list)
    hidden: bool = False  # accepted, never listed in action_possible
    message: str = ""


class StateView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str | None  # None: the starting action stays the last action
    message: str = ""
    possible: list[str] = Field(default_factory=list)


class Flux(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    nom: str
    type: str
    flow: str
    fields: dict[str, FieldDef]
    metadata: dict[str, MetaRule]
    start: dict[str, StartAction]
    results: dict[str, list[str]]  # Pastell file field -> dematbus roles ("@document": the uploaded file)
    data: dict[str, dict[str, Any]] = Field(default_factory=dict)
    states: dict[str, StateView]
    # Documents deposited natively on `flow` (`/api/v1`, CLI, watched folder) show as this flux.
    native: bool = False
    # The préfecture's letters: message type ("3-1") -> the prefix of its fields (courriers.py)
    courriers: dict[str, str] = Field(default_factory=dict)

    def file_fields(self) -> list[str]:
        return [k for k, f in self.fields.items() if f.type == "file"]

    def title_field(self) -> str | None:
        return next((k for k, f in self.fields.items() if f.title), None)

    def state_view(self, state: str, stage: str | None) -> StateView:
        return self.states.get(f"{state}@{stage}") or self.states.get(state) or StateView(action=state)

    def validate_form(self, fields: dict[str, str], files: dict[str, list[Any]]) -> str:
        """Pastell's validation message; empty when the form is complete."""
        for key, spec in self.fields.items():
            if spec.read_only:
                continue
            present = bool(files.get(key)) if spec.type == "file" else bool(str(fields.get(key, "")).strip())
            if spec.requis and not present:
                return f"Le formulaire est incomplet : le champ «{spec.name or key}» est obligatoire."
            if present and spec.preg_match and not re.search(spec.preg_match, str(fields[key])):
                return f"Le champ «{spec.name or key}» est incorrect ({spec.preg_match})"
        return ""

    def listed_starts(self, fields: dict[str, str]) -> list[str]:
        out = []
        for action, rule in self.start.items():
            if rule.hidden:
                continue
            if rule.if_ and not any(is_true(fields.get(f)) for f in rule.if_):
                continue
            if any(is_true(fields.get(f)) for f in rule.unless):
                continue
            out.append(action)
        return out

    def to_metadata(self, fields: dict[str, str], action: str) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        for key, rule in self.metadata.items():
            if rule.action is not None:
                if action == rule.action:  # otherwise the flow's default applies
                    meta[key] = True
                continue
            raw = fields.get(rule.field or key)
            if raw is None or str(raw).strip() == "":
                continue
            meta[key] = convert(str(raw), rule.as_)
        return meta


    def from_metadata(self, meta: dict[str, Any]) -> dict[str, str]:
        """The Pastell fields of a natively deposited document (`to_metadata` the other way)."""
        fields: dict[str, str] = {}
        for key, rule in self.metadata.items():
            value = meta.get(key)
            if rule.action is not None or value is None or value is False:
                continue
            fields[rule.field or key] = (json.dumps(value) if isinstance(value, list)
                                         else "1" if value is True else str(value))
        return fields

    def native_start(self, meta: dict[str, Any]) -> str:
        """The starting action a natively deposited document went through."""
        for key, rule in self.metadata.items():
            if rule.action is not None and meta.get(key):
                return rule.action
        return next(a for a, r in self.start.items() if not r.hidden and not r.if_)


def is_true(value: Any) -> bool:
    return str(value or "").strip().lower() in TRUE


def convert(raw: str, kind: str) -> Any:
    raw = raw.strip()
    if kind == "int":
        return int(raw) if raw.isdigit() else raw
    if kind == "bool":
        return is_true(raw)
    if kind == "code":  # "2.1 Marchés publics" -> "2.1"
        return raw.split()[0]
    if kind == "list":
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            return [raw]
        return value if isinstance(value, list) else [value]
    if kind == "date":
        return _iso_date(raw)
    return raw


def _iso_date(raw: str) -> str:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(raw, fmt).date().isoformat()
        except ValueError:
            continue
    try:
        return date.fromisoformat(raw[:10]).isoformat()
    except ValueError:
        return raw


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in child.items():
        out[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def _raw(flux_id: str) -> dict[str, Any]:
    path = FLUX_DIR / f"{flux_id}.yaml"
    if not path.is_file():
        raise KeyError(flux_id)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    parent = raw.pop("extends", None)
    if not parent:
        return raw
    base = _raw(parent)
    base.pop("native", None)  # one flux shows a flow's native documents: never inherited
    return _merge(base, raw)


@cache
def load_flux(flux_id: str) -> Flux:
    return Flux.model_validate(_raw(flux_id))


def flux_ids() -> list[str]:
    return sorted(p.stem for p in FLUX_DIR.glob("*.yaml"))


@cache
def native_flux() -> dict[str, Flux]:
    """dematbus flow -> the flux its natively deposited documents show as."""
    out: dict[str, Flux] = {}
    for flux_id in flux_ids():
        flux = load_flux(flux_id)
        if flux.native:
            assert flux.flow not in out, f"two flux show the native documents of {flux.flow}"
            out[flux.flow] = flux
    return out
