"""The préfecture's letters through the Pastell API (connectors/inbound/pastell/courriers.py), with
the calls a client makes (Webdelib: `verif-reponse-tdt`, `detail-document.php`, `has_<x>`, `<x>_id`,
`recuperation-fichier.php field=<x>`; then the reply fields and `send-reponse-prefecture`)."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from bus.config import Settings
from bus.store.db import Store
from bus.store.models import PrefecturePoll, PrefectureReply, utcnow
from connectors.inbound.api import create_app
from connectors.simulators.s2low import minimal_pdf
from tests.courriers.conftest import World
from tests.pastell.conftest import basic, id_e_of
from tests.sim_servers import SIREN


@pytest.fixture
async def pastell(world: World, settings: Settings, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers=basic(world.keys["depositor"])) as client:
        yield client


async def test_a_client_reads_the_letters_and_answers_a_demande_de_pieces(world: World,
                                                                          pastell: httpx.AsyncClient) -> None:
    doc_id, tx = await world.acte("PASTELL_1")
    id_e = await id_e_of(pastell, world.keys["depositor"], SIREN)
    url = f"/api/v2/entite/{id_e}/document/{doc_id}"
    before = (await pastell.get(url)).json()
    assert "verif-reponse-tdt" in before["action_possible"] and "send-reponse-prefecture" not in before["action_possible"]

    demande_id, courrier_id = world.send(tx, "3-1"), world.send(tx, "2-1")
    # The client pushes the poll (Webdelib): the worker's next round asks the TdT.
    pushed = await pastell.post("/api/action.php", data={"id_e": str(id_e), "id_d": doc_id, "action": "verif-reponse-tdt"})
    assert pushed.json()["result"] == "1"
    async with world.store.sessions() as session:
        poll = await session.get(PrefecturePoll, SIREN)
    assert poll is not None and poll.next_at <= utcnow()
    await world.collector.run_due()

    detail = (await pastell.post("/api/detail-document.php", data={"id_e": str(id_e), "id_d": doc_id})).json()
    data = detail["data"]
    assert (data["has_demande_piece_complementaire"], data["demande_piece_complementaire_id"]) == ("1", demande_id)
    assert (data["has_courrier_simple"], data["courrier_simple_id"]) == ("1", courrier_id)
    assert data["demande_piece_complementaire_date"] and "has_reponse_demande_piece_complementaire" not in data
    assert detail["last_action"]["action"] == "attente-reponse-prefecture"
    assert "send-reponse-prefecture" in detail["action_possible"]
    listed = (await pastell.get(f"/api/v2/entite/{id_e}/document", params={"lastetat": "attente-reponse-prefecture"})).json()
    assert [r["id_d"] for r in listed] == [doc_id]
    archive = await pastell.get("/api/recuperation-fichier.php",
                                params={"id_e": id_e, "id_d": doc_id, "field": "demande_piece_complementaire"})
    assert archive.status_code == 200 and gzip.decompress(archive.content)
    letter = await pastell.get(f"{url}/file/demande_piece_complementaire_unzip/1")
    assert letter.status_code == 200 and letter.content.startswith(b"%PDF-")

    # Only the reply fields of a waiting letter are editable on a deposited acte.
    refused = await pastell.patch(url, data={"objet": "Autre objet"})
    assert refused.status_code == 400 and "modification" in refused.json()["error-message"]
    assert (await pastell.patch(url, data={"nature_reponse_demande_piece_complementaire": "4"})).status_code == 200
    for field, name in (("reponse_demande_piece_complementaire", "pieces.pdf"),
                        ("reponse_pj_demande_piece_complementaire", "plan.pdf")):
        sent = await pastell.post(f"{url}/file/{field}", data={"file_name": name},
                                  files={"file_content": (name, minimal_pdf([name]))})
        assert sent.status_code == 201, sent.text
    answered = await pastell.post(f"{url}/action/send-reponse-prefecture")
    assert answered.status_code == 201 and answered.json()["message"] == "Réponse envoyée à la préfecture"
    async with world.store.sessions() as session:
        [reply] = list((await session.execute(select(PrefectureReply))).scalars())
    assert (reply.kind, reply.code, [f["role"] for f in reply.files]) == (
        "pieces", "3-4", ["prefecture_reply_document", "prefecture_reply_annexe"])
    await world.runner.process_due()

    after = (await pastell.get(url)).json()
    assert after["data"]["has_reponse_demande_piece_complementaire"] == "1"
    assert after["data"]["nature_reponse_demande_piece_complementaire"] == "4"
    transaction = after["data"]["demande_piece_complementaire_response_transaction_id"]
    assert transaction and world.calls()["reply_3-4"] == 1
    assert after["last_action"]["action"] == "attente-reponse-prefecture"  # the 2-1 still waits
    mine = await pastell.get(f"{url}/file/reponse_demande_piece_complementaire")
    assert mine.status_code == 200 and mine.content.startswith(b"%PDF-")
    world.advance(3)
    await world.runner.process_due()
    await world.runner.process_due()
    acquitted = (await pastell.get(url)).json()["data"]
    assert acquitted.get("demande_piece_complementaire_has_acquittement") == "1"

    other = await pastell.get(url, headers=basic(world.keys["other"]))
    assert other.status_code == 403  # another collectivité's entité
