"""Collectivités: who may send, with which préfecture classification and which connectors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bus.collectivite_config import ConnectorsConfig, connectors_of, store_connectors
from bus.store.models import Collectivite
from connectors.config import InvalidConnectorConfig
from schemas.actes.classification import Classification, default_classification
from schemas.siren import is_valid_siren

DEPARTEMENT = re.compile(r"^[09][0-9][AB0-9]$")


class InvalidCollectivite(ValueError):
    pass


def simulator_connectors(siren: str, signature: str | None = None, cert_dir: Path | None = None) -> dict[str, Any]:
    """Connector configuration pointing at the embedded simulators (`sim://`)."""
    config: dict[str, Any] = {
        "tdt": {"kind": "s2low", "url": "sim://s2low", "login": siren, "password": f"s2low-{siren}"},
        "tdt_helios": {"kind": "s2low_helios", "url": "sim://s2low", "login": siren, "password": f"s2low-{siren}"},
        "sae": {"kind": "asalae", "url": "sim://asalae", "login": "dematbus", "password": "asalae",
                "archival_agency": "AD000", "transferring_agency": "DEMATBUS", "originating_agency": siren},
    }
    parapheur = {"kind": "iparapheur", "url": "sim://iparapheur", "username": "dematbus",
                 "password": "iparapheur", "tenant": "Collectivités", "desk": "Secrétariat général"}
    # RH: decrees and contracts through the parapheur, payslips sealed and sent to the agents' safes.
    config["signature_rh"] = {**parapheur, "type": "RH", "subtype": "Arrêté individuel"}
    config["signature_rh_contrat"] = {**parapheur, "type": "RH", "subtype": "Contrat de travail"}
    config["delivery"] = {"kind": "coffre", "url": "sim://coffre", "api_key": "coffre-dematbus"}
    # Publication (R2131-1): a local stage, used only by actes asking for it (flows.actes.publication).
    config["publication"] = {"kind": "registre", "url": "public://"}
    if cert_dir is not None:
        config["seal"] = {"kind": "pades_seal", "cert_path": str(cert_dir / "cert.pem"), "key_path": str(cert_dir / "key.pem")}
    if signature == "pades":
        if cert_dir is None:
            raise InvalidCollectivite("a PAdES signature needs a certificate directory")
        keys = {"cert_path": str(cert_dir / "cert.pem"), "key_path": str(cert_dir / "key.pem")}
        config["signature"] = {"kind": "pades", **keys}
        config["signature_helios"] = {"kind": "xades", "role": "Ordonnateur", **keys}
    elif signature == "iparapheur":
        config["signature"] = {**parapheur, "type": "ACTES", "subtype": "Délibération"}
        config["signature_helios"] = {**parapheur, "type": "HELIOS", "subtype": "PES"}
    # Per-flow options: a collectivité with a signature connector signs its PES by default.
    config["flows"] = {"helios": {"signature_default": signature is not None},
                       "rh-contrat": {"teletransmission": False}}  # contracts go to the préfecture only if set
    return config


async def add_collectivite(session: AsyncSession, *, siren: str, name: str, departement: str,
                           arrondissement: str = "0", nature_code: str = "31",
                           classification_xml: bytes | None = None,
                           connectors: dict[str, Any] | None = None) -> Collectivite:
    if not is_valid_siren(siren):
        raise InvalidCollectivite(f"invalid SIREN {siren!r}: 9 digits with a valid Luhn check digit")
    if not DEPARTEMENT.match(departement):
        raise InvalidCollectivite(f"invalid département {departement!r}: 3 characters such as 034, 02A, 971")
    if not re.fullmatch(r"\d", arrondissement):
        raise InvalidCollectivite(f"invalid arrondissement {arrondissement!r}: one digit")
    if not re.fullmatch(r"\d{2}", nature_code):
        raise InvalidCollectivite(f"invalid authority nature code {nature_code!r}: two digits (31 commune…)")
    classification_xml = classification_xml or default_classification()
    classification = Classification.parse(classification_xml)
    existing = await session.get(Collectivite, siren)
    coll = existing or Collectivite(siren=siren)
    coll.name, coll.departement, coll.arrondissement, coll.nature_code = name, departement, arrondissement, nature_code
    coll.classification_xml = classification_xml
    coll.classification_date = classification.date
    try:
        wanted = ConnectorsConfig.parse(connectors if connectors is not None
                                        else (coll.connectors or simulator_connectors(siren)))
    except InvalidConnectorConfig as exc:
        raise InvalidCollectivite(f"invalid connector configuration: {exc}") from None
    if existing is not None:
        # Updating a collectivité keeps the options it was given since (publication…) unless restated.
        kept = connectors_of(existing)
        wanted = ConnectorsConfig(wanted.slots, {flow: {**kept.flow_options(flow), **wanted.flow_options(flow)}
                                                 for flow in {*kept.flows, *wanted.flows}})
    store_connectors(coll, wanted)
    if existing is None:
        session.add(coll)
    await session.flush()
    return coll
