"""S2lowHeliosConnector against the S²low simulator (HELIOS endpoints) running as a real HTTP server."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
from helios_tdt_testlib import (
    LOGIN,
    PASSWORD,
    SIGNING,
    SIREN,
    admin,
    advance,
    pes_variant,
    server_factory,
)

from connectors.base import (
    Collectivite,
    ConnectorError,
    InputFile,
    PermanentConnectorError,
    StageJob,
)
from connectors.tdt.s2low_helios import STATUSES_AFTER_IMPORT, S2lowHeliosConnector, sanitize_filename
from schemas.helios.acquit import parse_acquit

COLLECTIVITE = Collectivite(siren=SIREN, name="Commune de Berger-Levrault", departement="078",
                            arrondissement="1", nature_code="31")
ACQUIT_NAME = re.compile(r"^010001_\d{12}-ACK-A3020100_A0000MIX_(OK|KO)\.xml$")


def job(pes: bytes, nom_fic: str | None, *, role: str = "signed_document", name: str = "pes signé (v2).xml",
        **metadata: Any) -> StageJob:
    meta = {"nom_fic": nom_fic, **metadata} if nom_fic else dict(metadata)
    return StageJob(
        document_id="doc-h1", reference=f"doc-h1-tdt-1-{nom_fic}", flow="helios", stage="tdt",
        collectivite=COLLECTIVITE, metadata=meta,
        files=[InputFile(name=name, role=role, data=pes, media_type="application/xml")],
    )


@pytest.fixture
def start_s2low():
    yield from server_factory()


@pytest.fixture
async def connector_for():
    made: list[S2lowHeliosConnector] = []

    def make(server, password: str = PASSWORD, timeout: float = 10.0, login: str = LOGIN) -> S2lowHeliosConnector:
        connector = S2lowHeliosConnector(server.base_url, login, password, timeout=timeout)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.aclose()


def helios_view(server) -> dict[str, Any]:
    return admin(server, "GET", "/_admin/helios")


async def recorded(connector: S2lowHeliosConnector, the_job: StageJob) -> StageJob:
    """The job as the stage runner hands it over after a crash: with the facts recorded with the
    intent (on the simulated day: the simulator's clock is frozen)."""
    facts = await connector.intent_facts(the_job)
    return replace(the_job, intent={**facts, "submitted_on": "2024-05-02"})


def test_sanitize_filename() -> None:
    assert sanitize_filename("pes signé (v2).xml") == "pes sign_ _v2_.xml"
    assert sanitize_filename("PESALR2_755800646_240502_001.xml") == "PESALR2_755800646_240502_001.xml"


async def test_accepted(start_s2low, connector_for) -> None:
    server = start_s2low(helios={"validation_delay": 10, "transmit_delay": 10, "ack_delay": 10})
    connector = connector_for(server)
    the_job = job(pes_variant("DEMATBUS_OK_1"), "DEMATBUS_OK_1")
    assert await connector.lookup(the_job) is None
    remote_id, outputs = await connector.submit(the_job)
    assert remote_id.isdigit() and outputs == []
    for expected in (1, 2, 3):
        result = await connector.poll(the_job, remote_id)
        assert result.status == "pending" and result.fields["tdt_status"] == expected
        advance(server, 10)
    result = await connector.poll(the_job, remote_id)
    assert result.status == "done", result
    assert result.fields["acquit"] == "accepted"
    assert result.fields["tdt_transaction_id"] == remote_id and result.fields["nom_fic"] == "DEMATBUS_OK_1"
    [acquit] = result.files
    assert acquit.role == "pes_acquit" and acquit.media_type == "application/xml"
    assert ACQUIT_NAME.match(acquit.name) and acquit.name.endswith("_OK.xml")
    parsed = parse_acquit(acquit.data)
    assert parsed.nom_fic == "DEMATBUS_OK_1" and parsed.verdict == "accepted"
    [row] = helios_view(server)["transactions"]
    assert row["status"] == 4 and row["pesalr2_name"] == f"PESALR2_{SIREN}_240502_001.xml"
    assert row["filename"] == "pes sign_ _v2_.xml"


async def test_komix_partial(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    the_job = job(pes_variant("BUDGET_KOMIX_2"), "BUDGET_KOMIX_2")
    remote_id, _ = await connector.submit(the_job)
    result = await connector.poll(the_job, remote_id)
    assert result.status == "done", result
    assert result.fields["acquit"] == "partial"
    assert result.fields["failed_bordereaux"] == ["11"] and result.fields["failed_pj"] == []
    [error] = result.fields["acquit_errors"]
    assert error["code"] == "ERREUR_AUTRE" and error["label"].startswith("1971")
    assert error["num_bord"] == "11" and error["domain"] == "5"
    assert result.files[0].role == "pes_acquit" and result.files[0].name.endswith("_KO.xml")
    assert parse_acquit(result.files[0].data).verdict == "partial"
    assert helios_view(server)["transactions"][0]["status"] == 8


async def test_koall_rejected(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    the_job = job(pes_variant("BUDGET_KOALL_3"), "BUDGET_KOALL_3")
    remote_id, _ = await connector.submit(the_job)
    result = await connector.poll(the_job, remote_id)
    assert result.status == "rejected"
    assert result.fields["acquit"] == "rejected"
    assert "ERREUR_AUTRE" in result.reason and "1971 - Compte fonction présent à tort" in result.reason
    assert "bordereau 11/2019" in result.reason
    assert {e["code"] for e in result.fields["acquit_errors"]} == {"ERREUR_AUTRE"}
    assert len(result.fields["acquit_errors"]) == 3  # 1 bordereau + 2 PJ
    assert [f.role for f in result.files] == ["pes_acquit"]
    assert helios_view(server)["transactions"][0]["status"] == 6


async def test_not_iso_8859_1_is_refused_with_the_s2low_message(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    pes = pes_variant("UTF8_4", sign=False).replace(b'encoding="ISO-8859-1"', b'encoding="UTF-8"', 1)
    the_job = job(pes, "UTF8_4", role="document")
    remote_id, _ = await connector.submit(the_job)
    result = await connector.poll(the_job, remote_id)
    assert result.status == "rejected"
    assert result.reason == "ce fichier n'est pas encodé en ISO-8859-1"
    assert result.fields["tdt_status"] == -1


async def test_a_second_post_is_refused_as_doublon_and_finds_the_first(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    the_job = job(pes_variant("DUP_5"), "DUP_5")
    remote_id, _ = await connector.submit(the_job)
    again = await recorded(connector, the_job)
    assert await connector.lookup(again) is None  # S²low has no lookup by NomFic: the post is the probe
    assert (await connector.submit(again))[0] == remote_id
    view = helios_view(server)
    assert view["duplicate_refusals"] == 1 and view["duplicates"] == 0 and len(view["transactions"]) == 1
    calls = admin(server, "GET", "/_admin/stats")["calls"]
    # One listing per status up to the PES's (4 ACQUITTE), one download: found at once.
    assert calls["helios_list_pes_aller"] == STATUSES_AFTER_IMPORT.index(4) + 1 and calls["helios_download_file"] == 1


async def test_5xx_then_success_without_duplicate(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    the_job = job(pes_variant("RETRY_6"), "RETRY_6")
    admin(server, "POST", "/_admin/faults", json={"fail_next": 1, "endpoint": "helios_importer_fichier.php"})
    with pytest.raises(ConnectorError) as info:
        await connector.submit(the_job)
    assert not isinstance(info.value, PermanentConnectorError)
    assert await connector.lookup(the_job) is None
    remote_id, _ = await connector.submit(the_job)
    assert (await connector.poll(the_job, remote_id)).status == "done"
    view = helios_view(server)
    assert view["duplicates"] == 0 and len(view["transactions"]) == 1


async def test_lost_answer_recovered_without_a_second_transmission(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server, timeout=0.5)
    the_job = await recorded(connector, job(pes_variant("TIMEOUT_7"), "TIMEOUT_7"))
    for other in ("OTHER_7A", "OTHER_7B"):  # the collectivité's other PES of the day
        await connector.submit(job(pes_variant(other), other))
    admin(server, "POST", "/_admin/faults", json={"timeout_next": 1, "timeout_seconds": 2,
                                                  "endpoint": "helios_importer_fichier.php"})
    with pytest.raises(ConnectorError):
        await connector.submit(the_job)
    assert await connector.lookup(the_job) is None
    remote_id, _ = await connector.submit(the_job)
    assert (await connector.poll(the_job, remote_id)).status == "done"
    assert (await connector.poll(the_job, remote_id)).fields["nom_fic"] == "TIMEOUT_7"
    view = helios_view(server)
    assert view["duplicates"] == 0 and len(view["transactions"]) == 3 and view["duplicate_refusals"] == 1


async def test_earlier_generation_with_other_bytes_is_found_by_its_sha1(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    first = job(pes_variant("REGEN_16"), "REGEN_16")
    first_id, _ = await connector.submit(first)
    earlier = await recorded(connector, first)
    resigned = replace(job(pes_variant("REGEN_16", edit=lambda d: d.replace(b"Berger-Levrault", b"Berger", 1)),
                           "REGEN_16"), intent=earlier.intent)
    assert await connector.lookup(resigned) == first_id  # not posted again under the same NomFic
    assert len(helios_view(server)["transactions"]) == 1


async def test_recovery_needs_the_archivist_right(start_s2low, connector_for) -> None:
    from connectors.simulators.s2low import AuthorityIn

    server = start_s2low()
    admin(server, "PUT", f"/_admin/authorities/{SIREN}", json=AuthorityIn(
        login=LOGIN, password=PASSWORD, departement="078", archivist=False).model_dump())
    connector = connector_for(server)
    the_job = await recorded(connector, job(pes_variant("ARCH_17"), "ARCH_17"))
    await connector.submit(the_job)
    with pytest.raises(PermanentConnectorError, match="archivist"):
        await connector.submit(the_job)


async def test_nom_fic_reuse_is_refused(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    first = job(pes_variant("REUSED_8"), "REUSED_8")
    first_id, _ = await connector.submit(first)
    assert (await connector.poll(first, first_id)).status == "done"
    other = pes_variant("REUSED_8", edit=lambda d: d.replace(b"Commune de Berger-Levrault", b"Commune de Berger-Levraut"))
    second = job(other, "REUSED_8")  # another document reusing the NomFic
    second_id, _ = await connector.submit(second)
    assert second_id != first_id
    result = await connector.poll(second, second_id)
    assert result.status == "rejected"
    assert result.reason == f"Transaction {second_id} : ce fichier existe déjà sur la plateforme"
    assert helios_view(server)["duplicates"] == 1


async def test_idcoll_of_another_authority_is_refused(start_s2low, connector_for) -> None:
    from helios_tdt_testlib import OTHER_LOGIN, OTHER_PASSWORD

    server = start_s2low()
    connector = connector_for(server, login=OTHER_LOGIN, password=OTHER_PASSWORD)
    the_job = job(pes_variant("WRONGCOLL_9"), "WRONGCOLL_9")
    remote_id, _ = await connector.submit(the_job)
    result = await connector.poll(the_job, remote_id)
    assert result.status == "rejected" and "IdColl" in result.reason


async def test_acquit_not_yet_stored_reads_as_transmitted(start_s2low, connector_for) -> None:
    server = start_s2low(helios={"acquit_file_delay": 60})
    connector = connector_for(server)
    the_job = job(pes_variant("LATE_ACK_10"), "LATE_ACK_10")
    remote_id, _ = await connector.submit(the_job)
    result = await connector.poll(the_job, remote_id)
    assert result.status == "pending" and result.fields["tdt_status"] == 3
    assert helios_view(server)["transactions"][0]["status"] == 4  # the platform has the status already
    advance(server, 60)
    assert (await connector.poll(the_job, remote_id)).status == "done"


async def test_malformed_acquit_is_retryable(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    the_job = job(pes_variant("MALFORMED_11"), "MALFORMED_11")
    remote_id, _ = await connector.submit(the_job)
    admin(server, "POST", "/_admin/faults", json={"malformed_next": 1})
    with pytest.raises(ConnectorError) as info:
        await connector.poll(the_job, remote_id)
    assert not isinstance(info.value, PermanentConnectorError)
    assert (await connector.poll(the_job, remote_id)).status == "done"


async def test_status_5xx_is_retryable_and_bad_password_permanent(start_s2low, connector_for) -> None:
    server = start_s2low()
    the_job = job(pes_variant("ERRORS_12"), "ERRORS_12")
    with pytest.raises(PermanentConnectorError):
        await connector_for(server, password="wrong").submit(the_job)
    connector = connector_for(server)
    remote_id, _ = await connector.submit(the_job)
    admin(server, "POST", "/_admin/faults", json={"fail_next": 1})
    with pytest.raises(ConnectorError) as info:
        await connector.poll(the_job, remote_id)
    assert not isinstance(info.value, PermanentConnectorError)
    assert (await connector.poll(the_job, remote_id)).status == "done"


async def test_intent_without_nom_fic_metadata_reads_the_file(start_s2low, connector_for) -> None:
    import hashlib

    connector = connector_for(start_s2low())
    pes = pes_variant("NOMETA_13")
    facts = await connector.intent_facts(job(pes, None))
    assert facts["nom_fic"] == "NOMETA_13" and facts["sha1"] == hashlib.sha1(pes).hexdigest()
    assert facts["filename"] == "pes sign_ _v2_.xml"


async def test_no_document_is_permanent(start_s2low, connector_for) -> None:
    server = start_s2low()
    connector = connector_for(server)
    the_job = job(b"<x/>", "NOFILE", role="annexe")
    with pytest.raises(PermanentConnectorError):
        await connector.submit(the_job)


@pytest.mark.skipif(not SIGNING, reason="connectors.signature.xades (sign_pes/verify_pes) not available yet")
async def test_signature_required(start_s2low, connector_for) -> None:
    server = start_s2low(helios={"require_signature": True})
    connector = connector_for(server)
    unsigned = job(pes_variant("UNSIGNED_14", sign=False), "UNSIGNED_14", role="document")
    remote_id, _ = await connector.submit(unsigned)
    result = await connector.poll(unsigned, remote_id)
    assert result.status == "rejected" and result.reason.startswith("La signature du fichier est invalide")
    signed = pes_variant("TAMPERED_15")
    tampered = job(signed.replace(b'<MtBordHT V="4874.40"/>', b'<MtBordHT V="9874.40"/>'), "TAMPERED_15")
    remote_id, _ = await connector.submit(tampered)
    result = await connector.poll(tampered, remote_id)
    assert result.status == "rejected" and result.reason.startswith("La signature du fichier est invalide")
