"""AsalaeConnector against the As@lae simulator running as a real HTTP server.

Facts relied on: Pastell's calls (libriciel/pastell connecteur/as@lae-rest/AsalaeREST.php); the
real server's HTTP 500 "Transfert en cours de traitement" while a reply is pending
(PatPercot/cd56-connecteur-asalae src/main/java/fr/morbihan/patrickpercot/cd56_connecteur_asalae/
AsalaeConnector.java). No public source shows the answer for an unknown transfer, nor the words of
a refused second POST: the connector reads the Acknowledgement back, and its not-found answer is
an option."""

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
from connectors.registry import ConnectorRegistry
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

    def make(server, password: str = "pastell", timeout: float = 10.0, originating: str = "210600235",
             **options: Any) -> AsalaeConnector:
        connector = AsalaeConnector(server.base_url, "pastell", password, archival_agency="FRAD006",
                                    transferring_agency="210600235", originating_agency=originating,
                                    archival_agreement="ACCORD-ACTES", timeout=timeout, **options)
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


async def test_lost_answer_settled_by_the_acknowledgement(start_asalae, connector_for) -> None:
    """The transfer is received but the answer times out: the Acknowledgement read back says it
    got through, so `submit` succeeds without sending it again."""
    server = start_asalae()
    connector = connector_for(server, timeout=1)
    admin(server, "POST", "/_admin/faults", json={"timeout_next": 1, "timeout_seconds": 3})
    remote_id, outputs = await connector.submit(job())
    assert remote_id == job().reference and [o.role for o in outputs] == ["seda_transfer"]
    assert await connector.lookup(job()) == job().reference
    view = admin(server, "GET", "/_admin/transfers")
    assert view["duplicates"] == 0 and len(view["transfers"]) == 1


async def test_a_refused_second_post_is_decided_by_the_acknowledgement(start_asalae, connector_for) -> None:
    """A runner that posts again anyway gets some 400 (whose words the client does not read):
    the Acknowledgement of our MessageIdentifier proves the transfer is there."""
    server = start_asalae()
    connector = connector_for(server)
    await connector.submit(job())
    remote_id, _ = await connector.submit(job())
    assert remote_id == job().reference
    view = admin(server, "GET", "/_admin/transfers")
    assert view["duplicates"] == 1 and len(view["transfers"]) == 1  # the POST was counted, not stored


async def test_a_refusal_without_acknowledgement_is_permanent(start_asalae, connector_for) -> None:
    server = start_asalae(max_attachment_size=10)
    connector = connector_for(server)
    with pytest.raises(PermanentConnectorError, match="HTTP 400.*trop volumineuse"):
        await connector.submit(job())
    assert admin(server, "GET", "/_admin/transfers")["transfers"] == []


async def test_pending_reply_is_the_real_500(start_asalae, connector_for) -> None:
    """HTTP 500 "Transfert en cours de traitement" is pending; any other 500 is a retryable error."""
    server = start_asalae(reply_delay=60)
    connector = connector_for(server)
    await connector.submit(job())
    assert (await connector.poll(job(), job().reference)).status == "pending"
    admin(server, "POST", "/_admin/faults", json={"fail_next": 1})
    with pytest.raises(ConnectorError) as info:
        await connector.poll(job(), job().reference)
    assert not isinstance(info.value, PermanentConnectorError) and "HTTP 500" in str(info.value)
    with pytest.raises(ConnectorError, match="does not know"):
        await connector.poll(job(), "jamais-recu")  # the configured not-found answer (404)
    admin(server, "POST", "/_admin/clock/advance", json={"seconds": 60})
    assert (await connector.poll(job(), job().reference)).status == "done"


async def test_not_found_answer_of_a_lookup_is_configurable(start_asalae, connector_for) -> None:
    """Against an As@lae that answers "en cours" even for a transfer it never received, the
    default connector will not guess (it would risk a second transfer, or none); configured with
    that answer, it sends, finds the transfer back, and waits for the reply."""
    server = start_asalae(unknown_transfer_status=500, unknown_transfer_text="Transfert en cours de traitement",
                          reply_delay=60)
    default = connector_for(server)
    with pytest.raises(ConnectorError, match="lookup_not_found_status=500") as info:
        await default.lookup(job())
    assert not isinstance(info.value, PermanentConnectorError)

    configured = connector_for(server, lookup_not_found_status=500,
                               lookup_not_found_text="Transfert en cours de traitement")
    assert await configured.lookup(job()) is None
    await configured.submit(job())
    assert await configured.lookup(job()) == job().reference
    assert (await configured.poll(job(), job().reference)).status == "pending"
    admin(server, "POST", "/_admin/clock/advance", json={"seconds": 60})
    assert (await configured.poll(job(), job().reference)).status == "done"

    strict = connector_for(start_asalae(), lookup_not_found_status=500)  # this As@lae says 404
    with pytest.raises(PermanentConnectorError, match="HTTP 404"):
        await strict.lookup(job())


def test_registry_passes_the_lookup_options() -> None:
    cfg = {"sae": {"kind": "asalae", "url": "http://127.0.0.1:9", "originating_agency": "210600235",
                   "lookup_not_found_status": 500, "lookup_not_found_text": "Transfert en cours de traitement"}}
    connector = ConnectorRegistry("http://127.0.0.1:9").get("sae", cfg)
    assert isinstance(connector, AsalaeConnector)
    assert (connector.lookup_not_found_status, connector.lookup_not_found_text) == (
        500, "Transfert en cours de traitement")


async def test_malformed_reply_is_retryable(start_asalae, connector_for) -> None:
    server = start_asalae()
    connector = connector_for(server)
    await connector.submit(job())
    admin(server, "POST", "/_admin/faults", json={"malformed_next": 1})
    with pytest.raises(ConnectorError) as info:
        await connector.poll(job(), job().reference)
    assert not isinstance(info.value, PermanentConnectorError)
    assert (await connector.poll(job(), job().reference)).status == "done"
