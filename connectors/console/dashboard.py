"""Manager pages: the dashboard (charts per month, per flow, top collectivités) and the yearly
report (bus.reports, printable, with its CSV and JSON), both from the journal."""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from bus.flows.definition import flow_names
from bus.reports import FLOW_COLOURS, OUTCOMES, VolumeReport, _svg_chart, volumes
from bus.scope import scope_sirens
from connectors.console.charts import hbar_svg
from connectors.console.session import Session
from connectors.console.web import (
    ConsoleError,
    ConsoleRoute,
    guarded,
    render,
    require,
    templates,
)

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
REPORT_ROLES = ("reporter", "operator", "admin")
TOP = 10

Year = Annotated[int | None, Query(ge=2000, le=2100)]


class Format(str, Enum):
    html = "html"
    csv = "csv"
    json = "json"


async def _report(request: Request, session: Session, year: int, flow: str | None) -> VolumeReport:
    if flow and flow not in flow_names():
        raise ConsoleError(422, "unknown_flow", f"Flux inconnu : {flow}")
    sirens = scope_sirens(session.key)
    return await volumes(request.app.state.store, year=year, sirens=sirens, flow=flow or None)


def charts(report: VolumeReport) -> dict[str, str]:
    colours = {fl: FLOW_COLOURS[i % len(FLOW_COLOURS)] for i, fl in enumerate(report.flows())}
    per_month: dict[str, list[int]] = {}
    for r in report.rows:
        per_month.setdefault(r.flow, [0] * 12)[r.month - 1] += r.counts["deposited"]
    per_coll: dict[str, int] = {}
    names = report.names()
    for t in report.collectivite_totals:
        label = f"{names.get(t.siren or '', '') or t.siren} ({t.siren})"
        per_coll[label] = per_coll.get(label, 0) + t.counts["deposited"]
    top = sorted(per_coll.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    return {
        "months": _svg_chart(report.year, per_month, f"Documents déposés par mois en {report.year}", colours),
        "flows": hbar_svg([(t.flow or "", t.counts["deposited"]) for t in report.flow_totals],
                          "Documents déposés par flux", "#d9822b"),
        "top": hbar_svg(top, f"Top {TOP} des collectivités (documents déposés)", "#2a9d5c"),
    }


@router.get("/tableau-de-bord")
async def dashboard(request: Request, year: Year = None) -> Response:
    session = await require(request, *REPORT_ROLES)
    year = year or date.today().year
    report = await _report(request, session, year, None)
    return render(request, "dashboard.html", report=report, charts=charts(report), outcomes=OUTCOMES,
                  years=list(range(date.today().year, date.today().year - 6, -1)))


@router.get("/rapport")
async def yearly_report(request: Request, year: Year = None, flow: Annotated[str | None, Query(max_length=40)] = None,
                        format: Format = Format.html) -> Response:
    """The yearly report of bus.reports; html is printable, with links to its csv and json."""
    session = await require(request, *REPORT_ROLES)
    year = year or date.today().year
    report = await _report(request, session, year, flow)
    if format is Format.csv:
        return Response(report.to_csv(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="volumes-{year}.csv"'})
    if format is Format.json:
        return JSONResponse(report.to_json())
    nav = templates.get_template("report_nav.html").render(year=year, flow=flow or "")
    return guarded(HTMLResponse(report.to_html().replace("<body>", "<body>" + nav, 1)))
