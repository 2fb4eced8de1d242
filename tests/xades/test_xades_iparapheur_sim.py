"""The i-Parapheur simulator XAdES-signs the PES main document of a HELIOS folder."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from connectors.signature.xades import verify_pes
from connectors.simulators.iparapheur import (
    IparapheurSimSettings,
    ParsedPremis,
    Simulator,
)
from schemas import xml as schemas_xml

SAMPLE = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "samples"
    / "pes_aller__PESALR2_25060187900027_190328_001__stela.xml"
)
DS = "http://www.w3.org/2000/09/xmldsig#"


def _unsigned() -> bytes:
    root = etree.fromstring(SAMPLE.read_bytes())
    for sig in root.findall(f".//{{{DS}}}Signature"):
        sig.getparent().remove(sig)
    return b'<?xml version="1.0" encoding="ISO-8859-1"?>' + etree.tostring(
        root.getroottree(), encoding="ISO-8859-1", xml_declaration=False
    )


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    simulator = Simulator(IparapheurSimSettings(data_dir=tmp_path))
    yield simulator
    simulator.close()


def _finished_main(sim: Simulator, type_name: str, subtype: str, name: str, data: bytes) -> bytes:
    tenant = sim.tenants[0]
    parsed = ParsedPremis(
        name=f"dossier-{type_name}",
        type_ref=type_name,
        subtype_ref=subtype,
        due_date=None,
        properties=[],
        files=[(name, True)],
    )
    folder = sim.create_folder(
        tenant.id, tenant.desks[0].id, parsed, {name: (data, "application/xml")}, auto_start=True
    )
    sim.advance(folder)
    assert sim.state(folder) == "FINISHED"
    with zipfile.ZipFile(io.BytesIO(sim.zip(folder))) as archive:
        return archive.read(f"Documents principaux/{name}")


def test_helios_folder_returns_a_xades_signed_pes(sim: Simulator) -> None:
    signed = _finished_main(sim, "HELIOS", "PES", "PESALR2.xml", _unsigned())
    schemas_xml.validate("pes_aller", signed)
    [check] = verify_pes(signed, trusted_cert_pem=sim.cert_path.read_bytes())
    assert check.valid, check.reason
    assert (check.target, check.signer_common_name, check.claimed_role) == (
        "N10025",
        sim.settings.signer_common_name,
        "Ordonnateur",
    )


def test_already_signed_pes_and_non_helios_xml_are_returned_as_uploaded(sim: Simulator) -> None:
    sample = SAMPLE.read_bytes()
    assert _finished_main(sim, "HELIOS", "PES", "PESALR2.xml", sample) == sample
    unsigned = _unsigned()
    assert _finished_main(sim, "ACTES", "Arrêté", "acte.xml", unsigned) == unsigned
