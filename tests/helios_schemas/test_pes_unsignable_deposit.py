"""A PES the bus is asked to sign, with no `Id` to sign, is refused at the deposit (protocols §3.2,
Placement; Pastell: "ne contient pas d'identifiant valide") instead of failing later at the
signature stage. Through `POST /api/v1/documents`; nothing is stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from lxml import etree
from sqlalchemy import func, select

from bus.store.models import Collectivite, Document, File, JournalEntry, OutboxEvent
from connectors.inbound.api import create_app
from schemas.helios.generate import generate_pes_aller
from tests.conftest import SIREN_A

SIRET_A = f"{SIREN_A}00017"


@pytest.fixture
async def client(settings, store, keys):  # type: ignore[no-untyped-def]
    app = create_app(settings, store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


def pes(tmp_path: Path, nom_fic: str, edit: Callable[[etree._Element], None]) -> bytes:
    path = generate_pes_aller(tmp_path / f"{nom_fic}.xml", siret=SIRET_A, nom_fic=nom_fic, bordereaux=2,
                              pieces_per_bordereau=1, pj_count=0, pj_size=0)
    root = etree.fromstring(path.read_bytes())
    edit(root)
    return etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1")


def no_root_id(root: etree._Element) -> None:
    del root.attrib["Id"]


def no_id_at_all(root: etree._Element) -> None:
    no_root_id(root)
    for bordereau in root.iter("Bordereau"):
        del bordereau.attrib["Id"]


def one_bordereau_without_id(root: etree._Element) -> None:
    no_root_id(root)
    del next(root.iter("Bordereau")).attrib["Id"]


def root_id_only(root: etree._Element) -> None:
    for bordereau in root.iter("Bordereau"):
        del bordereau.attrib["Id"]


async def deposit(client: httpx.AsyncClient, key: str, data: bytes, metadata: dict) -> httpx.Response:  # type: ignore[type-arg]
    return await client.post("/api/v1/documents", headers={"Authorization": f"Bearer {key}"},
                             data={"flow": "helios", "siren": SIREN_A, "metadata": json.dumps(metadata)},
                             files={"document": ("PES.xml", data, "application/xml")})


async def stored(store) -> list[int]:  # type: ignore[no-untyped-def]
    async with store.sessions() as s:
        return [(await s.execute(select(func.count()).select_from(t))).scalar_one()
                for t in (Document, File, JournalEntry, OutboxEvent)]


@pytest.mark.parametrize("edit", [no_id_at_all, one_bordereau_without_id])
async def test_unsignable_pes_asked_to_be_signed_is_refused_and_nothing_stored(
        client, store, keys, tmp_path, edit) -> None:  # type: ignore[no-untyped-def]
    resp = await deposit(client, keys["a"], pes(tmp_path, "NOID", edit), {"signature": True})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "pes_no_signable_id"
    assert "ne contient pas d'identifiant valide" in error["message"]
    assert await stored(store) == [0, 0, 0, 0]


async def test_the_collectivites_signature_default_counts_as_asking(client, store, keys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with store.transaction() as session:
        coll = await session.get(Collectivite, SIREN_A)
        coll.connectors = {**coll.connectors, "flows": {"helios": {"signature_default": True}}}
    resp = await deposit(client, keys["a"], pes(tmp_path, "NOIDDEF", no_id_at_all), {})
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "pes_no_signable_id", resp.text
    assert await stored(store) == [0, 0, 0, 0]


@pytest.mark.parametrize(("edit", "nom_fic"), [(root_id_only, "ROOTID"), (no_root_id, "BORDIDS")])
async def test_a_file_with_a_signature_target_is_accepted(client, store, keys, tmp_path, edit, nom_fic) -> None:  # type: ignore[no-untyped-def]
    resp = await deposit(client, keys["a"], pes(tmp_path, nom_fic, edit), {"signature": True})
    assert resp.status_code == 201, resp.text
    assert resp.json()["metadata"]["signature"] is True


async def test_without_signature_the_ids_do_not_matter_but_the_file_must_arrive_signed(
        client, store, keys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    resp = await deposit(client, keys["a"], pes(tmp_path, "NOIDNOSIG", no_id_at_all), {"signature": False})
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "pes_not_signed", resp.text
