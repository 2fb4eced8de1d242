"""Mégalis's read-only smoke sequence over the Pastell 4.1.18 routes (issue 12), as a generator:
it yields `(name, path)` and receives each answer's JSON, so a sync client (the real API
process) and an async one (the ASGI app) replay the same 19 calls."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

Step = tuple[str, str]
NAMES = ["version", "entite", "flux", "familleConnecteur", "frequenceConnecteur", "role", "extension", "utilisateur",
         "utilisateur/token", "journal", "entité detail", "entité flux", "entité connecteurs", "document count",
         "documents", "connector detail", "document detail", "flux detail", "flux actions"]


def smoke_sequence(siren: str) -> Generator[Step, Any, None]:
    """`siren`: the collectivité whose documents and connectors are looked at."""
    yield "version", "/api/v2/version"
    entites = yield "entite", "/api/v2/entite"
    id_e = next(e["id_e"] for e in entites if e["siren"] == siren)
    for name in ("flux", "familleConnecteur", "frequenceConnecteur", "role", "extension", "utilisateur",
                 "utilisateur/token"):
        yield name, f"/api/v2/{name}"
    yield "journal", f"/api/v2/journal?id_e={id_e}"
    yield "entité detail", f"/api/v2/entite/{id_e}"
    yield "entité flux", f"/api/v2/entite/{id_e}/flux"
    connecteurs = yield "entité connecteurs", f"/api/v2/entite/{id_e}/connecteur"
    yield "document count", f"/api/v2/entite/{id_e}/document/count"
    documents = yield "documents", f"/api/v2/entite/{id_e}/document"
    assert connecteurs and documents, "the smoke sequence needs a connector and a document to look at"
    yield "connector detail", f"/api/v2/entite/{id_e}/connecteur/{connecteurs[0]['id_ce']}"
    detail = yield "document detail", f"/api/v2/entite/{id_e}/document/{documents[0]['id_d']}"
    yield "flux detail", f"/api/v2/flux/{detail['info']['type']}"
    yield "flux actions", f"/api/v2/flux/{detail['info']['type']}/action"


def check(name: str, status: int, content_type: str, body: bytes) -> None:
    assert 200 <= status < 300 and content_type.startswith("application/json"), (name, status, body[:300])
