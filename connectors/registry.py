"""Builds the connector a collectivité is configured with, for one stage kind.

A collectivité's configuration holds, per slot ("tdt", "signature"…), one typed connector
configuration (connectors/config.py: `{"kind": "<connector>", ...options}`). A URL of the form
`sim://<name>` points at the embedded simulators (`dematbus up`), one of the form `public://<path>`
at the bus's public address (`DEMATBUS_PUBLIC_URL`: the publication registry).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from connectors.base import PermanentConnectorError, StageConnector
from connectors.config import (
    AsalaeConfig,
    CoffreConfig,
    InvalidConnectorConfig,
    IparapheurConfig,
    PadesConfig,
    RegistreConfig,
    S2lowConfig,
    S2lowHeliosConfig,
    SealConfig,
    XadesConfig,
    parse_connector,
)


def _s2low(cfg: S2lowConfig, timeout: float) -> StageConnector:
    from connectors.tdt.s2low import S2lowConnector

    return S2lowConnector(cfg.url, cfg.login, cfg.password, timeout=timeout, trigramme=cfg.trigramme,
                          quadrigramme=cfg.quadrigramme, return_email=cfg.return_email)


def _s2low_helios(cfg: S2lowHeliosConfig, timeout: float) -> StageConnector:
    from connectors.tdt.s2low_helios import S2lowHeliosConnector

    return S2lowHeliosConnector(cfg.url, cfg.login, cfg.password, timeout=timeout)


def _xades(cfg: XadesConfig, timeout: float) -> StageConnector:
    from connectors.signature.xades import XadesConnector

    return XadesConnector(Path(cfg.cert_path), Path(cfg.key_path), role=cfg.role, password_env=cfg.password_env)


def _asalae(cfg: AsalaeConfig, timeout: float) -> StageConnector:
    from connectors.sae.asalae import AsalaeConnector

    return AsalaeConnector(
        cfg.url, cfg.login, cfg.password, archival_agency=cfg.archival_agency,
        transferring_agency=cfg.transferring_agency, originating_agency=cfg.originating_agency,
        archival_agreement=cfg.archival_agreement, timeout=timeout,
        lookup_not_found_status=cfg.lookup_not_found_status, lookup_not_found_text=cfg.lookup_not_found_text,
    )


def _pades(cfg: PadesConfig, timeout: float) -> StageConnector:
    from connectors.signature.pades import PadesConnector

    return PadesConnector(Path(cfg.cert_path), Path(cfg.key_path))


def _iparapheur(cfg: IparapheurConfig, timeout: float) -> StageConnector:
    from connectors.signature.iparapheur import IparapheurConnector

    return IparapheurConnector(cfg.url, cfg.username, cfg.password, cfg.tenant, cfg.desk, cfg.type, cfg.subtype,
                               timeout=timeout)


def _seal(cfg: SealConfig, timeout: float) -> StageConnector:
    from connectors.signature.seal import SealConnector

    return SealConnector(Path(cfg.cert_path), Path(cfg.key_path))


def _coffre(cfg: CoffreConfig, timeout: float) -> StageConnector:
    from connectors.delivery.coffre import CoffreConnector

    return CoffreConnector(cfg.url, cfg.api_key, document_type=cfg.document_type,
                           recipient_field=cfg.recipient_field, timeout=timeout)


def _registre(cfg: RegistreConfig, timeout: float) -> StageConnector:
    from connectors.publication.connector import PublicationConnector

    return PublicationConnector(cfg.url)


FACTORIES: dict[str, Callable[[Any, float], StageConnector]] = {
    "s2low": _s2low,
    "s2low_helios": _s2low_helios,
    "xades": _xades,
    "asalae": _asalae,
    "pades": _pades,
    "iparapheur": _iparapheur,
    "coffre": _coffre,
    "pades_seal": _seal,
    "registre": _registre,
}


class ConnectorRegistry:
    """One connector instance per distinct configuration (they keep HTTP connection pools)."""

    def __init__(self, simulators_url: str, timeout: float = 30.0, public_url: str | None = None) -> None:
        self.simulators_url = simulators_url.rstrip("/")
        self.public_url = (public_url or "").rstrip("/")
        self.timeout = timeout
        self._cache: dict[Any, StageConnector] = {}

    def resolve_url(self, url: str) -> str:
        if url.startswith("sim://"):
            return f"{self.simulators_url}/{url.removeprefix('sim://')}"
        if url.startswith("public://"):
            if not self.public_url:
                raise PermanentConnectorError("a public:// URL needs the bus's public address (DEMATBUS_PUBLIC_URL)")
            return f"{self.public_url}/{url.removeprefix('public://')}"
        return url

    def get(self, connector_key: str, connectors_config: dict[str, Any]) -> StageConnector:
        """`connector_key` names a slot of the collectivité's configuration ("tdt", "tdt_helios"…)."""
        raw = connectors_config.get(connector_key)
        if not raw:
            raise PermanentConnectorError(f"no {connector_key} connector configured for this collectivité")
        try:
            cfg = parse_connector(dict(raw))
        except InvalidConnectorConfig as exc:
            raise PermanentConnectorError(f"{connector_key}: {exc}") from None
        if getattr(cfg, "url", None):
            cfg = cfg.model_copy(update={"url": self.resolve_url(cfg.url)})
        key = (type(cfg), cfg.model_dump_json())
        if key not in self._cache:
            self._cache[key] = FACTORIES[cfg.kind](cfg, self.timeout)
        return self._cache[key]

    async def aclose(self) -> None:
        for connector in self._cache.values():
            await connector.aclose()
        self._cache.clear()
