"""The public registry over HTTP (the API app in process): its three forms and the files, what it
never shows, the rate limit, and the operator's withdrawal."""

from __future__ import annotations

import csv
import hashlib
import io
import re

import httpx
import pytest
from sqlalchemy import select

from bus.blobs import BlobStore
from bus.publication import configure
from bus.store.apikeys import create_key
from bus.store.journal import verify_chain
from bus.store.models import JournalEntry, OutboxEvent
from connectors.inbound.api import create_app
from connectors.inbound.publication.ratelimit import RateLimited, RateLimiter
from schemas.actes.publication import PublicationSettings
from tests.conftest import SIREN_A, SIREN_B
from tests.publication.publication_testlib import seed_acte

SIRET_A = SIREN_A + "00013"


@pytest.fixture
def blobs(settings) -> BlobStore:  # type: ignore[no-untyped-def]
    return BlobStore(settings.blob_dir, settings.keys_dir)


@pytest.fixture
async def seeded(store, keys, blobs):  # type: ignore[no-untyped-def]
    async with store.transaction() as session:
        await configure(session, SIREN_A, PublicationSettings(natures=[1], siret=SIRET_A))
        keys["op_a"] = await create_key(session, [SIREN_A], ["operator"], name="Opératrice Camille")
        keys["op_b"] = await create_key(session, [SIREN_B], ["operator"], name="Opérateur B")
    return {
        "budget": await seed_acte(store, blobs, SIREN_A, "006", "DEL2026_001", objet="Vote du budget primitif",
                                  annexes=2, votes={"vote_effectif": 29, "vote_reel": 27, "vote_pour": 25,
                                                    "vote_contre": 2}),
        "voirie": await seed_acte(store, blobs, SIREN_A, "006", "ARR2026_007", objet="Arrêté de circulation <script>alert(1)</script>",
                                  nature=2),
        "ancien": await seed_acte(store, blobs, SIREN_A, "006", "DEL2024_100", objet="Élection du maire",
                                  decided=__import__("datetime").date(2024, 5, 25)),
        "prive": await seed_acte(store, blobs, SIREN_A, "006", "AI2026_003", objet="Nomination d'un agent",
                                 nature=3, publish=False),
        "b": await seed_acte(store, blobs, SIREN_B, "044", "B_DEL_1", objet="Commune B", publish=False),
    }


@pytest.fixture
async def client(settings, store):  # type: ignore[no-untyped-def]
    app = create_app(settings, store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


async def test_the_registry_lists_published_actes_in_three_forms(client, seeded, settings) -> None:  # type: ignore[no-untyped-def]
    page = await client.get(f"/publication/{SIREN_A}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="fr">' in html and "Commune A" in html
    for label in ('for="annee"', 'for="nature"', 'for="objet"'):
        assert label in html
    assert "Vote du budget primitif" in html and "Arrêté de circulation" in html and "Élection du maire" in html
    assert "Nomination d'un agent" not in html  # deposited without publication
    assert "3 actes publiés" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # text, never markup
    assert "default-src 'none'" in page.headers["content-security-policy"]

    body = (await client.get(f"/publication/{SIREN_A}/actes.json")).json()
    assert body["collectivite"] == {"siren": SIREN_A, "nom": "Commune A", "siret": SIRET_A}
    acts = {a["numero"]: a for a in body["actes"]}
    assert set(acts) == {"DEL2026_001", "ARR2026_007", "DEL2024_100"}
    budget = acts["DEL2026_001"]
    assert budget["id_acte"] == seeded["budget"].id_acte and budget["nature"] == 1
    assert budget["objet"] == "Vote du budget primitif" and budget["statut"] == "publie"
    assert budget["date_decision"] and budget["date_publication"] and budget["executoire_le"]
    assert budget["url_pdf"] == f"{settings.public_base_url}/publication/{SIREN_A}/actes/{budget['id_acte']}.pdf"
    assert [a["nom"] for a in budget["annexes"]] == ["annexe1.pdf", "annexe2.pdf"]

    pdf = await client.get(budget["url_pdf"].removeprefix(settings.public_base_url))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content == seeded["budget"].published
    assert pdf.headers["x-content-sha256"] == hashlib.sha256(pdf.content).hexdigest() == budget["sha256_pdf"]
    annexe = await client.get(budget["annexes"][1]["url"].removeprefix(settings.public_base_url))
    assert annexe.status_code == 200 and annexe.content == seeded["budget"].annexes[1]

    scdl = await client.get(f"/publication/{SIREN_A}/deliberations.csv")
    assert scdl.status_code == 200 and scdl.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(scdl.text), delimiter=";"))
    assert scdl.text.split("\r\n")[0] == (
        "COLL_NOM;COLL_SIRET;DELIB_ID;DELIB_DATE;DELIB_MATIERE_CODE;DELIB_MATIERE_NOM;DELIB_OBJET;BUDGET_ANNEE;"
        "BUDGET_NOM;PREF_ID;PREF_DATE;VOTE_EFFECTIF;VOTE_REEL;VOTE_POUR;VOTE_CONTRE;VOTE_ABSTENTION;DELIB_URL")
    assert [r["DELIB_ID"] for r in rows] == ["DEL2024_100", "DEL2026_001"]  # délibérations only, oldest first
    row = rows[1]
    assert row["COLL_NOM"] == "Commune A" and row["COLL_SIRET"] == SIRET_A
    assert row["DELIB_MATIERE_CODE"] == "7.1" and row["DELIB_MATIERE_NOM"] == "finances locales/decisions budgetaires"
    assert row["PREF_ID"] == "PREF006" and row["PREF_DATE"] == budget["date_reception_prefecture"]
    assert (row["VOTE_EFFECTIF"], row["VOTE_REEL"], row["VOTE_POUR"], row["VOTE_CONTRE"], row["VOTE_ABSTENTION"]) == (
        "29", "27", "25", "2", "")
    assert row["DELIB_URL"] == budget["url_pdf"]


