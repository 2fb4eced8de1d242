"""Reports: the yearly volumes per collectivité, flow and month (`report`)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bus.cli.common import DataDir, app, settings_for, with_store

if TYPE_CHECKING:
    from bus.reports import VolumeReport
    from bus.store.db import Store

PANEL = "Reports"


class ReportFormat(str, Enum):
    csv = "csv"
    json = "json"
    html = "html"


@app.command(rich_help_panel=PANEL)
def report(
    year: Annotated[int, typer.Option(help="Calendar year, e.g. 2017")],
    siren: Annotated[list[str] | None, typer.Option(help="SIREN (repeatable); default: every collectivité")] = None,
    flow: Annotated[str | None, typer.Option(help="Only this flow (actes, helios…)")] = None,
    group: Annotated[str | None, typer.Option(help="A collectivité group: roll up over its members")] = None,
    format: Annotated[ReportFormat, typer.Option("--format", help="csv, json or html")] = ReportFormat.csv,
    output: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout")] = None,
    data_dir: DataDir = None,
) -> None:
    """Volumes of a year per collectivité, flow and month (deposited, transmitted, acknowledged…)."""
    import json

    from bus.flows.definition import flow_names
    from bus.reports import volumes

    url = settings_for(data_dir).db_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not Path(path).exists():
            typer.echo(f"error: no store at {path} (see --data-dir)", err=True)
            raise typer.Exit(1)
    if flow is not None and flow not in flow_names():
        typer.echo(f"error: unknown flow {flow!r}; flows: {', '.join(flow_names())}", err=True)
        raise typer.Exit(2)

    async def run(store: Store) -> VolumeReport:
        sirens = list(siren) if siren else None
        if group:
            from bus.groups import group_members

            async with store.sessions() as session:
                members = await group_members(session, group)
            sirens = members if sirens is None else [s for s in sirens if s in members]
        result = await volumes(store, year=year, sirens=sirens, flow=flow)
        result.group = group
        return result

    from bus.groups import GroupError

    try:
        result = with_store(data_dir, run, migrate=False)
    except GroupError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    if format is ReportFormat.csv:
        text = result.to_csv()
    elif format is ReportFormat.json:
        text = json.dumps(result.to_json(), ensure_ascii=False, indent=2) + "\n"
    else:
        text = result.to_html()

    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    # A BOM lets spreadsheet software read the collectivités' accented names as UTF-8.
    output.write_text(text, encoding="utf-8-sig" if format is ReportFormat.csv else "utf-8")
    total = result.total.counts
    typer.echo(f"{output}: {year}, {len(result.collectivite_totals)} collectivité×flux, "
               f"{total['deposited']} déposés, {total['acknowledged']} acquittés", err=True)
