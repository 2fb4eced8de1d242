"""The i-Parapheur connector against the simulator running as a real HTTP server (uvicorn)."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from connectors.base import ConnectorError, PermanentConnectorError, StageResult
from connectors.signature.iparapheur import IparapheurConnector, build_folder_premis
from connectors.signature.pades import verify_pdf
from connectors.signature.pdf import is_pdf, make_pdf
from connectors.simulators.iparapheur import (
    IparapheurSimSettings,
    Simulator,
    TenantSettings,
    create_app,
    parse_folder_premis,
)
from connectors.simulators.server import ServerThread

TOKEN = "/auth/realms/api/protocol/openid-connect/token"


def connector_for(server, settings: IparapheurSimSettings, **overrides) -> IparapheurConnector:  # type: ignore[no-untyped-def]
    args = dict(
        base_url=server.base_url,
        username=settings.username,
        password=settings.password,
        tenant="Collectivités",
        desk="Secrétariat général",
        type_name="ACTES",
        subtype_name="Délibération",
        timeout=5.0,
    )
    args.update(overrides)
    return IparapheurConnector(**args)


async def poll_until_final(connector: IparapheurConnector, job, remote_id: str) -> StageResult:  # type: ignore[no-untyped-def]
    for _ in range(20):
        result = await connector.poll(job, remote_id)
        if result.status != "pending":
            return result
    raise AssertionError("folder never left pending")


def folders(server) -> list[dict]:  # type: ignore[no-untyped-def]
    return server.admin("GET", "/_admin/folders").json()["folders"]


async def test_folder_signed(simulator, sim_settings, make_job) -> None:  # type: ignore[no-untyped-def]
    """`submit` creates a draft (autoStart=false) and returns its id; the first poll starts it."""
    connector = connector_for(simulator, sim_settings)
    job = make_job("actes:doc-1:signature:1")
    assert await connector.lookup(job) is None
    remote_id, produced = await connector.submit(job)
    assert produced == []
    (draft,) = folders(simulator)
    assert (draft["id"], draft["state"], draft["events"]) == (remote_id, "DRAFT", ["CREATE", "START"])

    result = await poll_until_final(connector, job, remote_id)
    assert result.status == "done"
    assert result.fields["signer"] == sim_settings.signer_common_name
    signed, bordereau = result.files
    assert (signed.name, signed.role, signed.media_type) == (
        "délibération 2024-001.pdf",
        "signed_document",
        "application/pdf",
    )
    info = verify_pdf(signed.data)
    assert info.signed and info.intact
    assert info.signer_common_name == sim_settings.signer_common_name
    assert bordereau.role == "bordereau_signature"
    assert bordereau.name == f"{job.reference}_bordereau.pdf" and is_pdf(bordereau.data)

    (folder,) = simulator.admin("GET", "/_admin/folders").json()["folders"]
    assert folder["state"] != "DELETED"  # kept until the bus has recorded the signed files
    await connector.after_outcome(job, remote_id, result)
    admin = simulator.admin("GET", "/_admin/folders").json()
    assert admin["duplicates"] == 0
    (folder,) = admin["folders"]
    assert folder["state"] == "DELETED"  # then the connector deletes it
    assert folder["events"] == ["CREATE", "START", "SIGNATURE", "ARCHIVE"]
    assert folder["metadata"] == {"objet": "Vote du budget primitif"}
    assert [d["main"] for d in folder["documents"]] == [True, False]
    await connector.aclose()


async def test_folder_rejected_by_pattern(simulator, sim_settings, make_job) -> None:  # type: ignore[no-untyped-def]
    connector = connector_for(simulator, sim_settings)
    job = make_job("actes:doc-REJET:signature:1")
    remote_id, _ = await connector.submit(job)
    result = await poll_until_final(connector, job, remote_id)
    assert result.status == "rejected"
    assert result.reason == sim_settings.reject_reason
    assert result.fields["rejected_by"] == sim_settings.signer_common_name
    (folder,) = folders(simulator)
    assert folder["state"] == "REJECTED" and folder["events"][-2:] == ["REJECT", "DELETE"]
    await connector.aclose()


async def test_rejected_by_metadata_and_admin(simulator, sim_settings, make_job) -> None:  # type: ignore[no-untyped-def]
    connector = connector_for(simulator, sim_settings)
    job = make_job("actes:doc-7:signature:1", objet="Acte à REJETER")
    remote_id, _ = await connector.submit(job)
    assert (await poll_until_final(connector, job, remote_id)).status == "rejected"

    simulator.admin("POST", "/_admin/faults", json={"reject_next": 1})
    job = make_job("actes:doc-8:signature:1")
    remote_id, _ = await connector.submit(job)
    assert (await poll_until_final(connector, job, remote_id)).status == "rejected"
    await connector.aclose()


async def test_survives_one_injected_500(simulator, sim_settings, make_job) -> None:  # type: ignore[no-untyped-def]
    """A 500 answered before anything was made: nothing is listed, so the error is retryable."""
    connector = connector_for(simulator, sim_settings)
    job = make_job("actes:doc-2:signature:1")
    simulator.admin("POST", "/_admin/faults", json={"fail_next": 1, "match": "POST /api/"})
    with pytest.raises(ConnectorError) as excinfo:
        await connector.submit(job)
    assert not isinstance(excinfo.value, PermanentConnectorError)
    assert await connector.lookup(job) is None
    remote_id, _ = await connector.submit(job)
    assert (await poll_until_final(connector, job, remote_id)).status == "done"
    assert simulator.admin("GET", "/_admin/folders").json()["duplicates"] == 0
    await connector.aclose()


async def test_lost_answer_is_settled_from_the_draft_listing(simulator, sim_settings, make_job) -> None:  # type: ignore[no-untyped-def]
    """The folder is made but a 500 comes back: `submit` finds the draft of its name and returns
    it; after a restart `lookup` finds it the same way, and poll starts it. One folder in all."""
    connector = connector_for(simulator, sim_settings)
    job = make_job("actes:doc-3:signature:1")
    simulator.admin("POST", "/_admin/faults", json={"fail_after_next": 1, "match": "POST /api/"})
    remote_id, _ = await connector.submit(job)
    (folder,) = folders(simulator)
    assert folder["id"] == remote_id and folder["state"] == "DRAFT"

    fresh = connector_for(simulator, sim_settings)  # as after a restart of the bus
    assert await fresh.lookup(job) == remote_id
    first = await fresh.poll(job, remote_id)  # starts the draft
    assert first.status == "pending"
    assert await fresh.lookup(job) is None  # started: it left the DRAFT list
    assert (await poll_until_final(fresh, job, remote_id)).status == "done"
    assert simulator.admin("GET", "/_admin/folders").json()["duplicates"] == 0
    await connector.aclose()
    await fresh.aclose()


async def test_a_second_creation_makes_a_second_folder_and_lookup_hands_it_over(simulator, sim_settings, make_job) -> None:  # type: ignore[no-untyped-def]
    """No 409: the server makes a namesake (createFolder documents 201, 401, 403, 404 and 406
    only, libriciel/iparapheur-v5-api-php lib/Api/FolderApi.php). Two drafts of our name cannot
    be told apart: `lookup` refuses to choose and names both, for an operator."""
    connector = connector_for(simulator, sim_settings)
    job = make_job("actes:doc-4:signature:1")
    first, _ = await connector.submit(job)
    second, _ = await connector.submit(job)
    assert first != second
    admin = simulator.admin("GET", "/_admin/folders").json()
    assert admin["duplicates"] == 1 and [f["state"] for f in admin["folders"]] == ["DRAFT", "DRAFT"]
    with pytest.raises(PermanentConnectorError) as excinfo:
        await connector.lookup(job)
    reason = str(excinfo.value)
    assert "2 draft folders" in reason and job.reference in reason
    assert first in reason and second in reason and "replay" in reason
    await connector.aclose()


async def test_lookup_matches_exact_name_type_and_subtype(simulator, sim_settings, make_job) -> None:  # type: ignore[no-untyped-def]
    """The DRAFT listing is filtered by typeId/subtypeId; the name is compared exactly."""
    arrete = connector_for(simulator, sim_settings, subtype_name="Arrêté")
    job = make_job("actes:doc-5:signature:1")
    other_subtype, _ = await arrete.submit(job)
    await arrete.submit(make_job("actes:doc-5:signature:10"))  # a longer name, same prefix
    connector = connector_for(simulator, sim_settings)
    assert await connector.lookup(job) is None
    assert await arrete.lookup(job) == other_subtype
    await arrete.aclose()
    await connector.aclose()


async def test_creation_without_answer_goes_to_an_operator(start_simulator, tmp_path, make_job) -> None:  # type: ignore[no-untyped-def]
    """The creation outlives the client's timeout: no draft is listed yet, so the outcome is
    unknown. Nothing is sent again; the error names the folder and says what to do. Once it has
    landed, the replay's lookup takes it, and the document goes on with that one folder."""
    settings = IparapheurSimSettings(data_dir=tmp_path)
    server = start_simulator(settings)
    server.admin("POST", "/_admin/faults", json={"create_delay": 4})
    connector = connector_for(server, settings, timeout=1)
    job = make_job("actes:doc-15:signature:1")
    with pytest.raises(PermanentConnectorError) as excinfo:
        await connector.submit(job)
    reason = str(excinfo.value)
    assert job.reference in reason and "no draft of that name is listed" in reason
    assert "Not sent again" in reason and "Secrétariat général" in reason
    assert folders(server) == []  # still being created

    server.admin("POST", "/_admin/faults", json={"create_delay": 0})
    deadline = time.monotonic() + 10
    while not folders(server) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    remote_id = await connector.lookup(job)  # what the replay does first
    assert remote_id is not None
    assert (await poll_until_final(connector, job, remote_id)).status == "done"
    assert len(folders(server)) == 1 and server.admin("GET", "/_admin/folders").json()["duplicates"] == 0
    await connector.aclose()


