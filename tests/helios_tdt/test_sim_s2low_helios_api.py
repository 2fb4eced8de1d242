"""The S²low simulator's HELIOS endpoints over real HTTP: answer formats, checks, state machine, persistence."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from helios_tdt_testlib import (
    LOGIN,
    PASSWORD,
    SIREN,
    admin,
    advance,
    pes_variant,
    server_factory,
)
from helios_tdt_testlib import settings as sim_settings
from lxml import etree

from connectors.simulators.s2low import create_app
from connectors.simulators.server import ServerThread

AUTH = (LOGIN, PASSWORD)
IMPORT = "/modules/helios/api/helios_importer_fichier.php"
STATUS = "/modules/helios/api/helios_transac_get_status.php"
LIST = "/modules/helios/api/list_pes_aller.php"
DOWNLOAD = "/modules/helios/helios_download_file.php"
ACQUIT = "/modules/helios/helios_download_acquit.php"


@pytest.fixture
def start_s2low():
    yield from server_factory()


def xml(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"<?xml version='1.0' encoding='ISO-8859-1'?>")
    root = etree.fromstring(response.content)
    return {"__root__": root.tag, **{c.tag: c.text or "" for c in root}}


def post(client: httpx.Client, data: bytes, name: str = "pes.xml") -> dict[str, str]:
    return xml(client.post(IMPORT, params={"api": "1"}, files={"enveloppe": (name, data, "application/xml")}))


def status(client: httpx.Client, tx_id: str) -> dict[str, str]:
    return xml(client.get(STATUS, params={"api": "1", "transaction": tx_id}))


def test_import_and_status_answers(start_s2low) -> None:
    server = start_s2low(helios={"validation_delay": 5, "transmit_delay": 5, "ack_delay": 5})
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        posted = pes_variant("API_1")
        answer = post(client, posted)
        assert answer["__root__"] == "import" and answer["resultat"] == "OK" and answer["id"].isdigit()
        tx_id = answer["id"]
        st = status(client, tx_id)
        assert st["__root__"] == "transaction" and st["id"] == tx_id and st["resultat"] == "OK"
        assert st["status"] == "1" and st["message"] == "Fichier bien reçu par la plate-forme Helios"
        assert client.get(ACQUIT, params={"id": tx_id}).status_code == 404
        advance(server, 5)
        assert status(client, tx_id)["status"] == "2"
        advance(server, 5)
        assert status(client, tx_id)["status"] == "3"
        advance(server, 5)
        assert status(client, tx_id)["status"] == "4"
        acquit = client.get(ACQUIT, params={"id": tx_id})
        assert acquit.status_code == 200 and b"PES_ACQUIT" in acquit.content
        assert 'filename="010001_240502100015-ACK-A3020100_A0000MIX_OK.xml"' in acquit.headers["content-disposition"]
        unknown = status(client, "999")
        assert unknown["resultat"] == "KO"
        listed = client.get(LIST, params={"status_id": 4}).json()
        assert listed == {"status_id": "4", "authority_id": "1", "offset": "0", "limit": "100",
                          "transactions": [{"id": tx_id}]}
        assert client.get(LIST, params={"status_id": 4, "min_date": "2024-05-03"}).json()["transactions"] == []
        sent = client.get(DOWNLOAD, params={"id": tx_id})
        assert sent.content == posted and 'filename="pes.xml"' in sent.headers["content-disposition"]
    # Another authority does not see it.
    with httpx.Client(base_url=server.base_url, auth=("commune-a", "secret-a")) as client:
        assert status(client, tx_id)["resultat"] == "KO"
        assert client.get(LIST, params={"status_id": 4}).json()["transactions"] == []
        assert client.get(DOWNLOAD, params={"id": tx_id}).status_code == 302
    assert httpx.get(server.base_url + STATUS, params={"transaction": tx_id}).status_code == 401


def test_pesalr2_counter_per_day(start_s2low) -> None:
    server = start_s2low()
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        ids = [post(client, pes_variant(f"COUNTER_{i}"))["id"] for i in range(3)]
        for tx_id in ids:
            status(client, tx_id)
        advance(server, 86400)
        status(client, post(client, pes_variant("COUNTER_NEXT_DAY"))["id"])
    names = [row["pesalr2_name"] for row in admin(server, "GET", "/_admin/helios")["transactions"]]
    assert names == [f"PESALR2_{SIREN}_240502_001.xml", f"PESALR2_{SIREN}_240502_002.xml",
                     f"PESALR2_{SIREN}_240502_003.xml", f"PESALR2_{SIREN}_240503_001.xml"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.replace(b'<CodCol V="244"/>', b'<CodCol V="2444"/>'), "Le CodCol est trop long"),
        (lambda d: d.split(b"<PES_DepenseAller>")[0] + b"</n:PES_Aller>\n",
         "ce fichier ne contient ni bordereau, ni PJ, ni marché"),
        (lambda d: b"pas du XML", "Le fichier PES n'est pas valide : le document n'est pas un fichier XML"),
    ],
)
def test_validation_failures(start_s2low, edit, message) -> None:
    server = start_s2low(helios={"require_signature": False})
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        tx_id = post(client, edit(pes_variant("BAD_1", sign=False)))["id"]
        st = status(client, tx_id)
        assert st["status"] == "-1" and st["message"] == message


def test_duplicate_and_empty_imports(start_s2low) -> None:
    server = start_s2low()
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        pes = pes_variant("DUPL_1")
        assert post(client, pes)["resultat"] == "OK"
        answer = post(client, pes, name="autre-nom.xml")
        assert answer["resultat"] == "KO" and answer["message"] == "doublon détecté. Ce fichier a déjà été posté"
        assert post(client, b"")["resultat"] == "KO"
        assert xml(client.post(IMPORT, data={"api": "1"}))["resultat"] == "KO"
        # The same bytes stay refused whatever the first transaction became (S²low's isDuplicate).
        bad = pes_variant("DUPL_BAD", sign=False).replace(b'encoding="ISO-8859-1"', b'encoding="UTF-8"', 1)
        first = post(client, bad)["id"]
        assert status(client, first)["status"] == "-1"
        assert post(client, bad)["resultat"] == "KO"
    # ... and whoever posts them.
    with httpx.Client(base_url=server.base_url, auth=("commune-a", "secret-a")) as other:
        assert post(other, pes)["message"] == "doublon détecté. Ce fichier a déjà été posté"
    view = admin(server, "GET", "/_admin/helios")
    assert view["duplicate_refusals"] == 3 and view["duplicates"] == 0 and len(view["transactions"]) == 2
    assert admin(server, "GET", "/_admin/transmissions")["transactions"] == []  # ACTES view untouched


def test_reject_rate_and_kopj(start_s2low) -> None:
    server = start_s2low(faults={"reject_rate": 1.0})
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        assert status(client, post(client, pes_variant("RATE_1"))["id"])["status"] == "6"
        tx_id = post(client, pes_variant("PJ_KOPJ_2"))["id"]
        assert status(client, tx_id)["status"] == "8"
        acquit = client.get(ACQUIT, params={"id": tx_id}).content
        assert b"ERREUR_DOUBLON_PJ" in acquit


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "s2low.json"
    with (ServerThread(create_app(sim_settings(state_file=state_file, helios={"ack_delay": 30}))) as server,
          httpx.Client(base_url=server.base_url, auth=AUTH) as client):
        posted = pes_variant("PERSIST_1")  # signing stamps the time: keep these very bytes
        tx_id = post(client, posted)["id"]
        assert status(client, tx_id)["status"] == "3"
    with ServerThread(create_app(sim_settings(state_file=state_file, helios={"ack_delay": 30}))) as server:
        advance(server, 30)
        with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
            assert status(client, tx_id)["status"] == "4"
            assert client.get(ACQUIT, params={"id": tx_id}).status_code == 200
            assert post(client, posted)["resultat"] == "KO"  # sha1 remembered
            assert int(post(client, pes_variant("PERSIST_2"))["id"]) == int(tx_id) + 1


def test_pes_retour_endpoints(start_s2low) -> None:
    server = start_s2low()
    retour = b'<?xml version="1.0" encoding="ISO-8859-1"?><n:PES_Retour xmlns:n="x"/>'
    added = httpx.post(server.base_url + f"/_admin/helios/retours/{SIREN}", params={"nom": "PES_RETOUR_1.xml"},
                       content=retour).json()
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        liste = etree.fromstring(client.get("/modules/helios/api/helios_get_list.php").content)
        assert liste.findtext("idColl") == SIREN and liste.findtext("resultat") == "OK"
        assert [p.findtext("nom") for p in liste.findall("pes_retour")] == ["PES_RETOUR_1.xml"]
        got = client.get("/modules/helios/api/helios_get_retour.php", params={"id": added["id"]})
        assert got.content == retour
        assert xml(client.get("/modules/helios/api/helios_change_status.php", params={"id": added["id"]}))["resultat"] == "OK"
        liste = etree.fromstring(client.get("/modules/helios/api/helios_get_list.php").content)
        assert liste.findall("pes_retour") == []


def test_nom_fic_already_transmitted_and_the_archivist_right(start_s2low) -> None:
    from connectors.simulators.s2low import AuthorityIn

    server = start_s2low(helios={"require_signature": False})
    with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
        first = post(client, pes_variant("NOMFIC_1", sign=False))["id"]
        other_bytes = pes_variant("NOMFIC_1", sign=False, edit=lambda d: d.replace(b"Berger-Levrault", b"Berger", 1))
        second = post(client, other_bytes)["id"]
        assert status(client, first)["status"] == "4"
        assert status(client, second) | {"message": status(client, second)["message"]} == {
            "__root__": "transaction", "id": second, "resultat": "OK", "status": "-1",
            "message": f"Transaction {second} : ce fichier existe déjà sur la plateforme"}
        assert [t["id"] for t in client.get(LIST, params={"status_id": -1}).json()["transactions"]] == [second]
    assert admin(server, "GET", "/_admin/helios")["duplicates"] == 1
    admin(server, "PUT", f"/_admin/authorities/{SIREN}", json=AuthorityIn(
        login=LOGIN, password=PASSWORD, departement="078", archivist=False).model_dump())
    refused = httpx.get(server.base_url + LIST, params={"status_id": 4}, auth=AUTH)
    assert refused.status_code == 400 and refused.json() == {"error": "L'utilisateur n'est pas archiviste"}
