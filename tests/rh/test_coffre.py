"""The delivery connector against the digital-safe simulator, over real HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from connectors.base import (
    Collectivite,
    ConnectorError,
    InputFile,
    RemoteRefusal,
    StageJob,
)
from connectors.delivery.coffre import CoffreConnector
from connectors.signature.pdf import make_pdf
from connectors.simulators.coffre import CoffreSimSettings, create_app
from connectors.simulators.server import ServerThread
from tests.sim_servers import server_pool

PDF = make_pdf("Bulletin de paie 2026-10")


@pytest.fixture
def start_coffre() -> Iterator[Callable[..., ServerThread]]:
    yield from server_pool(lambda **overrides: create_app(CoffreSimSettings(**overrides)))


def job(coffre: str, ref: str = "dmb-1-delivery-g1") -> StageJob:
    return StageJob(document_id="1", reference=ref, flow="rh-bulletin", stage="delivery",
                    collectivite=Collectivite("214400152", "Commune", "044", "1", "31"),
                    metadata={"coffre": coffre, "periode": "2026-10", "matricule": "A001"},
                    files=[InputFile("a001.pdf", "signed_document", PDF)])


async def test_deposit_then_receipt(start_coffre: Callable[..., ServerThread]) -> None:
    server = start_coffre()
    connector = CoffreConnector(server.base_url, "coffre-dematbus")
    try:
        remote_id, produced = await connector.submit(job("CFN-1"))
        assert produced == []
        assert await connector.lookup(job("CFN-1")) == remote_id
        result = await connector.poll(job("CFN-1"), remote_id)
        assert result.status == "done"
        receipt = json.loads(result.files[0].data)
        assert result.files[0].role == "delivery_receipt"
        assert receipt["recipient"] == "CFN-1" and receipt["size"] == len(PDF)
        # A second submit of the same reference finds the first deposit: nothing delivered twice.
        assert (await connector.submit(job("CFN-1")))[0] == remote_id
        async with httpx.AsyncClient() as client:
            admin = (await client.get(f"{server.base_url}/_admin/deposits")).json()
        assert admin["count"] == 1 and admin["duplicates"] == 1
    finally:
        await connector.aclose()


async def test_unknown_agent_is_a_refusal_naming_the_matricule(start_coffre: Callable[..., ServerThread]) -> None:
    server = start_coffre()
    connector = CoffreConnector(server.base_url, "coffre-dematbus")
    try:
        with pytest.raises(RemoteRefusal) as exc:
            await connector.submit(job("INCONNU-9"))
        assert "inconnu" in exc.value.reason.lower() and "A001" in exc.value.reason
        assert exc.value.fields == {"delivery_error": "unknown_recipient"}
    finally:
        await connector.aclose()


async def test_closed_safe_refuses_after_the_deposit(start_coffre: Callable[..., ServerThread]) -> None:
    server = start_coffre(receipt_delay=0.3)
    connector = CoffreConnector(server.base_url, "coffre-dematbus")
    try:
        remote_id, _ = await connector.submit(job("FERME-3"))
        assert (await connector.poll(job("FERME-3"), remote_id)).status == "pending"
        await asyncio.sleep(0.4)
        result = await connector.poll(job("FERME-3"), remote_id)
        assert result.status == "rejected" and "clos" in (result.reason or "")
    finally:
        await connector.aclose()


async def test_server_errors_are_retryable_and_make_no_deposit(start_coffre: Callable[..., ServerThread]) -> None:
    server = start_coffre()
    async with httpx.AsyncClient() as client:
        (await client.post(f"{server.base_url}/_admin/faults", json={"fail_next": 1})).raise_for_status()
    connector = CoffreConnector(server.base_url, "coffre-dematbus")
    try:
        with pytest.raises(ConnectorError) as exc:
            await connector.submit(job("CFN-2"))
        assert not isinstance(exc.value, RemoteRefusal)
        assert await connector.lookup(job("CFN-2")) is None
        assert (await connector.submit(job("CFN-2")))[0]
    finally:
        await connector.aclose()


def test_bad_api_key_and_non_pdf(start_coffre: Callable[..., ServerThread]) -> None:
    server = start_coffre()
    form = {"reference": "r", "recipient": "CFN-1", "document_type": "bulletin_de_paie", "periode": "2026-10"}
    bad_key = httpx.post(f"{server.base_url}/api/v1/deposits", data=form, files={"file": ("a.pdf", PDF)},
                         headers={"X-Api-Key": "nope"})
    assert bad_key.status_code == 401 and bad_key.json()["error"]["code"] == "unauthorized"
    not_pdf = httpx.post(f"{server.base_url}/api/v1/deposits", data=form, files={"file": ("a.pdf", b"hello")},
                         headers={"X-Api-Key": "coffre-dematbus"})
    assert not_pdf.status_code == 400 and not_pdf.json()["error"]["code"] == "invalid_deposit"
