"""The préfecture's messages (2-1, 3-1, 4-1, 5-1) and the collectivité's replies in the S²low
simulator, over real HTTP: recorded as S²low does (docs/protocols.md §1.11), every XML XSD-valid."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import httpx
import pytest

from connectors.simulators.s2low import minimal_pdf
from schemas.actes.archive import read_acte_archive, read_message_archive
from schemas.actes.messages import parse_actes_message
from schemas.xml import validate

AUTH = ("commune-a", "secret-a")
PDF = minimal_pdf(["Pièce"])
LIST = "/modules/actes/api/list_document_prefecture.php"
DOCUMENT = "/modules/actes/actes_transac_get_document.php"
READ = "/modules/actes/api/document_prefecture_mark_as_read.php"
REPLY = "/modules/actes/actes_transac_reponse_create.php"
STATUS = "/modules/actes/actes_transac_get_status.php"


def acknowledged_acte(client: httpx.Client, number: str = "PREF_1") -> int:
    data = {"api": "1", "nature_code": "1", "number": number, "subject": b"Budget", "decision_date": "2024-04-30",
            "type_acte": "99_DE", "classif1": "7", "classif2": "1"}
    body = client.post("/modules/actes/actes_transac_create.php", data=data,
                       files=[("acte_pdf_file", ("acte.pdf", PDF, "application/pdf"))]).content
    assert body.startswith(b"OK\n"), body
    return int(body.split(b"\n")[1])


def message(client: httpx.Client, acte: int, code: str, **extra: Any) -> httpx.Response:
    return client.post("/_admin/prefecture-messages", json={"transaction": acte, "type": code, **extra})


def reply(client: httpx.Client, message_id: int, type_envoie: int, *, pieces: int = 0,
          type_acte: str | None = "99_DE", acte: bytes | None = PDF) -> str:
    data: dict[str, Any] = {"id": str(message_id), "type_envoie": str(type_envoie), "type_pj[]": ["99_DE"] * pieces}
    if type_acte:
        data["type_acte"] = type_acte
    files = [("acte_pdf_file", ("reponse.pdf", acte, "application/pdf"))] if acte else []
    files += [("acte_attachments[]", (f"piece{i}.pdf", PDF, "application/pdf")) for i in range(pieces)]
    body = client.post(REPLY, params={"api": 1}, data=data, files=files or None).content
    try:
        return body.decode("utf-8")  # the script's own echo
    except UnicodeDecodeError:
        return body.decode("iso-8859-1")  # Helpers::returnAndExit


def status(client: httpx.Client, tx_id: int | str) -> int:
    return int(client.get(STATUS, params={"transaction": tx_id}).content.split(b"\n")[1])


def test_messages_are_recorded_as_s2low_does(start_s2low) -> None:
    server = start_s2low(transmit_delay=5)
    with httpx.Client(base_url=server.base_url, auth=AUTH, follow_redirects=True) as client:
        acte = acknowledged_acte(client)
        client.post("/_admin/clock/advance", json={"seconds": 5})  # the AR came back
        ids = {}
        for code in ("2-1", "3-1", "4-1", "5-1"):
            created = message(client, acte, code)
            assert created.status_code == 201, created.text
            ids[code] = created.json()["id"]
        assert [status(client, ids[c]) for c in ("2-1", "3-1", "4-1", "5-1")] == [21, 7, 7, 21]
        client.post("/_admin/clock/advance", json={"seconds": 5})  # the TdT sent the 3-2 / 4-2 AR
        assert [status(client, ids[c]) for c in ("3-1", "4-1")] == [8, 8]

        listed = client.get(LIST).json()
        assert listed == [{"id": ids[c], "type": c[0], "related_transaction_id": acte, "number": "PREF_1",
                           "unique_id": "006-210600235-20240430-PREF_1-DE", "last_status_id": s}
                          for c, s in (("2-1", 21), ("3-1", 8), ("4-1", 8), ("5-1", 21))]
        lines = client.get(DOCUMENT, params={"id": acte}).text.split()
        assert lines == [f"2-21-{ids['2-1']}", f"3-8-{ids['3-1']}", f"4-8-{ids['4-1']}", f"5-21-{ids['5-1']}"]

        for code, root in (("3-1", "DemandePieceComplementaire"), ("5-1", "DefereTA")):
            archive = client.get(DOCUMENT, params={"id": ids[code]})  # redirected to actes_download_file.php?env=
            assert archive.history and "env=" in str(archive.url) and archive.content[:2] == b"\x1f\x8b"
            with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
                members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
            for name, data in members.items():
                if name.endswith(".xml"):
                    validate("actes", data)
            parsed = read_message_archive(archive.content)
            assert parsed.message_root == root and parsed.fields["id_acte"] == "006-210600235-20240430-PREF_1-DE"
            assert parsed.enveloppe["destinataire_siren"] == "210600235" and parsed.documents
            assert all(parsed.files[d].startswith(b"%PDF-") for d in parsed.documents)

        assert client.get(READ, params={"transaction_id": ids["2-1"]}).json() == {"result": "ok"}
        assert [m["id"] for m in client.get(LIST).json()] == [ids["3-1"], ids["4-1"], ids["5-1"]]


def test_admin_refusals(start_s2low) -> None:
    server = start_s2low(ack_delay=30)
    with httpx.Client(base_url=server.base_url, auth=AUTH, follow_redirects=True) as client:
        acte = acknowledged_acte(client)
        assert message(client, acte, "3-1").status_code == 409  # not acknowledged yet
        assert message(client, 999, "3-1").status_code == 404
        assert message(client, acte, "1-2").status_code == 422
        assert client.get(LIST).json() == []


def test_replies_go_out_and_are_acknowledged(start_s2low) -> None:
    server = start_s2low(validation_delay=1, transmit_delay=1, ack_delay=1)
    with httpx.Client(base_url=server.base_url, auth=AUTH, follow_redirects=True) as client:
        acte = acknowledged_acte(client)
        client.post("/_admin/clock/advance", json={"seconds": 3})
        pieces, observations, courrier = (message(client, acte, c).json()["id"] for c in ("3-1", "4-1", "2-1"))
        answers = [reply(client, pieces, 4, pieces=2), reply(client, observations, 3), reply(client, courrier, 4)]
        ids = []
        for answer in answers:
            assert answer.startswith("OK : id généré : "), answer
            ids.append(answer.rsplit(":", 1)[1].strip())
        assert [status(client, i) for i in ids] == [1, 1, 1]
        client.post("/_admin/clock/advance", json={"seconds": 3})
        assert [status(client, i) for i in ids] == [4, 4, 3]  # a 2-2 gets no AR
        ar = client.get(STATUS, params={"transaction": ids[0]}).content.split(b"\n", 2)[2]
        validate("actes", ar)
        assert parse_actes_message(ar).type_code == "3-5"
        assert parse_actes_message(client.get(STATUS, params={"transaction": ids[1]}).content.split(b"\n", 2)[2]
                                   ).type_code == "4-5"
        # The reply went out as a CL → MI archive: a PieceComplementaire with the document and the pièces.
        sent = server.app.state.sim.state.transactions[int(ids[0])]
        parsed = read_acte_archive(sent.archive_data, name=sent.archive_name)
        assert parsed.message_root == "PieceComplementaire" and len(parsed.acte["documents"]) == 3
        assert client.get(LIST).json()[0]["id"] == pieces  # replies are not messages to read


@pytest.mark.parametrize(
    ("code", "kwargs", "expected"),
    [
        ("5-1", {"type_envoie": 4}, "KO : "),  # a déféré takes no reply
        ("2-1", {"type_envoie": 3}, "KO : "),  # nothing to refuse in a courrier simple
        ("3-1", {"type_envoie": 4, "type_acte": None}, "KO\nErreur lors de la réception du fichier : typologie absente"),
        ("4-1", {"type_envoie": 4, "pieces": 1}, "KO : "),  # only a 3-4 carries pièces
        ("3-1", {"type_envoie": 4, "acte": None}, "KO : Envoi de fichier illégal."),
        ("3-1", {"type_envoie": 4, "acte": b"not a pdf"}, "KO : "),
    ],
)
def test_reply_refusals(start_s2low, code: str, kwargs: dict[str, Any], expected: str) -> None:
    server = start_s2low()
    with httpx.Client(base_url=server.base_url, auth=AUTH, follow_redirects=True) as client:
        target = message(client, acknowledged_acte(client), code).json()["id"]
        type_envoie = kwargs.pop("type_envoie")
        assert reply(client, target, type_envoie, **kwargs).startswith(expected)
        assert len(client.get("/_admin/transmissions").json()["transactions"]) == 2  # nothing stored


def test_faults_and_determinism(start_s2low) -> None:
    archives = []
    for _ in range(2):
        server = start_s2low()
        with httpx.Client(base_url=server.base_url, auth=AUTH, follow_redirects=True) as client:
            target = message(client, acknowledged_acte(client), "4-1").json()["id"]
            archives.append(client.get(DOCUMENT, params={"id": target}).content)
            client.post("/_admin/faults", json={"fail_next": 1, "endpoint": "actes_transac_reponse_create.php"})
            assert client.post(REPLY, params={"api": 1}, data={"id": str(target), "type_envoie": "4",
                                                                 "type_acte": "99_DE"},
                               files=[("acte_pdf_file", ("r.pdf", PDF, "application/pdf"))]).status_code == 500
            assert len(client.get("/_admin/transmissions").json()["transactions"]) == 2
            client.post("/_admin/faults", json={"malformed_next": 1})
            assert client.get(DOCUMENT, params={"id": target}).content[:2] != b"\x1f\x8b"
            client.post("/_admin/faults", json={"fail_next": 1, "endpoint": "list_document_prefecture.php"})
            assert client.get(LIST).status_code == 500
    assert archives[0] == archives[1]  # same scenario, same bytes
