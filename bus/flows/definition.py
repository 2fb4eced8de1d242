"""Flow definitions: one YAML file per flow in this folder, loaded into typed models.

A new flow is a new file. The engine reads only these models; flow-specific checks are referred
to by dotted path (`module:attribute`) into `schemas/` or `connectors/`.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

FLOWS_DIR = Path(__file__).parent
STATES = {
    "deposited", "signing", "signed", "transmitting", "transmitted", "acknowledged", "rejected",
    "archiving", "archived", "delivered", "error", "cancelled",
}


class StageDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str  # which runners serve it (topic dematbus.cmd.<kind>): signature, tdt, sae, delivery
    connector: str | None = None  # key of the collectivité's connector configuration; default: kind
    inputs: list[str] = Field(default_factory=lambda: ["*"])
    enabled_by: str | None = None  # metadata key; the stage runs only when it is true
    running: str
    submitted: str | None = None
    done: str
    rejected: str = "rejected"

    @property
    def connector_key(self) -> str:
        return self.connector or self.kind

    def input_roles(self) -> list[list[str]]:
        """Each entry is a list of alternatives, the first present role wins ("a|b")."""
        return [alt.split("|") for alt in self.inputs]


class FlowDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    label: str
    metadata_model: str
    deposit_checks: list[str] = Field(default_factory=list)  # run in order, each refines the metadata
    business_key: str | None = None  # metadata field unique per collectivité within the flow
    max_file_mb: int | None = None  # per-file size limit of the flow (default: settings.max_file_bytes)
    stages: list[StageDefinition]
    terminal: list[str]
    cancellable_stage: str | None = None  # the stage whose acknowledged effect can be cancelled (bus.annulation)
    volume_counts: str | None = None  # `module:function(metadata) -> {name: n}`: extra volumes counted

    def stage(self, name: str) -> StageDefinition:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"flow {self.name} has no stage {name}")

    def enabled_stages(self, metadata: dict[str, Any]) -> list[StageDefinition]:
        return [s for s in self.stages if s.enabled_by is None or bool(metadata.get(s.enabled_by))]

    def next_stage(self, metadata: dict[str, Any], after: str | None) -> StageDefinition | None:
        stages = self.enabled_stages(metadata)
        if after is None:
            return stages[0] if stages else None
        names = [s.name for s in stages]
        i = names.index(after) + 1 if after in names else len(names)
        return stages[i] if i < len(stages) else None

    def is_terminal(self, state: str) -> bool:
        return state in self.terminal


def resolve(dotted: str) -> Any:
    module, _, attr = dotted.partition(":")
    return getattr(importlib.import_module(module), attr)


@cache
def load_flow(name: str) -> FlowDefinition:
    path = FLOWS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise KeyError(name)
    return FlowDefinition.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def flow_names() -> list[str]:
    return sorted(p.stem for p in FLOWS_DIR.glob("*.yaml"))


def stage_kinds() -> list[str]:
    """Every stage kind some flow declares: one command topic and one runner agent each."""
    return sorted({stage.kind for name in flow_names() for stage in load_flow(name).stages})
