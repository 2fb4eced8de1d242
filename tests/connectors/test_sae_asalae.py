"""AsalaeConnector against the As@lae simulator running as a real HTTP server."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import httpx
import pytest

from connectors.base import (
    Collectivite,
    ConnectorError,
    InputFile,
    PermanentConnectorError,
    StageJob,
)
from connectors.sae.asalae import AsalaeConnector
from schemas.seda.transfer import (
    parse_archive_transfer,
    parse_transfer_reply,
    validate_seda21,
)
from schemas.xml import validate

COLLECTIVITE = Collectivite(siren="210600235", name="Commune A", departement="006", arrondissement="2", nature_code="31")


def job(reference: str = "doc-1-sae-1") -> StageJob:
    return StageJob(
        document_id="doc-1", reference=reference, flow="actes", stage="sae", collectivite=COLLECTIVITE,
        metadata={"objet": "Délibération budget", "date_decision": "2024-04-30", "numero_interne": "DEL1",
                  "id_acte": "006-210600235-20240430-DEL1-DE", "classification": "7.1.2", "nature": 1},
        files=[
            InputFile(name="deliberation.pdf", role="document", data=b"%PDF-1.4 depot"),
            InputFile(name="deliberation.pdf", role="signed_document", data=b"%PDF-1.4 signe"),
            InputFile(name="SLO-EACT--210600235--20240502-1.tar.gz", role="tdt_archive", data=b"\x1f\x8b tar",
                      media_type="application/gzip"),
            InputFile(name="006-210600235-20240430-DEL1-DE-1-2_1.xml", role="aracte", data=b"<ARActe/>",
                      media_type="application/xml"),
        ],
    )


def admin(server, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, server.base_url + path, **kwargs)
    response.raise_for_status()
    return response.json()


@pytest.fixture
async def connector_for():
    made: list[AsalaeConnector] = []

    def make(server, password: str = "pastell", timeout: float = 10.0, originating: str = "210600235") -> AsalaeConnector:
        connector = AsalaeConnector(server.base_url, "pastell", password, archival_agency="FRAD006",
                                    transferring_agency="210600235", originating_agency=originating,
                                    archival_agreement="ACCORD-ACTES", timeout=timeout)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.aclose()


async def test_transfer_is_valid_seda_and_archived(start_asalae, connector_for) -> None:
    server = start_asalae(reply_delay=120)
    connector = connector_for(server)
    the_job = job()
    assert await connector.lookup(the_job) is None
    remote_id, outputs = await connector.submit(the_job)
    assert remote_id == the_job.reference
    [bordereau] = outputs
    assert bordereau.role == "seda_transfer" and bordereau.name == "doc-1-sae-1-seda.xml"
    validate_seda21(bordereau.data)
    validate("seda21", bordereau.data)
    info = parse_archive_transfer(bordereau.data)
    assert info["message_identifier"] == "doc-1-sae-1" and len(info["files"]) == 4
    assert len({f["filename"] for f in info["files"]}) == 4  # same-named files made unique

    assert await connector.lookup(the_job) == the_job.reference
    assert (await connector.poll(the_job, remote_id)).status == "pending"
    admin(server, "POST", "/_admin/clock/advance", json={"seconds": 120})
    result = await connector.poll(the_job, remote_id)
    assert result.status == "done"
    assert result.fields == {"archive_identifier": "AE_2024_1", "reply_code": "000"}
    assert [f.role for f in result.files] == ["seda_reply"]
    validate_seda21(result.files[0].data)
    assert admin(server, "GET", "/_admin/transfers")["duplicates"] == 0


async def test_attachment_is_a_tar_gz_of_all_files(connector_for, start_asalae) -> None:
    connector = connector_for(start_asalae())
    bordereau, attachment = connector.build_transfer(job())
    with tarfile.open(fileobj=io.BytesIO(attachment)) as tar:
        names = tar.getnames()
    assert names == [f["filename"] for f in parse_archive_transfer(bordereau)["files"]]


async def test_refusal_101(start_asalae, connector_for) -> None:
    server = start_asalae(refuse_originating_agencies=["^999"])
    connector = connector_for(server, originating="999000001")
    remote_id, _ = await connector.submit(job())
    result = await connector.poll(job(), remote_id)
    assert result.status == "rejected"
    assert result.reason is not None and result.reason.startswith("101 - Transfert refusé")
    assert result.fields["reply_code"] == "101"
    assert parse_transfer_reply(result.files[0].data)["reply_code"] == "101"


async def test_wrong_password_is_401_permanent(start_asalae, connector_for) -> None:
    server = start_asalae()
    connector = connector_for(server, password="wrong")
    with pytest.raises(PermanentConnectorError, match="401"):
        await connector.submit(job())
    with pytest.raises(PermanentConnectorError):
        await connector.lookup(job())


async def test_500_then_success_without_duplicate(start_asalae, connector_for) -> None:
    server = start_asalae()
    connector = connector_for(server)
    admin(server, "POST", "/_admin/faults", json={"fail_next": 1, "endpoint": "sedaMessages"})
    with pytest.raises(ConnectorError) as info:
        await connector.submit(job())
    assert not isinstance(info.value, PermanentConnectorError)
    assert await connector.lookup(job()) is None
    await connector.submit(job())
    assert (await connector.poll(job(), job().reference)).status == "done"
    view = admin(server, "GET", "/_admin/transfers")
    assert view["duplicates"] == 0 and len(view["transfers"]) == 1


async def test_lost_answer_found_by_lookup_and_resubmit_tolerated(start_asalae, connector_for) -> None:
    server = start_asalae()
    connector = connector_for(server, timeout=0.5)
    admin(server, "POST", "/_admin/faults", json={"timeout_next": 1, "timeout_seconds": 2})
    with pytest.raises(ConnectorError):
        await connector.submit(job())
    assert await connector.lookup(job()) == job().reference
    # a runner that resubmits anyway gets the same reference back, counted as a duplicate
    remote_id, _ = await connector.submit(job())
    assert remote_id == job().reference
    assert admin(server, "GET", "/_admin/transfers")["duplicates"] == 1


async def test_malformed_reply_is_retryable(start_asalae, connector_for) -> None:
    server = start_asalae()
    connector = connector_for(server)
    await connector.submit(job())
    admin(server, "POST", "/_admin/faults", json={"malformed_next": 1})
    with pytest.raises(ConnectorError) as info:
        await connector.poll(job(), job().reference)
    assert not isinstance(info.value, PermanentConnectorError)
    assert (await connector.poll(job(), job().reference)).status == "done"
