"""A collectivité's connector configuration, typed: the one way to read or change the JSON of
`collectivites.connectors`.

It holds one connector configuration per slot (connectors/config.py: "tdt", "signature", "sae"…,
the `connector` a stage of bus/flows/<flow>.yaml names) and, under `flows`, the collectivité's
options per flow (`signature_default` for helios, `teletransmission` for rh-contrat, `publication`
for actes…; a stage's `enabled_by: "option:<key>"` reads them). A configuration is checked when it
is written; what the store holds is therefore one the registry can build connectors from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.config import InvalidConnectorConfig, parse_connector

FLOWS = "flows"


class HasConnectors(Protocol):
    connectors: dict[str, Any]


@dataclass(frozen=True)
class ConnectorsConfig:
    slots: dict[str, dict[str, Any]] = field(default_factory=dict)
    flows: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: dict[str, Any] | None, *, check: bool = True) -> ConnectorsConfig:
        """The configuration in `raw` (a collectivité's JSON); `check` validates every slot
        (InvalidConnectorConfig names the first wrong one)."""
        raw = dict(raw or {})
        flows = raw.pop(FLOWS, None) or {}
        if not isinstance(flows, dict) or not all(isinstance(v, dict) for v in flows.values()):
            raise InvalidConnectorConfig("flows: an object of per-flow options")
        slots: dict[str, dict[str, Any]] = {}
        for slot, cfg in raw.items():
            if not isinstance(cfg, dict):
                raise InvalidConnectorConfig(f"{slot}: a connector configuration is an object")
            if check:
                try:
                    parse_connector(cfg)
                except InvalidConnectorConfig as exc:
                    raise InvalidConnectorConfig(f"{slot}: {exc}") from None
            slots[slot] = dict(cfg)
        return cls(slots, {flow: dict(options) for flow, options in flows.items()})

    def to_json(self) -> dict[str, Any]:
        return {**{slot: dict(cfg) for slot, cfg in self.slots.items()},
                **({FLOWS: {f: dict(o) for f, o in self.flows.items()}} if self.flows else {})}

    def has(self, slot: str) -> bool:
        return slot in self.slots

    def slot(self, slot: str) -> dict[str, Any]:
        """The options of a slot's connector ({} when the slot is empty)."""
        return dict(self.slots.get(slot) or {})

    def flow_options(self, flow: str) -> dict[str, Any]:
        return dict(self.flows.get(flow) or {})

    def with_slot(self, slot: str, cfg: dict[str, Any] | None) -> ConnectorsConfig:
        """A copy with `slot` set to `cfg` (checked), or emptied when `cfg` is None."""
        slots = {k: v for k, v in self.slots.items() if k != slot}
        if cfg is not None:
            try:
                parse_connector(cfg)
            except InvalidConnectorConfig as exc:
                raise InvalidConnectorConfig(f"{slot}: {exc}") from None
            slots[slot] = dict(cfg)
        return ConnectorsConfig(slots, self.flows)

    def with_flow_options(self, flow: str, options: dict[str, Any]) -> ConnectorsConfig:
        return ConnectorsConfig(self.slots, {**self.flows, flow: dict(options)})


def connectors_of(coll: HasConnectors | None) -> ConnectorsConfig:
    """What a stored collectivité is configured with (checked when it was written)."""
    return ConnectorsConfig.parse(coll.connectors if coll is not None else None, check=False)


def store_connectors(coll: HasConnectors, config: ConnectorsConfig) -> None:
    """Write a configuration back (a new dict, so the JSON column sees the change)."""
    coll.connectors = config.to_json()
