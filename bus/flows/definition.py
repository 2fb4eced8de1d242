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
from pydantic import BaseModel, ConfigDict, Field, computed_field

FLOWS_DIR = Path(__file__).parent
DEPOSITED = "deposited"  # every document's first state
CANCELLED = "cancelled"  # where an acknowledged annulation takes a document (bus.annulation)
ERROR = "error"  # a stage failed after its last attempt: an operator replays it
OPTION_PREFIX = "option:"  # enabled_by "option:<key>": the collectivité's option for this flow


class StageDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str  # which runners serve it (topic dematbus.cmd.<kind>): signature, tdt, publication, sae, delivery
    connector: str | None = None  # key of the collectivité's connector configuration; default: kind
    inputs: list[str] = Field(default_factory=lambda: ["*"])
    # Metadata key, or "option:<key>" for the collectivité's option of this flow (its
    # `connectors.flows.<flow>` settings); the stage runs only when it is true.
    enabled_by: str | None = None
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
    # Personal data: files sealed at rest with the collectivité's key, readable only with read_role.
    encrypted: bool = False
    read_role: str | None = None
    # A batch flow takes a manifest and many files; dotted path of its manifest reader.
    batch: str | None = None
    cancellable_stage: str | None = None  # the stage whose acknowledged effect can be cancelled (bus.annulation)
    # The stage whose acknowledged transmission the préfecture writes about afterwards (bus.courriers).
    courriers_stage: str | None = None
    volume_counts: str | None = None  # `module:function(metadata) -> {name: n}`: extra volumes counted

    def stage(self, name: str) -> StageDefinition:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"flow {self.name} has no stage {name}")

    @property
    def reads_options(self) -> bool:
        return any((s.enabled_by or "").startswith(OPTION_PREFIX) for s in self.stages)

    def enabled_stages(self, metadata: dict[str, Any], options: dict[str, Any] | None = None) -> list[StageDefinition]:
        def enabled(flag: str | None) -> bool:
            if flag is None:
                return True
            if flag.startswith(OPTION_PREFIX):
                return bool((options or {}).get(flag.removeprefix(OPTION_PREFIX)))
            return bool(metadata.get(flag))

        return [s for s in self.stages if enabled(s.enabled_by)]

    def next_stage(self, metadata: dict[str, Any], after: str | None,
                   options: dict[str, Any] | None = None) -> StageDefinition | None:
        stages = self.enabled_stages(metadata, options)
        if after is None:
            return stages[0] if stages else None
        names = [s.name for s in stages]
        i = names.index(after) + 1 if after in names else len(names)
        return stages[i] if i < len(stages) else None

    def is_terminal(self, state: str) -> bool:
        return state in self.terminal

    def annulable_states(self) -> set[str]:
        """The states of a document whose cancellable stage is done (bus.annulation): that stage's
        `done`, and every state of the stages after it (ACTES: acknowledged, archiving, archived)."""
        if self.cancellable_stage is None:
            return set()
        names = [s.name for s in self.stages]
        index = names.index(self.cancellable_stage)
        states = {self.stages[index].done}
        for stage in self.stages[index + 1:]:
            states |= {stage.running, stage.done} | ({stage.submitted} if stage.submitted else set())
        return states - {ERROR, "rejected", CANCELLED}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def states(self) -> list[str]:
        """Every state a document of this flow can be in, in the order the stages reach them."""
        found = [DEPOSITED]
        for stage in self.stages:
            found += [stage.running, *([stage.submitted] if stage.submitted else []), stage.done, stage.rejected]
        found += [*self.terminal, ERROR]
        return list(dict.fromkeys(found))


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


def all_states() -> list[str]:
    """Every state of every flow (the labels of metrics and of the console's filters)."""
    return list(dict.fromkeys(state for name in flow_names() for state in load_flow(name).states))


def terminal_by_flow() -> dict[str, list[str]]:
    """Each flow's terminal states: a document resting in one of them moves no more."""
    return {name: list(load_flow(name).terminal) for name in flow_names()}


def stage_kinds() -> list[str]:
    """Every stage kind some flow declares: one command topic and one runner agent each."""
    return sorted({stage.kind for name in flow_names() for stage in load_flow(name).stages})
