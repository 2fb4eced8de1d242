"""The ACTES connector's préfecture-message methods against the S²low simulator over real HTTP:
collect (one listing per collectivité), download and check, mark read, reply, follow the reply."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import httpx
import pytest

from connectors.base import ConnectorError, InputFile, PermanentConnectorError
from connectors.simulators.s2low import minimal_pdf
from connectors.tdt.s2low import S2lowConnector
from connectors.tdt.s2low_prefecture import ROLE_ARCHIVE, ROLE_DOCUMENT, ROLE_MESSAGE
from schemas.actes.messages import parse_actes_message
from schemas.xml import validate
from tests.connectors.test_tdt_s2low import LOGIN, PASSWORD, job

PDF = minimal_pdf(["Réponse"])


def admin(server, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, server.base_url + path, **kwargs)
    response.raise_for_status()
    return response.json()


@pytest.fixture
async def connector(start_s2low):
    server = start_s2low(validation_delay=1, transmit_delay=1, ack_delay=1)
    made = S2lowConnector(server.base_url, LOGIN, PASSWORD, timeout=10)
    made.server = server  # type: ignore[attr-defined]
    yield made
    await made.aclose()


async def acknowledged(connector: S2lowConnector, numero: str) -> str:
    remote_id, _ = await connector.submit(job(numero))
    admin(connector.server, "POST", "/_admin/clock/advance", json={"seconds": 3})  # type: ignore[attr-defined]
    return remote_id


def send(connector: S2lowConnector, acte: str, code: str) -> str:
    return str(admin(connector.server, "POST", "/_admin/prefecture-messages",  # type: ignore[attr-defined]
                     json={"transaction": int(acte), "type": code})["id"])


async def test_collect_download_and_mark_read(connector: S2lowConnector) -> None:
    actes = [await acknowledged(connector, f"MSG_{i}") for i in range(3)]
    sent = [send(connector, actes[0], "3-1"), send(connector, actes[1], "2-1"), send(connector, actes[2], "5-1")]
    refs = await connector.prefecture_messages()
    assert [(r.transaction_id, r.code, r.acte_transaction_id) for r in refs] == [
        (sent[0], "3-1", actes[0]), (sent[1], "2-1", actes[1]), (sent[2], "5-1", actes[2])]
    assert refs[0].id_acte == "006-210600235-20240430-MSG_0-DE" and refs[0].status == 7 and refs[1].status == 21
    calls = admin(connector.server, "GET", "/_admin/stats")["calls"]  # type: ignore[attr-defined]
    assert calls["list_document_prefecture"] == 1  # one request for the collectivité, not one per acte

    demande = await connector.prefecture_message(refs[0])
    assert demande.code == "3-1" and demande.label == "Demande de pièces complémentaires"
    assert demande.id_acte == refs[0].id_acte and demande.sent_on is not None
    assert demande.fields["description_pieces"].startswith("Merci de transmettre")
    assert demande.archive.role == ROLE_ARCHIVE and demande.archive.name.endswith(".tar.gz")
    assert [f.role for f in demande.files] == [ROLE_MESSAGE, ROLE_DOCUMENT]
    validate("actes", demande.files[0].data)
    assert demande.files[1].data.startswith(b"%PDF-") and demande.files[1].media_type == "application/pdf"
    defere = await connector.prefecture_message(refs[2])
    assert defere.fields["nature_illegalite"] and defere.fields["pieces_jointes"] == [defere.files[1].name]

    for ref in refs[:2]:
        await connector.mark_prefecture_message_read(ref.transaction_id)
    assert [r.code for r in await connector.prefecture_messages()] == ["5-1"]


async def test_replies_and_their_acknowledgements(connector: S2lowConnector) -> None:
    acte = await acknowledged(connector, "REP_1")
    demande_id, observations_id, courrier_id = (send(connector, acte, c) for c in ("3-1", "4-1", "2-1"))
    refs = {r.code: r for r in await connector.prefecture_messages()}
    document = InputFile("reponse.pdf", "document", PDF)
    pieces = [InputFile(f"piece{i}.pdf", "annexe", minimal_pdf([f"Pièce {i}"])) for i in range(2)]
    sent = await connector.send_prefecture_reply(refs["3-1"], "envoi", document, pieces, ["99_DE", "22_AT"])
    rejet = await connector.send_prefecture_reply(refs["4-1"], "refus", document)
    reponse = await connector.send_prefecture_reply(refs["2-1"], "envoi", document)
    assert len({sent, rejet, reponse}) == 3
    with pytest.raises(PermanentConnectorError):  # only a 3-4 carries pièces: refused before any call
        await connector.send_prefecture_reply(refs["4-1"], "envoi", document, pieces)
    assert (await connector.prefecture_reply(sent)).status == 1

    admin(connector.server, "POST", "/_admin/clock/advance", json={"seconds": 3})  # type: ignore[attr-defined]
    status = await connector.prefecture_reply(sent)
    assert status.acknowledged and status.status == 4 and status.ar is not None
    assert parse_actes_message(status.ar.data, check_xsd=True).type_code == "3-5"
    assert parse_actes_message((await connector.prefecture_reply(rejet)).ar.data).type_code == "4-5"  # type: ignore[union-attr]
    assert not (await connector.prefecture_reply(reponse)).acknowledged  # a 2-2 gets no AR

    # After a crash, a reply is found among the acte's related transactions (S²low refuses no second
    # one): a message that got a reply is listed as its reply (ActesTransaction::getCourrierInfo).
    related = await connector.prefecture_transactions(acte)
    assert [(t.type, t.transaction_id, t.status) for t in related] == [("3", sent, 4), ("4", rejet, 4),
                                                                        ("2", reponse, 3)]
    assert {demande_id, observations_id, courrier_id}.isdisjoint(t.transaction_id for t in related)
    sim = connector.server.app.state.sim  # type: ignore[attr-defined]
    kept = sim.state.transactions[int(sent)]
    with tarfile.open(fileobj=io.BytesIO(kept.archive_data)) as tar:
        names = tar.getnames()
    assert names[1].endswith("-3-4_0.xml") and names[2].startswith("99_DE-") and names[3].startswith("22_AT-")


async def test_a_deferral_takes_no_reply(connector: S2lowConnector) -> None:
    send(connector, await acknowledged(connector, "DEF_1"), "5-1")
    [ref] = await connector.prefecture_messages()
    with pytest.raises(PermanentConnectorError, match="takes no reply"):
        await connector.send_prefecture_reply(ref, "envoi", InputFile("r.pdf", "document", PDF))


async def test_hostile_or_broken_archives(connector: S2lowConnector) -> None:
    send(connector, await acknowledged(connector, "HOST_1"), "4-1")
    [ref] = await connector.prefecture_messages()
    server = connector.server  # type: ignore[attr-defined]
    admin(server, "POST", "/_admin/faults", json={"malformed_next": 1})
    with pytest.raises(ConnectorError) as info:
        await connector.prefecture_message(ref)
    assert not isinstance(info.value, PermanentConnectorError)  # garbage once: worth another try
    assert (await connector.prefecture_message(ref)).code == "4-1"

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info_ = tarfile.TarInfo("../../etc/evil.xml")
        info_.size = 4
        tar.addfile(info_, io.BytesIO(b"<a/>"))
    server.app.state.sim.state.transactions[int(ref.transaction_id)].archive_data = raw.getvalue()
    with pytest.raises(PermanentConnectorError, match="unsafe path"):
        await connector.prefecture_message(ref)

    admin(server, "POST", "/_admin/faults", json={"fail_next": 1, "endpoint": "list_document_prefecture.php"})
    with pytest.raises(ConnectorError):
        await connector.prefecture_messages()
