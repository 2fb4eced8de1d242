"""The i-Parapheur v5 simulator over real HTTP, called the way the real API is called.

Wire facts (libriciel/iparapheur-v5-api-php):

* ``lib/Api/FolderApi.php`` ``createFolderRequest``: query parameter ``autoStart`` ("If true,
  starts automatically the folder right after the draft creation", default true), multipart
  parts ``folder`` and ``documents`` (one part per file, same name); answers 201, 401, 403, 404,
  406 - no 409.
* ``listFoldersRequest``: ``GET …/desk/{deskId}/{state}`` with ``typeId``, ``subtypeId``,
  ``page``, ``size``, ``sort`` and nothing else; ``docs/Api/FolderApi.md``: PENDING is "every
  pending folders on current desk", RETRIEVABLE "available UNDO to perform".
* ``docs/Model/FolderRepresentation.md``: items are ``id``, ``name`` (2 to 255 characters),
  ``dueDate``, ``metadata``; ``lib/Model/FolderSortBy.php``: the sort keys.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.signature.iparapheur import build_folder_premis
from connectors.signature.pdf import make_pdf
from connectors.simulators.iparapheur import IparapheurSimSettings, create_app
from connectors.simulators.server import ServerThread

API = "/api/standard/v1"


class Session:
    """A logged-in raw client, with the tenant, desks and types resolved by name."""

    def __init__(self, base_url: str, settings: IparapheurSimSettings) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)
        form = {"grant_type": "password", "client_id": "ipcore-web",
                "username": settings.username, "password": settings.password}
        token = self.http.post("/auth/realms/api/protocol/openid-connect/token", data=form).json()
        self.http.headers["Authorization"] = f"Bearer {token['access_token']}"
        self.tenant = self.get(f"{API}/tenant")["content"][0]["id"]
        self.desks = {d["name"]: d["id"] for d in self.get(f"{API}/tenant/{self.tenant}/desk")["content"]}
        self.types = {t["name"]: t["id"] for t in self.get(f"{API}/tenant/{self.tenant}/types")["content"]}
        self.subtypes = {
            (name, s["name"]): s["id"]
            for name, tid in self.types.items()
            for s in self.get(f"{API}/tenant/{self.tenant}/types/{tid}/subtypes")["content"]
        }

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def desk(self, name: str = "Secrétariat général") -> str:
        return f"{API}/tenant/{self.tenant}/desk/{self.desks[name]}"

    def create(self, name: str, *, query: dict[str, str] | None = None, part: str = "documents",
               subtype: tuple[str, str] = ("ACTES", "Délibération"), due_date: str | None = None) -> httpx.Response:
        premis = build_folder_premis(name, subtype[0], subtype[1], [("acte.pdf", True)],
                                     metadata={"objet": name}, due_date=due_date)
        files = [("folder", ("premis.xml", premis, "application/xml")),
                 (part, ("acte.pdf", make_pdf(name), "application/pdf"))]
        return self.http.post(f"{self.desk()}/folder", params=query or {}, files=files)

    def listed(self, state: str, desk: str = "Secrétariat général", **params: Any) -> list[str]:
        return [f["name"] for f in self.get(f"{self.desk(desk)}/{state}", **params)["content"]]

    def start(self, folder_id: str) -> None:
        premis = self.http.get(f"{self.desk()}/folder/{folder_id}/premis").text
        task = premis.split("<eventIdentifierValue>")[2].split("<")[0]  # the START task, second event
        assert self.http.put(f"{self.desk()}/folder/{folder_id}/task/{task}/start", json={}).status_code == 200


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[ServerThread, IparapheurSimSettings]]:
    settings = IparapheurSimSettings(data_dir=tmp_path, sign_delay=60)
    server = ServerThread(create_app(settings))
    server.start()
    yield server, settings
    server.stop()


def admin(server: ServerThread, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, server.base_url + path, timeout=10, **kwargs)
    response.raise_for_status()
    return response.json()


def test_autostart_defaults_to_true_and_only_the_wire_names_count(sim) -> None:  # type: ignore[no-untyped-def]
    server, settings = sim
    api = Session(server.base_url, settings)
    assert api.create("sans-parametre").status_code == 201
    assert api.create("nom-php", query={"auto_start": "false"}).status_code == 201  # not the wire name
    draft = api.create("brouillon", query={"autoStart": "false"})
    assert draft.status_code == 201 and set(draft.json()) == {"id", "name", "dueDate", "metadata"}
    states = {f["name"]: f["state"] for f in admin(server, "GET", "/_admin/folders")["folders"]}
    assert states == {"sans-parametre": "PENDING", "nom-php": "PENDING", "brouillon": "DRAFT"}

    bracketed = api.create("crochets", query={"autoStart": "false"}, part="documents[]")
    assert bracketed.status_code == 400 and "acte.pdf" in bracketed.json()["message"]
    assert api.create("x", query={"autoStart": "false"}).status_code == 400  # a name of 1 character


def test_a_name_already_used_makes_a_second_folder(sim) -> None:  # type: ignore[no-untyped-def]
    server, settings = sim
    api = Session(server.base_url, settings)
    first = api.create("dossier", query={"autoStart": "false"})
    second = api.create("dossier", query={"autoStart": "false"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert api.listed("DRAFT") == ["dossier", "dossier"]
    assert admin(server, "GET", "/_admin/folders")["duplicates"] == 1


def test_a_folder_is_listed_on_the_desk_where_it_waits(sim) -> None:  # type: ignore[no-untyped-def]
    server, settings = sim
    api = Session(server.base_url, settings)
    assert set(api.desks) == {"Secrétariat général", "Signature"}
    folder_id = api.create("a-signer", query={"autoStart": "false"}).json()["id"]
    assert api.listed("DRAFT") == ["a-signer"] and api.listed("DRAFT", "Signature") == []

    api.start(folder_id)
    assert api.listed("DRAFT") == [] and api.listed("PENDING") == []  # gone from the creator's lists
    assert api.listed("RETRIEVABLE") == ["a-signer"]  # UNDO is possible
    assert api.listed("PENDING", "Signature") == ["a-signer"]
    assert api.listed("LATE", "Signature") == [] and api.listed("DELEGATED", "Signature") == []
    signer_view = api.http.get(f"{api.desk('Signature')}/folder/{folder_id}/premis")
    assert signer_view.status_code == 200

    admin(server, "POST", "/_admin/advance", json={"seconds": 61})
    assert api.listed("FINISHED") == ["a-signer"] and api.listed("RETRIEVABLE") == []
    assert api.listed("PENDING", "Signature") == []
    assert api.http.get(f"{api.desk('Signature')}/folder/{folder_id}/premis").status_code == 404

    refused = api.create("a-REJETER").json()["id"]  # started at creation
    admin(server, "POST", "/_admin/advance", json={"seconds": 61})
    assert api.listed("REJECTED") == ["a-REJETER"]
    assert api.http.get(f"{api.desk()}/folder/{refused}/premis").status_code == 200


def test_late_folders_are_those_past_their_due_date_on_the_signer_desk(sim) -> None:  # type: ignore[no-untyped-def]
    server, settings = sim
    api = Session(server.base_url, settings)
    api.create("en-retard", due_date="2000-01-01")
    api.create("a-temps", due_date="2999-01-01")
    assert api.listed("PENDING", "Signature") == ["en-retard", "a-temps"]
    assert api.listed("LATE", "Signature") == ["en-retard"]


def test_listings_filter_by_type_and_subtype_only_and_sort(sim) -> None:  # type: ignore[no-untyped-def]
    server, settings = sim
    api = Session(server.base_url, settings)
    for name, subtype in (("b-deliberation", ("ACTES", "Délibération")), ("a-arrete", ("ACTES", "Arrêté")),
                          ("c-pes", ("HELIOS", "PES"))):
        assert api.create(name, query={"autoStart": "false"}, subtype=subtype).status_code == 201
    assert api.listed("DRAFT") == ["b-deliberation", "a-arrete", "c-pes"]  # creation order
    assert api.listed("DRAFT", typeId=api.types["ACTES"]) == ["b-deliberation", "a-arrete"]
    assert api.listed("DRAFT", subtypeId=api.subtypes[("ACTES", "Arrêté")]) == ["a-arrete"]
    assert api.listed("DRAFT", name="c-pes", search="c-pes") == ["b-deliberation", "a-arrete", "c-pes"]
    assert api.listed("DRAFT", sort="FOLDER_NAME,desc") == ["c-pes", "b-deliberation", "a-arrete"]
    assert api.listed("DRAFT", sort=["TYPE_NAME,desc", "FOLDER_NAME,asc"]) == ["c-pes", "a-arrete", "b-deliberation"]
    page = api.get(f"{api.desk()}/DRAFT", size=2, page=1)
    assert [f["name"] for f in page["content"]] == ["c-pes"] and page["totalPages"] == 2
    item = page["content"][0]
    assert set(item) == {"id", "name", "dueDate", "metadata"} and item["metadata"] == {"objet": "c-pes"}
    for bad in ("draft", "ARCHIVED"):
        assert api.http.get(f"{api.desk()}/{bad}").status_code == 400
    assert api.http.get(f"{api.desk()}/DRAFT", params={"sort": "NAME,asc"}).status_code == 400


def test_a_creation_read_in_full_completes_after_its_client_is_gone(sim) -> None:  # type: ignore[no-untyped-def]
    server, settings = sim
    api = Session(server.base_url, settings)
    admin(server, "POST", "/_admin/faults", json={"create_delay": 2.0})
    premis = build_folder_premis("orphelin", "ACTES", "Délibération", [("acte.pdf", True)])
    with pytest.raises(httpx.ReadTimeout):
        api.http.post(f"{api.desk()}/folder", params={"autoStart": "false"}, timeout=0.2,
                      files=[("folder", ("premis.xml", premis, "application/xml")),
                             ("documents", ("acte.pdf", make_pdf("x"), "application/pdf"))])
    assert api.listed("DRAFT") == []  # not yet
    deadline = time.monotonic() + 10
    while api.listed("DRAFT") != ["orphelin"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert api.listed("DRAFT") == ["orphelin"]
