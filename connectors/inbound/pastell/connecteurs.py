"""Connectors as Pastell shows them, and the one place the Pastell API reads or writes a
collectivité's connector configuration (`collectivites.connectors`).

dematbus configures a collectivité with one entry per *slot*: the key a flow stage reads
(`tdt`, `tdt_helios`, `signature`, `signature_helios`, `sae`, …, see `bus/flows/*.yaml`), holding
`{"kind": <connector>, …options}`. Pastell has connector instances (`id_ce`) of an implementation
(`id_connecteur`) in a family (`type`), tied to flux by associations. Here an instance is a slot's
entry; an instance that serves no flux yet keeps its options aside (`PastellConnecteur.parked`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from bus.collectivite_config import connectors_of, store_connectors
from bus.flows.definition import flow_names, load_flow
from bus.store.models import Collectivite
from connectors.config import InvalidConnectorConfig, Option, options_of
from connectors.inbound.pastell.errors import PastellError

MASK = "********"
STAGE_FAMILY = {"signature": "signature", "tdt": "TdT", "sae": "SAE", "seal": "cachet", "delivery": "coffre"}


@dataclass(frozen=True)
class Implementation:
    """A dematbus connector offered under a Pastell `id_connecteur`."""

    id_connecteur: str
    nom: str
    family: str
    kinds: dict[str, str]  # slot -> dematbus kind; "*" for any slot of the family

    def kind_for(self, slot: str) -> str:
        return self.kinds.get(slot) or self.kinds["*"]

    @property
    def options(self) -> dict[str, Option]:
        """The options of its connector kinds (connectors/config.py), in their declared order."""
        return {o.name: o for kind in dict.fromkeys(self.kinds.values()) for o in options_of(kind)}

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.options)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(n for n, o in self.options.items() if o.secret)

    @property
    def lists(self) -> tuple[str, ...]:  # options holding a list of values (`types[]=…`)
        return tuple(n for n, o in self.options.items() if o.many)

    @property
    def paths(self) -> tuple[str, ...]:  # files on the server: shown, set with the dematbus command line only
        return tuple(n for n, o in self.options.items() if o.server_path)

    def describe(self) -> dict[str, Any]:
        return {"id_connecteur": self.id_connecteur, "name": self.nom, "type": self.family,
                "description": f"{self.nom} ({', '.join(sorted(set(self.kinds.values())))})",
                "formulaire": {name: {"name": name, "type": "password" if name in self.secrets else "text",
                                      **({"read-only": True} if name in self.paths else {})}
                               for name in self.fields}}


IMPLEMENTATIONS = (
    Implementation("s2low", "S²low", "TdT", {"tdt_helios": "s2low_helios", "*": "s2low"}),
    Implementation("iParapheur", "i-Parapheur", "signature", {"*": "iparapheur"}),
    Implementation("signature-locale", "Signature avec le certificat du serveur", "signature",
                   {"signature_helios": "xades", "*": "pades"}),
    Implementation("as@lae-rest", "As@lae", "SAE", {"*": "asalae"}),
    Implementation("coffre", "Coffre-fort numérique des agents", "coffre", {"*": "coffre"}),
    Implementation("cachet-serveur", "Cachet électronique (PAdES)", "cachet", {"*": "pades_seal"}),
)
BY_ID = {i.id_connecteur: i for i in IMPLEMENTATIONS}


def implementation(id_connecteur: str) -> Implementation:
    found = BY_ID.get(id_connecteur)
    if found is None:
        raise PastellError(400, f"Aucun connecteur du type « {id_connecteur} »")
    return found


def implementation_of_kind(kind: str) -> Implementation | None:
    return next((i for i in IMPLEMENTATIONS if kind in i.kinds.values()), None)


def families() -> list[str]:
    return sorted({i.family for i in IMPLEMENTATIONS})


@cache
def slot_families() -> dict[str, str]:
    """slot -> Pastell family, for every slot a flow stage reads."""
    out: dict[str, str] = {}
    for name in flow_names():
        for stage in load_flow(name).stages:
            out.setdefault(stage.connector_key, STAGE_FAMILY.get(stage.kind, stage.kind))
    return out


def slot_for(flow: str, family: str) -> str | None:
    """The slot the flow's stage of that family reads."""
    for stage in load_flow(flow).stages:
        if STAGE_FAMILY.get(stage.kind, stage.kind) == family:
            return stage.connector_key
    return None


def flow_families(flow: str) -> list[str]:
    return list(dict.fromkeys(STAGE_FAMILY.get(s.kind, s.kind) for s in load_flow(flow).stages))


# -- the collectivité's configuration ------------------------------------------------------------

def configured_slots(coll: Collectivite) -> dict[str, dict[str, Any]]:
    return {slot: cfg for slot, cfg in connectors_of(coll).slots.items() if cfg.get("kind")}


def slot_config(coll: Collectivite, slot: str) -> dict[str, Any]:
    return connectors_of(coll).slot(slot)


def put_slot(coll: Collectivite, slot: str, config: dict[str, Any]) -> None:
    """Set a slot, checked like every configuration written (connectors/config.py)."""
    try:
        store_connectors(coll, connectors_of(coll).with_slot(slot, config))
    except InvalidConnectorConfig as exc:
        raise PastellError(400, f"Configuration du connecteur incomplète ou invalide : {exc}") from None


def take_slot(coll: Collectivite, slot: str) -> dict[str, Any]:
    config = connectors_of(coll)
    store_connectors(coll, config.with_slot(slot, None))
    return config.slot(slot)


def signature_config(coll: Collectivite) -> dict[str, Any]:
    """The signature connector documents of the ACTES and PDF flux go through."""
    return slot_config(coll, "signature")


# -- content as Pastell shows and edits it ---------------------------------------------------

def is_secret(name: str, impl: Implementation | None) -> bool:
    """An implementation's secrets, and whatever looks like one (`…_env` names a variable)."""
    if impl is not None and name in impl.secrets:
        return True
    return any(word in name for word in ("password", "secret", "api_key", "token")) and not name.endswith("_env")


def masked(config: dict[str, Any], impl: Implementation | None) -> dict[str, Any]:
    return {k: (MASK if v and is_secret(k, impl) else v) for k, v in config.items() if k != "kind"}


def edited(config: dict[str, Any], impl: Implementation, values: dict[str, str],
           lists: dict[str, list[str]]) -> dict[str, Any]:
    """The options once a `PATCH …/content` is applied: fields of the implementation only (others
    ignored, as Pastell does), a masked secret sent back unchanged keeps its value, an empty value
    removes the option."""
    out = dict(config)
    for name in impl.fields:
        if name in impl.lists and name in lists:
            out[name] = [v for v in lists[name] if v]
            continue
        if name not in values:
            continue
        if name in impl.paths:
            raise PastellError(400, f"Le champ {name} désigne un fichier du serveur : il se règle avec la "
                                    f"commande dematbus collectivite, pas par l'API")
        value = values[name]
        if value == MASK and is_secret(name, impl):
            continue
        if value == "":
            out.pop(name, None)
        else:
            out[name] = value
    url = out.get("url")
    if url and not str(url).startswith(("http://", "https://", "sim://")):
        raise PastellError(400, f"L'URL {url} doit commencer par http:// ou https://")
    return out
