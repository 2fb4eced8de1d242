"""Operations through the API with an operator key: the errors inbox, replays, annulation."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from bus.cli.common import (
    ApiKeyOpt,
    ApiUrl,
    DataDir,
    api_error,
    app,
    client_config,
    console,
    err,
)

PANEL = "Operations (operator key)"


@app.command(rich_help_panel=PANEL)
def errors(
    siren: Annotated[str | None, typer.Option(help="Only this collectivité")] = None,
    flow: Annotated[str | None, typer.Option(help="Only this flow")] = None,
    api_url: ApiUrl = None,
    key: ApiKeyOpt = None,
    data_dir: DataDir = None,
) -> None:
    """The errors inbox: documents in error, grouped by cause (operator key)."""
    url, api_key = client_config(api_url, key, None, data_dir)
    params = {k: v for k, v in {"siren": siren, "flow": flow}.items() if v}
    resp = httpx.get(f"{url}/api/v1/errors", params=params, headers={"Authorization": f"Bearer {api_key}"}, timeout=60)
    if resp.status_code != 200:
        api_error(resp)
    table = Table("count", "flow", "stage", "cause", "documents")
    for group in resp.json()["groups"]:
        ids = [d["id"] for d in group["documents"]]
        table.add_row(str(group["count"]), group["flow"], group["stage"], group["cause"],
                      ", ".join(ids[:3]) + (f" … (+{len(ids) - 3})" if len(ids) > 3 else ""))
    console.print(table)


@app.command(rich_help_panel=PANEL)
def replay(
    document_id: Annotated[str | None, typer.Option("--id", help="One document")] = None,
    siren: Annotated[str | None, typer.Option(help="Filter: collectivité")] = None,
    flow: Annotated[str | None, typer.Option(help="Filter: flow")] = None,
    stage: Annotated[str | None, typer.Option(help="Filter: the stage that failed")] = None,
    reason: Annotated[str | None, typer.Option(help="Filter: text in the error reason")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be replayed")] = False,
    api_url: ApiUrl = None,
    key: ApiKeyOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Replay documents in error from their failed stage (operator key)."""
    from rich.progress import Progress

    url, api_key = client_config(api_url, key, None, data_dir)
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        found: list[dict[str, Any]] = []
        if document_id:
            targets = [document_id]
        else:
            body = {"siren": siren, "flow": flow, "stage": stage, "reason_contains": reason, "dry_run": True}
            resp = client.post("/api/v1/replay", json=body)
            if resp.status_code != 200:
                api_error(resp)
            found = resp.json()["would_replay"]
            targets = [d["id"] for d in found]
        if dry_run:
            _print_dry_run(targets, found)
            return
        skipped = 0
        with Progress(console=err) as progress:
            task = progress.add_task("replaying", total=len(targets))
            for target in targets:
                resp = client.post(f"/api/v1/documents/{target}/replay")
                if resp.status_code == 409 and not document_id:
                    skipped += 1  # left `error` since the listing (replayed by someone else)
                elif resp.status_code != 202:
                    api_error(resp)
                progress.advance(task)
    console.print(f"[green]{len(targets) - skipped} document(s) replayed[/green]"
                  + (f" ({skipped} no longer in error)" if skipped else ""))


def _print_dry_run(targets: list[str], found: list[dict[str, Any]]) -> None:
    console.print(f"{len(targets)} document(s) would be replayed")
    table = Table("id", "siren", "flow", "stage", "reason")
    for row in found or [{"id": t} for t in targets]:
        table.add_row(row["id"], row.get("siren") or "", row.get("flow") or "", row.get("stage") or "",
                      (row.get("reason") or "")[:100])
    console.print(table)


@app.command(rich_help_panel=PANEL)
def annuler(
    document_id: Annotated[str, typer.Argument(help="The acknowledged acte to cancel")],
    api_url: ApiUrl = None,
    key: ApiKeyOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Cancel an acte the préfecture acknowledged (6-1 Annulation); it turns `cancelled` at the ARAnnulation."""
    url, api_key = client_config(api_url, key, None, data_dir)
    resp = httpx.post(f"{url}/api/v1/documents/{document_id}/annulation",
                      headers={"Authorization": f"Bearer {api_key}"}, timeout=60)
    if resp.status_code != 202:
        api_error(resp)
    console.print(f"[green]annulation of {document_id} requested[/green]")