async def test_gateway_timeout_on_creation_goes_to_an_operator(start_simulator, tmp_path, make_job) -> None:  # type: ignore[no-untyped-def]
    """A 504: the server behind the gateway may still be working. Nothing listed: an operator."""
    settings = IparapheurSimSettings(data_dir=tmp_path, hang_seconds=0.2)
    server = start_simulator(settings)
    server.admin("POST", "/_admin/faults", json={"timeout_next": 1, "match": "POST /api/"})
    connector = connector_for(server, settings)
    with pytest.raises(PermanentConnectorError, match="HTTP 504"):
        await connector.submit(make_job("actes:doc-16:signature:1"))
    await connector.aclose()


async def test_bad_token_and_credentials(simulator, sim_settings, make_job) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=simulator.base_url) as client:
        assert (await client.get("/api/standard/v1/tenant")).status_code == 401
        bad = await client.get("/api/standard/v1/tenant", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
        form = {"grant_type": "password", "client_id": "ipcore-web", "username": "bus", "password": "x"}
        assert (await client.post(TOKEN, data=form)).status_code == 401
        form["password"] = sim_settings.password
        token = (await client.post(TOKEN, data=form)).json()
        assert token["token_type"] == "Bearer" and token["expires_in"] > 0
        ok = await client.get(
            "/api/standard/v1/tenant", headers={"Authorization": f"Bearer {token['access_token']}"}
        )
        assert ok.status_code == 200 and ok.json()["content"][0]["name"] == "Collectivités"

    wrong = connector_for(simulator, sim_settings, password="wrong")
    with pytest.raises(PermanentConnectorError):
        await wrong.lookup(make_job("actes:doc-6:signature:1"))
    await wrong.aclose()


async def test_injected_401_reauthenticates(simulator, sim_settings, make_job) -> None:  # type: ignore[no-untyped-def]
    connector = connector_for(simulator, sim_settings)
    job = make_job("actes:doc-9:signature:1")
    assert await connector.lookup(job) is None  # token cached now
    simulator.admin("POST", "/_admin/faults", json={"unauthorized_next": 1, "match": "/api/"})
    remote_id, _ = await connector.submit(job)
    assert (await poll_until_final(connector, job, remote_id)).status == "done"
    await connector.aclose()


async def test_unknown_subtype_is_permanent(simulator, sim_settings, make_job) -> None:  # type: ignore[no-untyped-def]
    connector = connector_for(simulator, sim_settings, subtype_name="Inexistant")
    with pytest.raises(PermanentConnectorError, match="Inexistant"):
        await connector.submit(make_job("actes:doc-10:signature:1"))
    await connector.aclose()


async def test_timeout_is_retryable(start_simulator, tmp_path, make_job) -> None:  # type: ignore[no-untyped-def]
    settings = IparapheurSimSettings(data_dir=tmp_path, hang_seconds=1.5)
    server = start_simulator(settings)
    server.admin("POST", "/_admin/faults", json={"timeout_next": 1})
    connector = connector_for(server, settings, timeout=0.3)
    with pytest.raises(ConnectorError, match="timed out"):
        await connector.lookup(make_job("actes:doc-11:signature:1"))
    await connector.aclose()


async def test_delay_paging_and_virtual_clock(start_simulator, tmp_path, make_job) -> None:  # type: ignore[no-untyped-def]
    settings = IparapheurSimSettings(
        data_dir=tmp_path,
        sign_delay=3600,
        max_page_size=1,
        tenants=[TenantSettings(name="Autre"), TenantSettings(desks=["Accueil", "Secrétariat général"])],
    )
    server = start_simulator(settings)
    connector = connector_for(server, settings)  # tenant and desk are on page 2 (size capped to 1)
    job = make_job("actes:doc-12:signature:1")
    await connector.submit(make_job("actes:doc-12:signature:0"))  # a draft before ours: 2 pages
    remote_id, _ = await connector.submit(job)
    assert await connector.lookup(job) == remote_id
    result = await connector.poll(job, remote_id)
    assert result.status == "pending" and result.fields["current_step"] == "START"  # started now
    result = await connector.poll(job, remote_id)
    assert result.status == "pending" and result.fields["current_step"] == "SIGNATURE"
    server.admin("POST", "/_admin/advance", json={"seconds": 3601})
    assert (await connector.poll(job, remote_id)).status == "done"
    await connector.aclose()


async def test_zip_layout(simulator, sim_settings, make_job) -> None:  # type: ignore[no-untyped-def]
    connector = connector_for(simulator, sim_settings)
    job = make_job("actes:doc-13:signature:1")
    remote_id, _ = await connector.submit(job)
    await connector.poll(job, remote_id)  # starts it
    ids = await connector._resolve()
    path = f"/api/standard/v1/tenant/{ids.tenant}/desk/{ids.desk}/folder/{remote_id}/zip"
    response = await connector._request("GET", path)
    names = set(zipfile.ZipFile(io.BytesIO(response.content)).namelist())
    assert names == {
        "i_Parapheur_internal_premis.xml",
        "Documents principaux/délibération 2024-001.pdf",
        "Annexes/annexe-budget.pdf",
        "actes:doc-13:signature:1_bordereau.pdf",
    }
    listing = await connector._request("GET", f"/api/standard/v1/tenant/{ids.tenant}/desk/{ids.desk}/FINISHED")
    assert [f["name"] for f in listing.json()["content"]] == [job.reference]
    await connector.aclose()


async def test_premis_with_doctype_is_refused(simulator, sim_settings) -> None:  # type: ignore[no-untyped-def]
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE premis [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<premis xmlns="http://www.loc.gov/premis/v3" version="3.0"><object>&x;</object></premis>'
    )
    async with httpx.AsyncClient(base_url=simulator.base_url) as client:
        form = {"grant_type": "password", "client_id": "ipcore-web", "username": "bus", "password": "s3cret"}
        token = (await client.post(TOKEN, data=form)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        tenant = (await client.get("/api/standard/v1/tenant", headers=headers)).json()["content"][0]["id"]
        desk = (await client.get(f"/api/standard/v1/tenant/{tenant}/desk", headers=headers)).json()["content"][0]["id"]
        response = await client.post(
            f"/api/standard/v1/tenant/{tenant}/desk/{desk}/folder",
            headers=headers,
            files=[("folder", ("premis.xml", evil, "application/xml")), ("documents", ("a.pdf", make_pdf("a"), "application/pdf"))],
        )
    assert response.status_code == 400 and "DOCTYPE" in response.json()["message"]


def test_state_file_round_trip(tmp_path: Path) -> None:
    settings = IparapheurSimSettings(data_dir=tmp_path, state_file=tmp_path / "state.json")
    sim = Simulator(settings)
    tenant = sim.tenants[0]
    parsed = parse_folder_premis(
        build_folder_premis("dossier-1", tenant.types[0].id, "Arrêté", [("a.pdf", True)], {"k": "v"})
    )
    folder = sim.create_folder(tenant.id, tenant.desks[0].id, parsed, {"a.pdf": (b"%PDF-1.7 x %%EOF", "application/pdf")}, True)
    reloaded = Simulator(settings)
    again = reloaded.folders[folder.id]
    assert again.name == "dossier-1" and again.documents[0].data == b"%PDF-1.7 x %%EOF"
    assert reloaded.state(again) == "PENDING" and again.properties == [("k", "v")]
    assert reloaded.new_id("folder") != folder.id  # the counter survived
    sim.close()
    reloaded.close()


async def test_works_mounted_under_a_prefix(serve_app, tmp_path, make_job) -> None:  # type: ignore[no-untyped-def]
    """As in the simulator hub: auth, faults and admin must use paths relative to the mount."""
    settings = IparapheurSimSettings(data_dir=tmp_path)
    hub = FastAPI()
    hub.mount("/iparapheur", create_app(settings))
    base_url = serve_app(hub) + "/iparapheur"
    async with httpx.AsyncClient(base_url=base_url) as client:
        assert (await client.get("/api/standard/v1/tenant")).status_code == 401
        faults = await client.post("/_admin/faults", json={"fail_next": 1, "match": "/folder"})
        assert faults.status_code == 200
    connector = IparapheurConnector(
        base_url,
        settings.username,
        settings.password,
        "Collectivités",
        "Secrétariat général",
        "ACTES",
        "Arrêté",
    )
    job = make_job("actes:doc-14:signature:1")
    with pytest.raises(ConnectorError):
        await connector.submit(job)
    remote_id, _ = await connector.submit(job)
    assert (await poll_until_final(connector, job, remote_id)).status == "done"
    await connector.aclose()


async def test_unreachable_server_is_retryable_not_an_operator_case(tmp_path, make_job) -> None:  # type: ignore[no-untyped-def]
    """A creation that cannot connect never left: a plain retry, not an uncertain outcome."""
    settings = IparapheurSimSettings(data_dir=tmp_path)
    server = ServerThread(create_app(settings))
    server.start()
    connector = connector_for(server, settings)
    job = make_job("actes:doc-17:signature:1")
    assert await connector.lookup(job) is None  # token and ids resolved
    server.stop()
    with pytest.raises(ConnectorError, match="unreachable") as excinfo:
        await connector.submit(job)
    assert not isinstance(excinfo.value, PermanentConnectorError)
    await connector.aclose()
