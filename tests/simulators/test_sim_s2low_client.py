"""The S²low simulator as a real S²low client calls it (the sequence of Mégalis's S²low ACTES client:
nonce login, actes_status, number_actes, list_actes with paging and dates, get_status by id and
by IDActe, get_files_list), and the JSON shapes of S²low's scripts (s2low:controller/ActesAPIController.php)."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from connectors.simulators.s2low import minimal_pdf

AUTH = ("commune-a", "secret-a")
PDF = minimal_pdf(["Délibération"])
API = "/modules/actes/api/"
STATUS = "/modules/actes/actes_transac_get_status.php"
FILES = "/modules/actes/actes_transac_get_files_list.php"


class Client:
    """A client that logs in with the nonce of §2.1, then sends login/nounce/hash on every call."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url)
        nounce = self.http.get("/api/get-nounce.php", params={"api": 1}, auth=AUTH).json()["nounce"]
        self.params = {"login": AUTH[0], "nounce": nounce,
                       "hash": hashlib.sha256(f"{AUTH[1]}:{nounce}".encode()).hexdigest()}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params={**self.params, **params})

    def create(self, number: str, decided: str = "2024-04-30") -> str:
        data = {"api": "1", "nature_code": "1", "number": number, "subject": "Budget".encode("iso-8859-1"),
                "decision_date": decided, "type_acte": "99_DE", "classif1": "7", "classif2": "1"}
        response = self.http.post("/modules/actes/actes_transac_create.php", params=self.params, data=data,
                                  files=[("acte_pdf_file", ("acte.pdf", PDF, "application/pdf"))])
        ok, tx_id = response.content.decode("iso-8859-1").split("\n")[:2]
        assert ok == "OK", response.content
        return tx_id


def advance(base_url: str, seconds: float) -> None:
    httpx.post(base_url + "/_admin/clock/advance", json={"seconds": seconds}).raise_for_status()


def test_nonce_login(start_s2low) -> None:
    server = start_s2low()
    refused = httpx.get(server.base_url + "/api/get-nounce.php")
    assert refused.status_code == 401 and "www-authenticate" in refused.headers
    client = Client(server.base_url)
    assert client.get("/api/test-connexion.php").content == b"OK\n"
    wrong = {**client.params, "hash": hashlib.sha256(b"wrong:" + client.params["nounce"].encode()).hexdigest()}
    assert client.http.get("/api/test-connexion.php", params=wrong).status_code == 401
    assert client.http.get("/api/test-connexion.php", params={**client.params, "login": "other"}).status_code == 401
    advance(server.base_url, 301)  # a nonce lives 5 minutes
    assert client.get("/api/test-connexion.php").status_code == 401


def test_status_list_count_and_listing_with_paging_and_dates(start_s2low) -> None:
    server = start_s2low(validation_delay=10, transmit_delay=10, ack_delay=10)
    client = Client(server.base_url)
    statuses = client.get(API + "actes_status.php").json()
    assert statuses["-1"] == "Erreur" and statuses["4"] == "Acquittement reçu" and statuses["21"].startswith("Document")
    assert len(statuses) == 24
    first = client.create("LIST_1")
    advance(server.base_url, 86400)  # the next day
    client = Client(server.base_url)
    second, third = client.create("LIST_2"), client.create("LIST_3")
    assert client.get(API + "number_actes.php", status_id=1).json() == {
        "status_id": 1, "authority_id": 1, "nb_transactions": 2}

    page = client.get(API + "list_actes.php", status_id=1).json()
    assert {k: page[k] for k in ("status_id", "authority_id", "offset", "limit")} == {
        "status_id": "1", "authority_id": "1", "offset": "0", "limit": "100"}
    assert [t["id"] for t in page["transactions"]] == [third, second]  # newest first
    assert page["transactions"][0] == {"id": third, "subject": "Budget", "number": "LIST_3", "date": "2024-04-30",
                                       "nature_descr": "Délibérations", "classification": "7.1", "type": "1"}
    assert [t["id"] for t in client.get(API + "list_actes.php", status_id=1, offset=1, limit=1).json()["transactions"]] \
        == [second]
    # The dates filter on when the transaction reached that status, a day bound meaning its midnight.
    assert client.get(API + "list_actes.php", status_id=4).json()["transactions"][0]["id"] == first
    late = client.get(API + "list_actes.php", status_id=4, min_date="2024-05-03").json()["transactions"]
    assert late == []  # the first acte got its AR on 2024-05-02
    assert [t["id"] for t in client.get(API + "list_actes.php", status_id=1, min_date="2024-05-03",
                                        max_date="2024-05-04").json()["transactions"]] == [third, second]
    assert client.get(API + "list_actes.php", status_id=1, max_date="2024-05-03").json()["transactions"] == []

    # get_status by id or by IDActe; the files list once the AR came back only.
    by_id = client.get(STATUS, transaction=first).content
    assert by_id.startswith(b"OK\n4\n") and b"ARActe" in by_id
    assert client.get(STATUS, unique_id="006-210600235-20240430-LIST_1-DE").content == by_id
    assert client.get(FILES, transaction=second).content.decode("iso-8859-1") == "KO\nPas d'acquittement recu\n"
    files = client.get(FILES, transaction=first).json()
    assert [f["name"].rsplit("_", 1)[-1] for f in files] == ["0.xml", "1.pdf"]
    assert set(files[1]) == {"id", "name", "posted_filename", "mimetype", "size", "sign", "code_pj"}
    # S²low casts this script's unique_id to an integer: an IDActe finds nothing there.
    assert client.get(FILES, unique_id="006-210600235-20240430-LIST_1-DE").content.startswith(b"KO\n")


def test_listing_is_scoped_to_the_authority(start_s2low) -> None:
    server = start_s2low()
    Client(server.base_url).create("MINE_1")
    httpx.put(server.base_url + "/_admin/authorities/214400152", json={
        "login": "commune-b", "password": "pw", "departement": "044"}).raise_for_status()
    with httpx.Client(base_url=server.base_url, auth=("commune-b", "pw")) as other:
        page = other.get(API + "list_actes.php", params={"status_id": 4}).json()
        assert page["authority_id"] == "2" and page["transactions"] == []
        assert other.get(STATUS, params={"transaction": 1}).content.startswith(b"KO\n")


@pytest.mark.parametrize("params", [{}, {"status_id": "abc"}, {"status_id": "4", "min_date": "hier"}])
def test_listing_reads_parameters_as_s2low_does(start_s2low, params: dict[str, str]) -> None:
    server = start_s2low()
    client = Client(server.base_url)
    client.create("PARAM_1")
    page = client.get(API + "list_actes.php", **params).json()
    expected = [] if params.get("status_id") != "4" else ["PARAM_1"]  # getInt("abc") is 0; a bad date no bound
    assert [t["number"] for t in page["transactions"]] == expected
