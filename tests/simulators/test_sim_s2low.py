"""The S²low simulator over real HTTP: the API surface, synchronous checks, state machine, faults."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.simulators.s2low import minimal_pdf
from schemas.actes.archive import read_acte_archive
from schemas.actes.messages import parse_actes_message
from schemas.xml import validate

SIREN = "210600235"
AUTH = ("commune-a", "secret-a")
PDF = minimal_pdf(["Délibération de test"])
CREATE = "/modules/actes/actes_transac_create.php"
STATUS = "/modules/actes/actes_transac_get_status.php"
LIST = "/modules/actes/api/list_actes.php"


def form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "api": "1", "nature_code": "1", "number": "DEL2024_001",
        "subject": "Délibération : budget primitif".encode("iso-8859-1"),
        "decision_date": "2024-04-30", "en_attente": "0", "document_papier": "0",
        "type_acte": "99_DE", "type_pj[]": ["99_DE"],
        "classif1": "7", "classif2": "1", "classif3": "2", "classif4": "", "classif5": "",
    }
    data.update(overrides)
    return data


def files(acte: bytes = PDF, annexes: int = 1) -> list[tuple[str, tuple[str, bytes, str]]]:
    out = [("acte_pdf_file", ("deliberation.pdf", acte, "application/pdf"))]
    out += [("acte_attachments[]", (f"annexe{i}.pdf", PDF, "application/pdf")) for i in range(annexes)]
    return out


def text(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"].lower().startswith("text/plain; charset=iso-8859-1")
    return response.content.decode("iso-8859-1").rstrip("\n").split("\n")


def create(client: httpx.Client, **overrides: Any) -> list[str]:
    annexes = overrides.pop("annexes", 1)
    acte = overrides.pop("acte", PDF)
    return text(client.post(CREATE, data=form(**overrides), files=files(acte, annexes)))


def advance(client: httpx.Client, seconds: float) -> None:
    client.post("/_admin/clock/advance", json={"seconds": seconds}).raise_for_status()


def test_connexion_and_auth(start_s2low) -> None:
    server = start_s2low()
    with httpx.Client(base_url=server.base_url) as client:
        assert text(client.get("/api/test-connexion.php", auth=AUTH)) == ["OK"]
        refused = client.get("/api/test-connexion.php", auth=("commune-a", "wrong"))
        assert refused.status_code == 401 and text(refused)[0] == "KO"
        assert client.post(CREATE, data=form(), files=files(), auth=("nobody", "x")).status_code == 401


def test_acte_state_machine_and_real_archive(start_s2low) -> None:
    server = start_s2low(validation_delay=10, transmit_delay=10, ack_delay=10)
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        ok, tx_id = create(client)
        assert ok == "OK" and tx_id.isdigit()
        seen = []
        for _ in range(4):
            lines = text(client.get(STATUS, params={"transaction": tx_id}))
            seen.append(int(lines[1]))
            advance(client, 10)
        assert seen == [1, 2, 3, 4]
        body = client.get(STATUS, params={"transaction": tx_id}).content
        head, _, aracte = body.partition(b"\n4\n")
        assert head == b"OK"
        validate("actes", aracte.strip())
        message = parse_actes_message(aracte.strip())
        assert message.root == "ARActe"
        assert message.fields["id_acte"] == "006-210600235-20240430-DEL2024_001-DE"

        stored = server.app.state.sim.state.transactions[int(tx_id)]  # S²low serves no archive back
        name = stored.archive_name
        assert name == "SLO-EACT--210600235--20240502-1.tar.gz"
        parsed = read_acte_archive(stored.archive_data, name=name, trigramme="SLO", quadrigramme="EACT")
        assert parsed.acte["numero_interne"] == "DEL2024_001"
        assert parsed.acte["objet"] == "Délibération : budget primitif"
        assert len(parsed.acte["annexes"]) == 1

        listing = client.get("/modules/actes/actes_transac_get_files_list.php", params={"transaction": tx_id}).json()
        assert listing[0]["name"].endswith("-1-1_0.xml") and listing[1]["posted_filename"] == "deliberation.pdf"
        stamped = client.get("/modules/actes/actes_download_file.php", params={"file": listing[1]["id"], "tampon": "true"})
        assert stamped.content.startswith(b"%PDF-") and stamped.content != PDF
        assert client.get("/modules/actes/actes_create_pdf.php", params={"trans_id": tx_id}).content.startswith(b"%PDF-")
        assert client.get("/modules/actes/actes_classification_fetch.php", params={"api": 1}).content.lstrip().startswith(b"<?xml")

        # the second acte of the day takes the next enveloppe serial
        assert create(client, number="DEL2024_002")[0] == "OK"
        rows = client.get("/_admin/transmissions").json()["transactions"]
        assert rows[1]["archive_name"] == "SLO-EACT--210600235--20240502-2.tar.gz"
        assert [h["status"] for h in rows[0]["history"]] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"number": "del-1"}, "numéro"),
        ({"number": "_A1"}, "numéro"),
        ({"number": "A" * 16}, "numéro"),
        ({"decision_date": "2024-05-03"}, "futur"),
        ({"nature_code": "9"}, "nature"),
        ({"classif2": ""}, "classification"),
        ({"type_acte": ""}, "typologie absente"),
        ({"type_pj[]": []}, "typologie absente"),
        ({"type_acte": "99de"}, "typologie"),
        ({"acte": b"not a pdf"}, "PDF"),
        ({"number": "ERRKO_1"}, "Erreur de validation"),
    ],
)
def test_synchronous_ko(start_s2low, overrides: dict[str, Any], message: str) -> None:
    server = start_s2low()
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        lines = create(client, **overrides)
        assert lines[0] == "KO"
        assert message in "\n".join(lines[1:])
        assert client.get("/_admin/transmissions").json()["transactions"] == []


def test_size_limit(start_s2low) -> None:
    server = start_s2low(max_archive_size=1000)
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        lines = create(client, acte=PDF + b"\0" * 2000)
        assert lines[0] == "KO" and "trop importante" in lines[1]


def test_duplicate_numero_is_ko_whatever_the_first_one_became(start_s2low) -> None:
    server = start_s2low()
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        assert create(client)[0] == "OK"
        lines = create(client)
        assert lines[0] == "KO" and "même numéro interne existe déjà" in lines[1]
        _, failed = create(client, number="ERRVAL_1")
        assert text(client.get(STATUS, params={"transaction": failed}))[1] == "-1"
        assert create(client, number="ERRVAL_1")[0] == "KO"  # an acte in error keeps its numéro
        view = client.get("/_admin/transmissions").json()
        assert view["duplicate_refusals"] == 2 and view["duplicates"] == 0 and len(view["transactions"]) == 2


def test_no_endpoint_the_real_s2low_lacks(start_s2low) -> None:
    server = start_s2low()
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        assert create(client)[0] == "OK"
        for path in ("/modules/actes/actes_transac_find.php", "/modules/actes/actes_transac_get_archive.php",
                     "/modules/helios/api/helios_transac_find.php", "/modules/helios/api/helios_transac_get_file.php",
                     "/docs", "/openapi.json"):
            assert client.get(path, params={"api": 1, "number": "DEL2024_001", "transaction": 1}).status_code == 404


def test_anomalies(start_s2low) -> None:
    server = start_s2low()
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        _, ano = create(client, number="ERRANO_1")
        _, env = create(client, number="ERRENV_1")
        _, val = create(client, number="ERRVAL_1")
        # As the real script echoes it: "OK\n-1\n", the ministry's message, the workflow message.
        body = client.get(STATUS, params={"transaction": ano}).content
        assert body.startswith(b"OK\n-1\n")
        xml, _, message = body[len(b"OK\n-1\n"):].partition(b"</actes:AnomalieActe>")
        anomaly = parse_actes_message(xml + b"</actes:AnomalieActe>")
        assert anomaly.root == "AnomalieActe" and anomaly.fields["nature"] == "002"
        assert anomaly.fields["detail"].startswith("ODT-VERIF-01")
        assert message.decode("iso-8859-1").strip().startswith("Anomalie signalee par le MI : 002")
        body = client.get(STATUS, params={"transaction": env}).content
        assert b"AnomalieEnveloppe" in body and body.rstrip().endswith("ODT-VERIF-17 : La transaction que vous avez "
                                                                       "envoyé n'est pas reconnu dans l'application "
                                                                       "ACTES)".encode("iso-8859-1"))
        lines = text(client.get(STATUS, params={"transaction": val}))
        assert lines[1] == "-1" and "PAdES" in lines[2]


def test_reject_rate_is_seeded(start_s2low) -> None:
    server = start_s2low(faults={"reject_rate": 1.0})
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        _, tx = create(client)
        assert text(client.get(STATUS, params={"transaction": tx}))[1] == "-1"


def test_en_attente_stays_at_17(start_s2low) -> None:
    server = start_s2low()
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        _, tx = create(client, en_attente="1")
        assert text(client.get(STATUS, params={"transaction": tx}))[1] == "17"


def test_cancel_only_at_4_then_acte_goes_to_0(start_s2low) -> None:
    server = start_s2low(transmit_delay=5)
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        _, tx = create(client)
        assert text(client.post("/modules/actes/actes_transac_cancel.php", data={"api": 1, "id": tx}))[0] == "KO"
        advance(client, 5)
        ok, cancel_id = text(client.post("/modules/actes/actes_transac_cancel.php", data={"api": 1, "id": tx}))
        assert ok == "OK" and cancel_id != tx
        assert text(client.post("/modules/actes/actes_transac_cancel.php", data={"api": 1, "id": tx}))[0] == "KO"
        advance(client, 5)
        body = client.get(STATUS, params={"transaction": tx}).content
        assert body.startswith(b"OK\n0\n") and b"ARAnnulation" in body
        assert text(client.get(STATUS, params={"transaction": cancel_id}))[1] == "4"


def test_faults_500_timeout_malformed(start_s2low) -> None:
    server = start_s2low()
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        client.post("/_admin/faults", json={"fail_next": 1, "endpoint": "actes_transac_create.php"})
        assert client.get("/api/test-connexion.php").status_code == 200  # other endpoint untouched
        failed = client.post(CREATE, data=form(), files=files())
        assert failed.status_code == 500
        assert client.get("/_admin/transmissions").json()["transactions"] == []
        assert create(client)[0] == "OK"

        client.post("/_admin/faults", json={"timeout_next": 1, "timeout_seconds": 2, "endpoint": None})
        with pytest.raises(httpx.ReadTimeout):
            client.post(CREATE, data=form(number="DEL2024_002"), files=files(), timeout=0.5)
        listed = client.get(LIST, params={"status_id": 4}).json()["transactions"]
        assert [t["number"] for t in listed] == ["DEL2024_002", "DEL2024_001"]  # made although the answer was lost

        client.post("/_admin/faults", json={"malformed_next": 1})
        garbled = client.get(STATUS, params={"transaction": "1"}).content
        assert garbled.startswith(b"OK\n4\n") and b"ARActe" not in garbled
        assert b"ARActe" in client.get(STATUS, params={"transaction": "1"}).content
        client.delete("/_admin/faults")
        stats = client.get("/_admin/stats").json()
        assert stats["faults"]["injected"]["fail"] == 1 and stats["duplicates"] == 0


def test_admin_authority_registration(start_s2low) -> None:
    server = start_s2low()
    with httpx.Client(base_url=server.base_url) as client:
        put = client.put("/_admin/authorities/214400152", json={
            "login": "commune-b", "password": "pw", "departement": "044", "arrondissement": "1",
            "nature": "31", "name": "Commune B"})
        assert put.status_code == 200 and "password" not in put.json()
        assert client.get("/api/test-connexion.php", auth=("commune-b", "pw")).status_code == 200
        # each authority sees only its own transactions; numéros are unique per SIREN only
        assert create(client.__class__(base_url=server.base_url, auth=AUTH))[0] == "OK"
        with httpx.Client(base_url=server.base_url, auth=("commune-b", "pw")) as other:
            assert create(other)[0] == "OK"
            assert text(other.get(STATUS, params={"transaction": "1"}))[0] == "KO"


def test_state_file_survives_restart(start_s2low, tmp_path: Path) -> None:
    state = tmp_path / "s2low.json"
    server = start_s2low(state_file=state, ack_delay=30)
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        _, tx = create(client)
        assert text(client.get(STATUS, params={"transaction": tx}))[1] == "3"
    server.stop()
    assert state.exists()
    again = start_s2low(state_file=state, ack_delay=30)
    with httpx.Client(base_url=again.base_url, auth=AUTH) as client:
        advance(client, 30)
        assert text(client.get(STATUS, params={"transaction": tx}))[1] == "4"
        assert create(client)[0] == "KO"  # the numéro is still known
        _, second = create(client, number="DEL2024_002")
        assert int(second) == int(tx) + 1


def test_decision_date_parsing_uses_simulated_today(start_s2low) -> None:
    server = start_s2low()
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        assert create(client, decision_date=date(2024, 5, 2).isoformat())[0] == "OK"
