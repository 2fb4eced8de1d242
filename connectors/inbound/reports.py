"""Reporting endpoint: volumes per collectivité, flow and month (`GET /api/v1/reports/volumes`).

Roles reporter, operator or admin. A key sees only its own SIRENs: asking for another one is a
403 `siren_out_of_scope`; asking for none reports on every SIREN of the key.
"""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from bus.flows.definition import flow_names
from bus.reports import volumes
from connectors.inbound.auth import ApiError, Key, require_role
from connectors.inbound.scope import requested_sirens

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
REPORT_ROLES = ("reporter", "operator", "admin")


class ReportFormat(str, Enum):
    json = "json"
    csv = "csv"
    html = "html"


@router.get("/volumes")
async def volumes_report(
    request: Request,
    key: Key,
    year: Annotated[int | None, Query(description="Calendar year (default: this year)")] = None,
    siren: Annotated[list[str] | None, Query(description="SIREN (repeatable); default: every SIREN of the key")] = None,
    flow: Annotated[str | None, Query(description="Only this flow (actes, helios…)")] = None,
    group: Annotated[str | None, Query(description="A collectivité group: roll up over its members")] = None,
    format: Annotated[ReportFormat, Query(description="json, csv or html")] = ReportFormat.json,
) -> Any:
    require_role(key, *REPORT_ROLES)
    year = year if year is not None else date.today().year
    if not 2000 <= year <= 2100:
        raise ApiError(422, "invalid_year", f"Année invalide / invalid year {year}")
    if flow is not None and flow not in flow_names():
        raise ApiError(422, "unknown_flow", f"Flux inconnu / unknown flow {flow!r}; flows: {', '.join(flow_names())}")
    sirens = await requested_sirens(request, key, siren, group)

    report = await volumes(request.app.state.store, year=year, sirens=sirens, flow=flow)
    report.group = group
    if format is ReportFormat.csv:
        return Response(report.to_csv(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="volumes-{year}.csv"'})
    if format is ReportFormat.html:
        return HTMLResponse(report.to_html())
    return JSONResponse(report.to_json())
