"""The public registry of a collectivité's published actes: no key, read-only, rate-limited.

- `GET /publication/{siren}`: the accessible HTML page (search by year, nature and objet);
- `GET /publication/{siren}/actes.json`: the same list as open data (same filters);
- `GET /publication/{siren}/deliberations.csv`: the published délibérations in SCDL 2.1;
- `GET /publication/{siren}/actes/{IDActe}.pdf` and `…/actes/{IDActe}/annexes/{n}`: the files.

Only what `bus.publication` returns is reachable. A SIREN that is unknown, or whose collectivité
neither publishes nor ever published, and anything malformed, answer exactly the 404 of an
unknown path. A withdrawn acte stays listed as withdrawn; its files answer 410 Gone with the
withdrawal notice (date and reason) instead of the file.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from bus.blobs import BlobStore
from bus.publication import PublishedActe, Registry, registry
from connectors.publication import urls
from schemas.actes.naming import NATURES
from schemas.actes.publication import DeliberationRow, deliberations_csv, matiere

PAGE_SIZE = 50
DELIBERATION = 1
SIREN_RE = re.compile(urls.SIREN_PATTERN)
ID_ACTE_RE = re.compile(urls.ID_ACTE_PATTERN)
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "public, max-age=60",
}
OPEN_DATA_HEADERS = {"Access-Control-Allow-Origin": "*", "X-Content-Type-Options": "nosniff",
                     "Cache-Control": "public, max-age=60"}
# A file is served for reading only: never run as a page of this origin (an XML annexe could
# otherwise carry script).
FILE_HEADERS = {**OPEN_DATA_HEADERS, "Content-Security-Policy": "sandbox; default-src 'none'",
                "Cache-Control": "public, max-age=300"}

env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                  autoescape=select_autoescape(["html"]))
env.filters["fr"] = lambda d: d.strftime("%d/%m/%Y") if isinstance(d, date) and d != date.min else "—"
env.filters["size"] = lambda n: f"{max(1, math.ceil(n / 1024))} Ko" if n < 1024 * 1024 else f"{n / 1048576:.1f} Mo"
env.globals["nature_label"] = lambda n: NATURES[n].label if n in NATURES else "—"


def not_found() -> HTTPException:
    """The same answer as any unknown path: nothing tells a non-publishing SIREN apart."""
    return HTTPException(404)


@dataclass(frozen=True)
class Filters:
    annee: int | None = None
    nature: int | None = None
    objet: str = ""

    @classmethod
    def parse(cls, request: Request) -> Filters:
        q = request.query_params

        def number(name: str, low: int, high: int) -> int | None:
            raw = q.get(name, "").strip()
            return int(raw) if raw.isdigit() and low <= int(raw) <= high else None

        return cls(annee=number("annee", 1900, 2999), nature=number("nature", 1, 6),
                   objet=" ".join(q.get("objet", "").split())[:200])

    @property
    def active(self) -> bool:
        return bool(self.annee or self.nature or self.objet)

    def keep(self, acte: PublishedActe) -> bool:
        return ((self.annee is None or acte.date_decision.year == self.annee)
                and (self.nature is None or acte.nature == self.nature)
                and (not self.objet or _folded(self.objet) in _folded(acte.objet)))

    def query(self) -> dict[str, Any]:
        return {k: v for k, v in (("annee", self.annee), ("nature", self.nature), ("objet", self.objet)) if v}


def _folded(text: str) -> str:
    """Case and accents ignored: « delib » finds « Délibération »."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def build_router(base_url: str, blobs: BlobStore) -> APIRouter:
    router = APIRouter(prefix=urls.PREFIX, tags=["publication"])

    def absolute(path: str) -> str:
        return urls.absolute(base_url, path)

    async def load(request: Request, siren: str) -> Registry:
        if not SIREN_RE.match(siren):
            raise not_found()
        found = await registry(request.app.state.store, siren)
        if found is None:
            raise not_found()
        return found

    def acte_json(reg: Registry, a: PublishedActe) -> dict[str, Any]:
        return {
            "id_acte": a.id_acte, "numero": a.numero, "objet": a.objet, "nature": a.nature,
            "nature_libelle": NATURES[a.nature].label if a.nature in NATURES else None,
            "classification": a.classification, "classification_libelle": reg.matieres.get(a.classification),
            "date_decision": a.date_decision.isoformat(), "date_reception_prefecture": _iso(a.date_ar),
            "date_publication": a.date_publication.isoformat(), "executoire_le": _iso(a.executoire_le),
            "auteur": a.auteur, "qualite": a.qualite,
            "statut": "retire" if a.withdrawal else "publie",
            "retrait": {"date": a.withdrawal.on.isoformat(), "motif": a.withdrawal.reason} if a.withdrawal else None,
            "transmission_annulee": a.cancelled,
            "url_pdf": absolute(urls.pdf_path(reg.siren, a.id_acte)), "sha256_pdf": a.pdf.sha256,
            "annexes": [{"nom": f.name, "type": f.media_type, "taille": f.size, "sha256": f.sha256,
                         "url": absolute(urls.annexe_path(reg.siren, a.id_acte, n))}
                        for n, f in enumerate(a.annexes, start=1)],
        }

    @router.get("/{siren}", response_class=HTMLResponse, summary="Registre des actes publiés (HTML)")
    async def page(request: Request, siren: str) -> Response:
        reg = await load(request, siren)
        filters = Filters.parse(request)
        matching = [a for a in reg.actes if filters.keep(a)]
        pages = max(1, math.ceil(len(matching) / PAGE_SIZE))
        raw_page = request.query_params.get("page", "1")
        current = min(pages, max(1, int(raw_page))) if raw_page.isdigit() else 1
        html = env.get_template("registre.html").render(
            name=reg.name, siren=reg.siren, filters=filters, total=len(matching), page=current, pages=pages,
            actes=matching[(current - 1) * PAGE_SIZE: current * PAGE_SIZE],
            years=sorted({a.date_decision.year for a in reg.actes}, reverse=True),
            natures=[(code, n.label) for code, n in NATURES.items()],
            registry_url=urls.registry_path(reg.siren), json_url=urls.actes_json_path(reg.siren),
            csv_url=urls.deliberations_csv_path(reg.siren),
            pdf_url=lambda a: urls.pdf_path(reg.siren, a.id_acte),
            annexe_url=lambda a, n: urls.annexe_path(reg.siren, a.id_acte, n),
            page_url=lambda n: f"{urls.registry_path(reg.siren)}?{urlencode({**filters.query(), 'page': n})}",
        )
        return HTMLResponse(html, headers=HTML_HEADERS)

    @router.get("/{siren}/actes.json", summary="Actes publiés (JSON)")
    async def actes_json(request: Request, siren: str) -> Response:
        reg = await load(request, siren)
        filters = Filters.parse(request)
        body = {
            "collectivite": {"siren": reg.siren, "nom": reg.name, "siret": reg.settings.siret if reg.settings else None},
            "registre": absolute(urls.registry_path(reg.siren)),
            "actes": [acte_json(reg, a) for a in reg.actes if filters.keep(a)],
        }
        return JSONResponse(body, headers=OPEN_DATA_HEADERS)

    @router.get("/{siren}/deliberations.csv", summary="Délibérations publiées (SCDL Délibérations 2.1)")
    async def deliberations(request: Request, siren: str) -> Response:
        reg = await load(request, siren)
        siret = reg.settings.siret if reg.settings and reg.settings.siret else ""
        rows = [
            DeliberationRow(
                coll_nom=reg.name, coll_siret=siret, delib_id=a.numero, delib_date=a.date_decision,
                matiere_code=matiere(a.classification, reg.matieres)[0],
                matiere_nom=matiere(a.classification, reg.matieres)[1], objet=a.objet,
                pref_id=f"PREF{reg.departement}", pref_date=a.date_ar, votes=a.votes,
                url=absolute(urls.pdf_path(reg.siren, a.id_acte)),
            )
            for a in sorted(reg.actes, key=lambda a: (a.date_decision, a.numero))
            if a.nature == DELIBERATION and a.withdrawal is None
        ]
        return Response(deliberations_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={**OPEN_DATA_HEADERS,
                                 "Content-Disposition": f'inline; filename="deliberations-{reg.siren}.csv"'})

    async def acte_or_gone(request: Request, siren: str, id_acte: str) -> tuple[Registry, PublishedActe]:
        if not SIREN_RE.match(siren) or not ID_ACTE_RE.match(id_acte):
            raise not_found()
        reg = await registry(request.app.state.store, siren, id_acte)
        if reg is None:
            raise not_found()
        return reg, reg.actes[0]

    def gone(reg: Registry, acte: PublishedActe) -> Response:
        html = env.get_template("retire.html").render(acte=acte, name=reg.name,
                                                      registry_url=urls.registry_path(reg.siren))
        return HTMLResponse(html, status_code=410, headers={**HTML_HEADERS, "X-Error-Code": "publication_withdrawn"})

    def serve(stored: Any, filename: str) -> Response:
        disposition = "inline" if stored.media_type == "application/pdf" else "attachment"
        return StreamingResponse(blobs.iter_chunks(stored.sha256), media_type=stored.media_type, headers={
            **FILE_HEADERS, "Content-Disposition": f'{disposition}; filename="{_ascii_name(filename)}"',
            "Content-Length": str(stored.size), "ETag": f'"{stored.sha256}"', "X-Content-SHA256": stored.sha256})

    @router.get("/{siren}/actes/{filename}", summary="Un acte publié (PDF)")
    async def pdf(request: Request, siren: str, filename: str) -> Response:
        if not filename.endswith(".pdf"):
            raise not_found()
        reg, acte = await acte_or_gone(request, siren, filename.removesuffix(".pdf"))
        return gone(reg, acte) if acte.withdrawal else serve(acte.pdf, f"{acte.id_acte}.pdf")

    @router.get("/{siren}/actes/{id_acte}/annexes/{number}", summary="Une annexe d'un acte publié")
    async def annexe(request: Request, siren: str, id_acte: str, number: str) -> Response:
        reg, acte = await acte_or_gone(request, siren, id_acte)
        if not number.isdigit() or not 1 <= int(number) <= len(acte.annexes):
            raise not_found()
        return gone(reg, acte) if acte.withdrawal else serve(acte.annexes[int(number) - 1], acte.annexes[int(number) - 1].name)

    return router


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _ascii_name(name: str) -> str:
    """A file name safe inside a quoted header value."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()) or "fichier"
