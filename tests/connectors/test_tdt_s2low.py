"""S2lowConnector against the S²low simulator running as a real HTTP server."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace
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
from connectors.simulators.s2low import minimal_pdf
from connectors.tdt.s2low import STATUSES_AFTER_CREATE, S2lowConnector
from schemas.actes.archive import read_acte_archive
from schemas.actes.messages import parse_actes_message
from schemas.xml import validate

SIREN = "210600235"
LOGIN, PASSWORD = "commune-a", "secret-a"
COLLECTIVITE = Collectivite(siren=SIREN, name="Commune A", departement="006", arrondissement="2", nature_code="31")
PDF = minimal_pdf(["Acte"])
SIGNED = minimal_pdf(["Acte signé"])


def job(numero: str = "DEL2024_001", **metadata: Any) -> StageJob:
    meta = {
        "nature": 1, "numero_interne": numero, "date_decision": "2024-04-30",
        "objet": "Délibération – budget ’primitif’ œuvre", "classification": "7.1.2", "typologie": None,
        "signature": False, "unrelated_bus_field": "ignored",
    }
    meta.update(metadata)
    return StageJob(
        document_id="doc-1", reference=f"doc-1-tdt-1-{numero}", flow="actes", stage="tdt",
        collectivite=COLLECTIVITE, metadata=meta,
        files=[
            InputFile(name="deliberation.pdf", role="document", data=PDF),
            InputFile(name="annexe-1.pdf", role="annexe", data=minimal_pdf(["Annexe 1"])),
            InputFile(name="deliberation-signee.pdf", role="signed_document", data=SIGNED),
            InputFile(name="annexe-2.png", role="annexe", data=b"\x89PNG\r\n\x1a\n" + b"\0" * 16, media_type="image/png"),
        ],
    )


async def recorded(connector: S2lowConnector, the_job: StageJob, day: str = "2024-05-02") -> StageJob:
    """The job as the stage runner hands it over after a crash: with the facts recorded with the
    intent (on the simulated day: the simulator's clock is frozen)."""
    facts = await connector.intent_facts(the_job)
    return replace(the_job, intent={**facts, "submitted_on": day})


def admin(server, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, server.base_url + path, **kwargs)
    response.raise_for_status()
    return response.json()


@pytest.fixture
async def connector_for():
    made: list[S2lowConnector] = []

    def make(server, password: str = PASSWORD, timeout: float = 10.0) -> S2lowConnector:
        connector = S2lowConnector(server.base_url, LOGIN, password, timeout=timeout)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.aclose()


async def test_acte_transmitted_then_acknowledged(start_s2low, connector_for) -> None:
    server = start_s2low(transmit_delay=30, ack_delay=30)
    connector = connector_for(server)
    the_job = await recorded(connector, job())
    assert await connector.lookup(the_job) is None
    remote_id, outputs = await connector.submit(the_job)
    assert [o.role for o in outputs] == ["tdt_archive"]
    archive = outputs[0]  # built by the bus: S²low serves no archive back
    assert archive.name == "DMB-EACT--210600235--20240502-1.tar.gz" and archive.media_type == "application/gzip"
    parsed = read_acte_archive(archive.data, name=archive.name, trigramme="DMB", quadrigramme="EACT")
    validate("actes", parsed.acte_xml)
    validate("actes", parsed.enveloppe_xml)
    assert parsed.acte["objet"] == "Délibération - budget 'primitif' oeuvre"
    with tarfile.open(fileobj=io.BytesIO(archive.data)) as tar:
        names = tar.getnames()
    assert names[2] == "99_DE-006-210600235-20240430-DEL2024_001-DE-1-1_1.pdf"
    assert names[3].startswith("99_DE-") and names[4].endswith("-1-1_3.png")
    assert parsed.files[names[2]] == SIGNED  # the signed version is the one transmitted

    assert (await connector.poll(the_job, remote_id)).status == "pending"
    admin(server, "POST", "/_admin/clock/advance", json={"seconds": 30})
    assert (await connector.poll(the_job, remote_id)).status == "pending"
    admin(server, "POST", "/_admin/clock/advance", json={"seconds": 30})
    result = await connector.poll(the_job, remote_id)
    assert result.status == "done"
    assert result.fields == {"id_acte": "006-210600235-20240430-DEL2024_001-DE",
                             "date_reception": "2024-05-02", "tdt_transaction_id": remote_id}
    by_role = {f.role: f for f in result.files}
    assert set(by_role) == {"aracte", "stamped_document", "bordereau"}
    aracte = by_role["aracte"]
    assert aracte.name == "006-210600235-20240430-DEL2024_001-DE-1-2_1.xml"
    validate("actes", aracte.data)
    assert parse_actes_message(aracte.data).fields["id_acte"] == result.fields["id_acte"]
    assert by_role["stamped_document"].data.startswith(SIGNED)
    assert admin(server, "GET", "/_admin/transmissions")["duplicates"] == 0


async def test_ko_on_create_is_permanent(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    with pytest.raises(PermanentConnectorError, match="Erreur de validation"):
        await connector.submit(job("ERRKO_1"))
    with pytest.raises(PermanentConnectorError):
        await connector.submit(job("del-1"))  # refused before any HTTP call (metadata)
    with pytest.raises(PermanentConnectorError, match="futur"):
        await connector.submit(job("DEL1", date_decision="2024-05-03"))  # simulated "today" is 2024-05-02


async def test_anomalie_acte_rejected(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    the_job = job("ERRANO_1")
    remote_id, _ = await connector.submit(the_job)
    result = await connector.poll(the_job, remote_id)
    assert result.status == "rejected"
    assert result.fields["nature"] == "002"
    assert result.fields["detail"].startswith("ODT-VERIF-01")
    assert "Anomalie signalee par le MI : 002" in (result.reason or "")
    assert [f.role for f in result.files] == ["anomalie"]
    assert result.files[0].name == "006-210600235----1-3_1.xml"
    assert parse_actes_message(result.files[0].data).root == "AnomalieActe"


async def test_anomalie_enveloppe_rejected(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    the_job = job("ERRENV_1")
    remote_id, _ = await connector.submit(the_job)
    result = await connector.poll(the_job, remote_id)
    assert result.status == "rejected" and result.fields["nature"] == "999"
    assert result.fields["anomaly_type"] == "AnomalieEnveloppe"


async def test_500_then_success_without_duplicate(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    the_job = job()
    admin(server, "POST", "/_admin/faults", json={"fail_next": 1, "endpoint": "actes_transac_create.php"})
    with pytest.raises(ConnectorError) as info:
        await connector.submit(the_job)
    assert not isinstance(info.value, PermanentConnectorError)
    # what the stage runner does before retrying
    assert await connector.lookup(the_job) is None
    remote_id, _ = await connector.submit(the_job)
    assert (await connector.poll(the_job, remote_id)).status == "done"
    view = admin(server, "GET", "/_admin/transmissions")
    assert view["duplicates"] == 0 and len(view["transactions"]) == 1


async def test_lost_answer_recovered_by_submitting_again(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server, timeout=0.5)
    for other in ("OTHER_1", "OTHER_2"):  # the collectivité's other actes of the day
        await connector.submit(job(other))
    the_job = await recorded(connector, job())
    admin(server, "POST", "/_admin/faults", json={"timeout_next": 1, "timeout_seconds": 2})
    with pytest.raises(ConnectorError):
        await connector.submit(the_job)
    # What the stage runner does after a crash: lookup (S²low has no lookup by our reference), then submit.
    assert await connector.lookup(the_job) is None
    remote_id, outputs = await connector.submit(the_job)
    assert (await connector.poll(the_job, remote_id)).fields["id_acte"] == "006-210600235-20240430-DEL2024_001-DE"
    assert outputs[0].name == "DMB-EACT--210600235--20240502-3.tar.gz"
    view = admin(server, "GET", "/_admin/transmissions")
    assert view["duplicates"] == 0 and view["duplicate_refusals"] == 1 and len(view["transactions"]) == 3
    calls = admin(server, "GET", "/_admin/stats")["calls"]
    assert calls["list_actes"] == STATUSES_AFTER_CREATE.index(4) + 1  # the statuses up to 4, one page each


async def test_recovery_pages_and_tolerates_a_clock_that_disagrees(start_s2low, connector_for, monkeypatch) -> None:
    import connectors.tdt.s2low as module

    monkeypatch.setattr(module, "LIST_PAGE", 2)
    server = start_s2low()
    connector = connector_for(server)
    first, _ = await connector.submit(job())
    for i in range(5):
        await connector.submit(job(f"LATER_{i}"))
    # An intent dated two days after S²low's clock: the date bound finds nothing, the full listing does.
    again = await recorded(connector, job(), day="2024-05-04")
    assert (await connector.submit(again))[0] == first
    assert admin(server, "GET", "/_admin/transmissions")["duplicates"] == 0


async def test_numero_taken_by_another_acte_is_permanent(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    await connector.submit(job())
    other = await recorded(connector, job(date_decision="2024-04-29"))
    with pytest.raises(PermanentConnectorError, match="already used by another acte"):
        await connector.submit(other)


async def test_lookup_searches_an_earlier_numero(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    earlier, _ = await connector.submit(job("OLD_1"))
    renamed = replace(job("NEW_1"), intent=(await recorded(connector, job("OLD_1"))).intent)
    assert await connector.lookup(renamed) == earlier  # an earlier generation went out as OLD_1
    unknown = replace(job("NEW_1"), intent=(await recorded(connector, job("NEVER_1"))).intent)
    assert await connector.lookup(unknown) is None


async def test_malformed_answers_are_retryable(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    the_job = job()
    remote_id, _ = await connector.submit(the_job)
    admin(server, "POST", "/_admin/faults", json={"malformed_next": 1})
    with pytest.raises(ConnectorError) as info:
        await connector.poll(the_job, remote_id)
    assert not isinstance(info.value, PermanentConnectorError)
    assert (await connector.poll(the_job, remote_id)).status == "done"
    admin(server, "POST", "/_admin/faults", json={"fail_next": 1})
    with pytest.raises(ConnectorError):
        await connector.poll(the_job, remote_id)


async def test_wrong_password_is_permanent(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server, password="wrong")
    with pytest.raises(PermanentConnectorError, match="401"):
        await connector.submit(job())


async def test_server_down_is_retryable(connector_for) -> None:
    class Down:
        base_url = "http://127.0.0.1:9"

    connector = connector_for(Down(), timeout=1)
    with pytest.raises(ConnectorError) as info:
        await connector.submit(job())
    assert not isinstance(info.value, PermanentConnectorError)
    with pytest.raises(ConnectorError) as info:  # a lookup that must search the listing
        await connector.lookup(replace(job("NEW_1"), intent={"number": "OLD_1"}))
    assert not isinstance(info.value, PermanentConnectorError)


async def test_default_typologies_by_nature(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    _, outputs = await connector.submit(job("AR1", nature=2, classification="3.1"))
    with tarfile.open(fileobj=io.BytesIO(outputs[0].data)) as tar:
        assert all(n.startswith("99_AR-") for n in tar.getnames()[2:])
    _, outputs = await connector.submit(job("AR2", nature=2, classification="3.1", typologie=["22_AT", "99_AR", "99_AR"]))
    with tarfile.open(fileobj=io.BytesIO(outputs[0].data)) as tar:
        assert tar.getnames()[2].startswith("22_AT-")
    rows = admin(server, "GET", "/_admin/transmissions")["transactions"]
    assert rows[-1]["archive_name"].endswith("-2.tar.gz")


async def test_works_under_a_mount_prefix() -> None:
    """`dematbus up` mounts the simulators under /s2low: paths and fault scoping stay relative."""
    from fastapi import FastAPI

    from connectors.simulators.s2low import AuthorityIn, S2lowSimSettings, create_app
    from connectors.simulators.server import ServerThread

    hub = FastAPI()
    hub.mount("/s2low", create_app(S2lowSimSettings(authorities={SIREN: AuthorityIn(
        login=LOGIN, password=PASSWORD, departement="006", arrondissement="2")})))
    with ServerThread(hub) as server:
        httpx.post(server.base_url + "/s2low/_admin/faults", json={"fail_next": 1}).raise_for_status()
        connector = S2lowConnector(server.base_url + "/s2low", LOGIN, PASSWORD, timeout=10)
        try:
            with pytest.raises(ConnectorError):
                await connector.submit(job())
            remote_id, _ = await connector.submit(job())
            assert (await connector.poll(job(), remote_id)).status == "done"
        finally:
            await connector.aclose()


async def test_cancel_keeps_the_6_1_archive(start_s2low, connector_for) -> None:
    server = start_s2low(ack_delay=5)
    connector = connector_for(server)
    remote_id, _ = await connector.submit(job())
    admin(server, "POST", "/_admin/clock/advance", json={"seconds": 5})
    assert (await connector.poll(job(), remote_id)).status == "done"
    cancel_id, files = await connector.cancel(remote_id, COLLECTIVITE)
    [archive] = files
    assert archive.role == "annulation_archive" and archive.name.startswith("DMB-EACT--210600235--")
    with tarfile.open(fileobj=io.BytesIO(archive.data)) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    for data in members.values():
        validate("actes", data)
    message = members["006-210600235-20240430-DEL2024_001-DE-6-1_0.xml"]
    assert parse_actes_message(message).fields["id_acte"] == "006-210600235-20240430-DEL2024_001-DE"
    assert await connector.cancel(remote_id, COLLECTIVITE) == (None, [])  # one already under way
    assert (await connector.cancellation(remote_id, cancel_id)).status == "pending"
    admin(server, "POST", "/_admin/clock/advance", json={"seconds": 5})
    assert (await connector.cancellation(remote_id, cancel_id)).status == "done"