async def test_search_by_year_nature_and_objet(client, seeded) -> None:  # type: ignore[no-untyped-def]
    async def numeros(**params: str) -> set[str]:
        body = (await client.get(f"/publication/{SIREN_A}/actes.json", params=params)).json()
        return {a["numero"] for a in body["actes"]}

    assert await numeros(annee="2024") == {"DEL2024_100"}
    assert await numeros(nature="2") == {"ARR2026_007"}
    assert await numeros(objet="ELECTION") == {"DEL2024_100"}  # case and accents ignored
    assert await numeros(objet="budget", nature="1") == {"DEL2026_001"}
    assert await numeros(annee="abc") == {"DEL2026_001", "ARR2026_007", "DEL2024_100"}  # ignored, not a 500
    html = (await client.get(f"/publication/{SIREN_A}", params={"objet": "circulation"})).text
    assert "1 acte correspondant à la recherche" in html and "Arrêté de circulation" in html
    assert "Vote du budget primitif" not in html


async def test_nothing_else_is_reachable(client, seeded) -> None:  # type: ignore[no-untyped-def]
    unknown_path = await client.get("/nothing-here")
    assert unknown_path.status_code == 404
    private = seeded["prive"].id_acte
    for path in (
        "/publication/000000000",  # no such collectivité
        f"/publication/{SIREN_B}", f"/publication/{SIREN_B}/actes.json",  # B does not publish
        f"/publication/{SIREN_B}/deliberations.csv", f"/publication/{SIREN_B}/actes/{seeded['b'].id_acte}.pdf",
        f"/publication/{SIREN_A}/actes/{private}.pdf",  # an acte deposited without publication
        f"/publication/{SIREN_A}/actes/{seeded['budget'].id_acte}",  # no .pdf
        f"/publication/{SIREN_A}/actes/{seeded['budget'].id_acte}/annexes/0",
        f"/publication/{SIREN_A}/actes/{seeded['budget'].id_acte}/annexes/3",
        f"/publication/{SIREN_A}/actes/..%2F..%2F..%2Fapi%2Fv1%2Fdocuments.pdf",
        f"/publication/{SIREN_A}/actes/%2e%2e%2f%2e%2e%2fetc%2fpasswd.pdf",
        f"/publication/{SIREN_A}/actes/{seeded['budget'].id_acte}/annexes/..%2F..%2F..%2F..%2Fbus",
        "/publication/..%2Fapi%2Fv1%2Fdocuments", f"/publication/{SIREN_A}%00",
    ):
        resp = await client.get(path)
        assert resp.status_code == 404, path
        assert resp.content == unknown_path.content, path  # the same answer as any unknown path
    # The registry serves the published PDF and the annexes, never the document's other files.
    assert (await client.get("/api/v1/documents")).status_code == 401


async def test_the_registry_is_rate_limited_per_client_address(settings, store, seeded) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings.model_copy(update={"publication_rate_limit": 3}), store)

    def client(address: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 4000)), base_url="http://test")

    async with client("192.0.2.1") as one, client("192.0.2.2") as two:
        for _ in range(3):
            assert (await one.get(f"/publication/{SIREN_A}/actes.json")).status_code == 200
        refused = await one.get("/publication/000000000")  # probing unknown SIRENs counts too
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        assert (await two.get(f"/publication/{SIREN_A}")).status_code == 200  # another address
        assert (await one.get("/health")).status_code == 200  # the rest of the API is not limited here


