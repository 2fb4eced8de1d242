"""The typed configuration of each outbound connector kind.

A collectivité's connector configuration (`collectivites.connectors`, see bus/collectivite_config.py)
holds, per slot ("tdt", "signature", "sae"…), one of these objects as JSON:
`{"kind": "s2low", "url": "https://…", "login": …}`. They are checked when the configuration is
written (CLI, Pastell API, demo) and read back typed by the registry (connectors/registry.py):
an unknown option or a missing one is refused there, not discovered at the first document.

A URL may be `sim://<name>` (the embedded simulators of `dematbus up`) or `public://<path>` (the
bus's public address, `DEMATBUS_PUBLIC_URL`).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class _Connector(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class S2lowConfig(_Connector):
    """S²low, ACTES (connectors/tdt/s2low.py)."""

    kind: Literal["s2low"]
    url: str
    login: str = ""
    password: str = ""
    trigramme: str = "DMB"  # the TdT's code in archive names (docs/protocols.md §1.3)
    quadrigramme: str = "EACT"
    return_email: str = "actes@dematbus.local"  # the TdT's own AdressesRetour mailbox


class S2lowHeliosConfig(_Connector):
    """S²low, HELIOS (connectors/tdt/s2low_helios.py)."""

    kind: Literal["s2low_helios"]
    url: str
    login: str = ""
    password: str = ""


class AsalaeConfig(_Connector):
    """As@lae REST (connectors/sae/asalae.py)."""

    kind: Literal["asalae"]
    url: str
    login: str = ""
    password: str = ""
    archival_agency: str = "ARCHIVES"
    transferring_agency: str = "DEMATBUS"
    originating_agency: str
    archival_agreement: str | None = None
    # How this As@lae answers a lookup of a transfer it never received (not documented anywhere).
    lookup_not_found_status: int = 404
    lookup_not_found_text: str | None = None


class IparapheurConfig(_Connector):
    """i-Parapheur v5 REST (connectors/signature/iparapheur.py)."""

    kind: Literal["iparapheur"]
    url: str
    username: str
    password: str
    tenant: str = "default"
    desk: str = "signature"
    type: str = "ACTES"
    subtype: str = "DELIBERATION"
    # The circuits offered to depositors (console, Pastell externalData); `type`/`subtype` by default.
    types: list[str] = Field(default_factory=list)
    subtypes: list[str] = Field(default_factory=list)


class _LocalKey(_Connector):
    cert_path: str
    key_path: str


class PadesConfig(_LocalKey):
    """PAdES signature with the collectivité's certificate (connectors/signature/pades.py)."""

    kind: Literal["pades"]


class XadesConfig(_LocalKey):
    """XAdES signature of PES files, DGFiP profile (connectors/signature/xades.py)."""

    kind: Literal["xades"]
    role: str = "Ordonnateur"
    password_env: str | None = None  # the environment variable holding a PKCS#12 keystore's password


class SealConfig(_LocalKey):
    """PAdES e-seal of payslips (connectors/signature/seal.py)."""

    kind: Literal["pades_seal"]


class CoffreConfig(_Connector):
    """The agents' digital safe (connectors/delivery/coffre.py)."""

    kind: Literal["coffre"]
    url: str
    api_key: str = ""
    document_type: str = "bulletin_de_paie"
    recipient_field: str = "coffre"


class RegistreConfig(_Connector):
    """The public registry of published actes (connectors/publication/connector.py)."""

    kind: Literal["registre"]
    url: str = "public://"


ConnectorConfig = Annotated[
    S2lowConfig | S2lowHeliosConfig | AsalaeConfig | IparapheurConfig | PadesConfig | XadesConfig | SealConfig
    | CoffreConfig | RegistreConfig,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ConnectorConfig)
SECRET_OPTIONS = frozenset({"password", "api_key"})  # shown masked wherever a configuration is shown


class InvalidConnectorConfig(ValueError):
    """A connector configuration the registry could not build a connector from."""


def parse_connector(raw: dict[str, Any]) -> Any:
    """The typed configuration of one slot; InvalidConnectorConfig says what is wrong."""
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p not in KINDS)
        raise InvalidConnectorConfig(f"{raw.get('kind', '?')} connector: {where or 'kind'}: {first['msg']}") from None


MODELS: dict[str, type[_Connector]] = {
    model.model_fields["kind"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (S2lowConfig, S2lowHeliosConfig, AsalaeConfig, IparapheurConfig, PadesConfig, XadesConfig,
                  SealConfig, CoffreConfig, RegistreConfig)
}
KINDS = tuple(MODELS)


@dataclass(frozen=True)
class Option:
    name: str
    secret: bool  # shown masked (a password, an API key)
    many: bool  # a list of values
    server_path: bool  # a file on the bus's server (a certificate, a key): set by an administrator


def options_of(kind: str) -> list[Option]:
    """The options a connector kind takes, beyond its `kind`, in their declared order."""
    model = MODELS.get(kind)
    if model is None:
        raise InvalidConnectorConfig(f"unknown connector kind {kind!r}")
    return [Option(name, name in SECRET_OPTIONS, typing.get_origin(info.annotation) is list, name.endswith("_path"))
            for name, info in model.model_fields.items() if name != "kind"]
