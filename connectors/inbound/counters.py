"""Live counters per collectivité (`GET /api/v1/counters`), read from the store, where each move
is counted in the transaction that journals it (bus.counters).

Roles reporter, operator or admin; a key sees only its own SIRENs (403 `siren_out_of_scope`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from bus.counters import read_counters, refresh_gauges
from bus.flows.definition import flow_names
from bus.metrics import metrics_endpoint
from connectors.inbound.auth import ApiError, Key, require_role
from connectors.inbound.reports import REPORT_ROLES
from connectors.inbound.scope import requested_sirens

router = APIRouter(prefix="/api/v1", tags=["reports"])
log = logging.getLogger(__name__)


async def metrics_with_live_counters(request: Request) -> Any:
    """The API's /metrics, with `dematbus_live_documents` refreshed from the counters table."""
    try:
        await refresh_gauges(request.app.state.store)
    except Exception:  # a metric never breaks the scrape
        log.exception("live counters: could not refresh the gauges")
    return await metrics_endpoint(request)


@router.get("/counters")
async def counters(
    request: Request,
    key: Key,
    siren: Annotated[list[str] | None, Query(description="SIREN (repeatable); default: every SIREN of the key")] = None,
    group: Annotated[str | None, Query(description="A collectivité group: its members")] = None,
    flow: Annotated[str | None, Query(description="Only this flow")] = None,
    start: Annotated[date | None, Query(alias="from", description="First day (YYYY-MM-DD), included")] = None,
    end: Annotated[date | None, Query(alias="to", description="Last day (YYYY-MM-DD), included")] = None,
) -> dict[str, Any]:
    """Per collectivité × flow × day: states reached (deposited, transmitted…) and flow volumes
    (pes_mandats, actes_nature_DE…), with totals per collectivité × flow and overall."""
    require_role(key, *REPORT_ROLES)
    if flow is not None and flow not in flow_names():
        raise ApiError(422, "unknown_flow", f"Flux inconnu / unknown flow {flow!r}")
    if start and end and start > end:
        raise ApiError(422, "invalid_period", "Période invalide / 'from' is after 'to'")
    sirens = await requested_sirens(request, key, siren, group)
    rows = await read_counters(request.app.state.store, sirens=sirens, flow=flow, start=start, end=end)
    days: dict[tuple[str, str, str], dict[str, int]] = defaultdict(dict)
    per_coll: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    total: dict[str, int] = defaultdict(int)
    for r in rows:
        days[(r.siren, r.flow, r.day.isoformat())][r.metric] = r.value
        per_coll[(r.siren, r.flow)][r.metric] += r.value
        total[r.metric] += r.value
    return {
        "filters": {"sirens": sirens, "group": group, "flow": flow,
                    "from": start.isoformat() if start else None, "to": end.isoformat() if end else None},
        "days": [{"siren": s, "flow": f, "day": d, "counts": c} for (s, f, d), c in sorted(days.items())],
        "totals": {
            "collectivites": [{"siren": s, "flow": f, "counts": dict(c)} for (s, f), c in sorted(per_coll.items())],
            "total": dict(total),
        },
    }