def test_rate_limiter_refills_with_time() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one a second
    for _ in range(60):
        limiter.hit("a")
    with pytest.raises(RateLimited) as exc:
        limiter.hit("a")
    assert exc.value.retry_after == 1
    now[0] += 2.0
    limiter.hit("a")
    limiter.hit("a")
    with pytest.raises(RateLimited):
        limiter.hit("a")


async def test_withdrawal_is_an_operator_action_journaled_and_shown(client, store, keys, seeded) -> None:  # type: ignore[no-untyped-def]
    budget = seeded["budget"]
    url = f"/api/v1/documents/{budget.document_id}/publication"

    def auth(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[name]}"}

    reason = {"reason": "Erreur matérielle : délibération publiée avant sa signature"}
    assert (await client.request("DELETE", url, json=reason)).status_code == 401
    forbidden = await client.request("DELETE", url, json=reason, headers=auth("a"))  # a depositor
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden_role"
    other = await client.request("DELETE", url, json=reason, headers=auth("op_b"))  # another collectivité's operator
    assert other.status_code == 404 and other.json()["error"]["code"] == "document_not_found"
    no_reason = await client.request("DELETE", url, json={"reason": "  "}, headers=auth("op_a"))
    assert no_reason.status_code == 422 and no_reason.json()["error"]["code"] == "invalid_reason"
    unpublished = await client.request("DELETE", f"/api/v1/documents/{seeded['prive'].document_id}/publication",
                                       json=reason, headers=auth("op_a"))
    assert unpublished.status_code == 409 and unpublished.json()["error"]["code"] == "not_published"

    done = await client.request("DELETE", url, json=reason, headers=auth("op_a"))
    assert done.status_code == 200, done.text
    withdrawn_on = done.json()["withdrawn_on"]
    again = await client.request("DELETE", url, params={"reason": "encore"}, headers=auth("op_a"))
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_withdrawn"

    async with store.sessions() as session:
        entries = (await session.execute(select(JournalEntry).where(JournalEntry.document_id == budget.document_id)
                                         .order_by(JournalEntry.seq))).scalars().all()
        assert entries[-1].event == "publication.withdrawn" and entries[-1].state == "archived"
        assert entries[-1].detail == {"by": "Opératrice Camille", "reason": reason["reason"]}
        assert (await verify_chain(session, budget.document_id)).valid
        announced = [o.payload for o in (await session.execute(select(OutboxEvent))).scalars()
                     if o.payload.get("event") == "publication.withdrawn"]
        assert [m["document_id"] for m in announced] == [budget.document_id]  # for webhooks

    html = (await client.get(f"/publication/{SIREN_A}")).text
    assert "Vote du budget primitif" in html  # still listed...
    day, month, year = withdrawn_on[8:10], withdrawn_on[5:7], withdrawn_on[:4]
    assert f"Retiré le {day}/{month}/{year}" in html and reason["reason"] in html  # ...as withdrawn
    assert f'/actes/{budget.id_acte}.pdf"' not in html
    acte = next(a for a in (await client.get(f"/publication/{SIREN_A}/actes.json")).json()["actes"]
                if a["numero"] == "DEL2026_001")
    assert acte["statut"] == "retire" and acte["retrait"] == {"date": withdrawn_on, "motif": reason["reason"]}
    gone = await client.get(f"/publication/{SIREN_A}/actes/{budget.id_acte}.pdf")
    assert gone.status_code == 410 and reason["reason"] in gone.text and gone.headers["x-error-code"] == "publication_withdrawn"
    assert gone.content[:5] != b"%PDF-"
    assert (await client.get(f"/publication/{SIREN_A}/actes/{budget.id_acte}/annexes/1")).status_code == 410
    scdl = (await client.get(f"/publication/{SIREN_A}/deliberations.csv")).text
    assert "DEL2026_001" not in scdl and "DEL2024_100" in scdl


async def test_turning_publication_off_keeps_what_was_published(client, store, seeded) -> None:  # type: ignore[no-untyped-def]
    async with store.transaction() as session:
        await configure(session, SIREN_A, None)
        await configure(session, SIREN_B, PublicationSettings())
    assert re.search(r"3 actes publiés", (await client.get(f"/publication/{SIREN_A}")).text)
    assert (await client.get(f"/publication/{SIREN_A}/actes.json")).json()["collectivite"]["siret"] is None
    # B now publishes, but has published nothing yet: an empty registry, not a 404
    empty = await client.get(f"/publication/{SIREN_B}")
    assert empty.status_code == 200 and "Aucun acte publié." in empty.text
