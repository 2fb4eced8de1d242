"""Builds the connector a collectivité is configured with, for one stage kind.

A collectivité's configuration holds, per stage kind, `{"kind": "<connector>", ...options}`.
A URL of the form `sim://<name>` points at the embedded simulators (`dematbus up`), one of the
form `public://<path>` at the bus's public address (`DEMATBUS_PUBLIC_URL`: the publication registry).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from connectors.base import PermanentConnectorError, StageConnector


def _s2low(cfg: dict[str, Any], timeout: float) -> StageConnector:
    from connectors.tdt.s2low import S2lowConnector

    return S2lowConnector(cfg["url"], cfg.get("login", ""), cfg.get("password", ""), timeout=timeout,
                          trigramme=cfg.get("trigramme", "DMB"), quadrigramme=cfg.get("quadrigramme", "EACT"),
                          return_email=cfg.get("return_email", "actes@dematbus.local"))


def _s2low_helios(cfg: dict[str, Any], timeout: float) -> StageConnector:
    from connectors.tdt.s2low_helios import S2lowHeliosConnector

    return S2lowHeliosConnector(cfg["url"], cfg.get("login", ""), cfg.get("password", ""), timeout=timeout)


def _xades(cfg: dict[str, Any], timeout: float) -> StageConnector:
    from pathlib import Path

    from connectors.signature.xades import XadesConnector

    return XadesConnector(Path(cfg["cert_path"]), Path(cfg["key_path"]), role=cfg.get("role", "Ordonnateur"),
                          password_env=cfg.get("password_env"))


def _asalae(cfg: dict[str, Any], timeout: float) -> StageConnector:
    from connectors.sae.asalae import AsalaeConnector

    return AsalaeConnector(
        cfg["url"], cfg.get("login", ""), cfg.get("password", ""),
        archival_agency=cfg.get("archival_agency", "ARCHIVES"),
        transferring_agency=cfg.get("transferring_agency", "DEMATBUS"),
        originating_agency=cfg["originating_agency"],
        archival_agreement=cfg.get("archival_agreement"),
        timeout=timeout,
        lookup_not_found_status=int(cfg.get("lookup_not_found_status", 404)),
        lookup_not_found_text=cfg.get("lookup_not_found_text"),
    )


def _pades(cfg: dict[str, Any], timeout: float) -> StageConnector:
    from pathlib import Path

    from connectors.signature.pades import PadesConnector

    return PadesConnector(Path(cfg["cert_path"]), Path(cfg["key_path"]))


def _iparapheur(cfg: dict[str, Any], timeout: float) -> StageConnector:
    from connectors.signature.iparapheur import IparapheurConnector

    return IparapheurConnector(
        cfg["url"], cfg["username"], cfg["password"], cfg.get("tenant", "default"), cfg.get("desk", "signature"),
        cfg.get("type", "ACTES"), cfg.get("subtype", "DELIBERATION"), timeout=timeout,
    )


def _seal(cfg: dict[str, Any], timeout: float) -> StageConnector:
    from pathlib import Path

    from connectors.signature.seal import SealConnector

    return SealConnector(Path(cfg["cert_path"]), Path(cfg["key_path"]))


def _coffre(cfg: dict[str, Any], timeout: float) -> StageConnector:
    from connectors.delivery.coffre import CoffreConnector

    return CoffreConnector(cfg["url"], cfg.get("api_key", ""), document_type=cfg.get("document_type", "bulletin_de_paie"),
                           recipient_field=cfg.get("recipient_field", "coffre"), timeout=timeout)


def _registre(cfg: dict[str, Any], timeout: float) -> StageConnector:
    from connectors.publication.connector import PublicationConnector

    return PublicationConnector(cfg["url"])


FACTORIES: dict[str, Callable[[dict[str, Any], float], StageConnector]] = {
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
        self._cache: dict[str, StageConnector] = {}

    def resolve_url(self, url: str) -> str:
        if url.startswith("sim://"):
            return f"{self.simulators_url}/{url.removeprefix('sim://')}"
        if url.startswith("public://"):
            if not self.public_url:
                raise PermanentConnectorError("a public:// URL needs the bus's public address (DEMATBUS_PUBLIC_URL)")
            return f"{self.public_url}/{url.removeprefix('public://')}"
        return url

    def get(self, connector_key: str, connectors_config: dict[str, Any]) -> StageConnector:
        """`connector_key` names an entry of the collectivité's configuration ("tdt", "tdt_helios"…)."""
        cfg = dict(connectors_config.get(connector_key) or {})
        if not cfg:
            raise PermanentConnectorError(f"no {connector_key} connector configured for this collectivité")
        if "url" in cfg:
            cfg["url"] = self.resolve_url(cfg["url"])
        key = json.dumps(cfg, sort_keys=True)
        if key not in self._cache:
            factory = FACTORIES.get(cfg.get("kind", ""))
            if factory is None:
                raise PermanentConnectorError(f"unknown {connector_key} connector {cfg.get('kind')!r}")
            self._cache[key] = factory(cfg, self.timeout)
        return self._cache[key]

    async def aclose(self) -> None:
        for connector in self._cache.values():
            await connector.aclose()
        self._cache.clear()
