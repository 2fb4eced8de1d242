"""Operations commands: `dematbus webhook add/list`, `dematbus collectivite group …`, `dematbus annuler ID`.

Webhooks and groups are administration: written straight to the store (like `collectivite add`).
`annuler` goes through the API with an operator key, so it is journaled with the key's name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table

from bus.config import Settings

T = TypeVar("T")
console = Console()
err = Console(stderr=True)
webhook_app = typer.Typer(help="Webhooks: state changes POSTed to a collectivité's URL.", no_args_is_help=True)
group_app = typer.Typer(help="Collectivité groups (syndicat and members, EPCI and communes).", no_args_is_help=True)
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory (default ./var)")]


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def _in_store(data_dir: Path | None, action: Callable[[Any], Awaitable[T]]) -> T:
    """Run `action(session)` in one transaction of the store; refusals exit with their message."""
    from bus.groups import GroupError
    from bus.store.db import Store
    from bus.webhooks import WebhookError

    async def run() -> T:
        store = Store((Settings(data_dir=data_dir) if data_dir else Settings()).db_url)
        await store.migrate()
        try:
            async with store.transaction() as session:
                return await action(session)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except (GroupError, WebhookError) as exc:
        _fail(f"{exc.code}: {exc.message}", 2)
        raise  # unreachable: _fail exits


# -- webhooks -----------------------------------------------------------------------------------


@webhook_app.command("add")
def webhook_add(
    siren: Annotated[str, typer.Option(help="The collectivité")],
    url: Annotated[str, typer.Option(help="http(s) URL receiving the POSTs")],
    secret: Annotated[str | None, typer.Option(help="HMAC secret, 16+ characters (default: generated)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Register a webhook; prints its id and its secret (shown once)."""
    from bus.webhooks import register

    async def action(session: Any) -> tuple[int, str]:
        hook, key = await register(session, siren, url, secret, "cli")
        return hook.id, key

    hook_id, key = _in_store(data_dir, action)
    console.print(f"webhook {hook_id} for {siren}: {url}")
    console.print(f"secret: {key}", highlight=False, soft_wrap=True)


@webhook_app.command("list")
def webhook_list(siren: Annotated[str | None, typer.Option(help="Only this collectivité")] = None,
                 data_dir: DataDir = None) -> None:
    """Active webhooks with their delivery counts."""
    from sqlalchemy import func, select

    from bus.store.models import WebhookDelivery
    from bus.webhooks import webhooks_of

    async def action(session: Any) -> list[tuple[Any, dict[str, int]]]:
        out = []
        for hook in await webhooks_of(session, [siren] if siren else None):
            counts = dict((await session.execute(
                select(WebhookDelivery.status, func.count()).where(WebhookDelivery.webhook_id == hook.id)
                .group_by(WebhookDelivery.status))).tuples().all())
            out.append((hook, counts))
        return out

    table = Table("id", "SIREN", "url", "pending", "delivered", "failed", "created by")
    for hook, counts in _in_store(data_dir, action):
        table.add_row(str(hook.id), hook.siren, hook.url, *(str(counts.get(s, 0)) for s in
                                                             ("pending", "delivered", "failed")), hook.created_by)
    console.print(table)


# -- groups -------------------------------------------------------------------------------------


@group_app.command("add")
def group_add(
    name: Annotated[str, typer.Argument(help="Group name, e.g. syndicat-numerique-44")],
    label: Annotated[str, typer.Option(help="Display name")] = "",
    kind: Annotated[str, typer.Option(help="syndicat, epci or autre")] = "syndicat",
    member: Annotated[list[str] | None, typer.Option(help="SIREN of a member (repeatable)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create (or update) a group, adding the given members."""
    from bus.groups import save_group, set_members

    async def action(session: Any) -> list[str]:
        await save_group(session, name, label, kind)
        return await set_members(session, name, add=list(member or []))

    members = _in_store(data_dir, action)
    console.print(f"group {name}: {len(members)} member(s)")


@group_app.command("members")
def group_members_cmd(
    name: Annotated[str, typer.Argument(help="Group name")],
    add: Annotated[list[str] | None, typer.Option(help="SIREN to add (repeatable)")] = None,
    remove: Annotated[list[str] | None, typer.Option(help="SIREN to remove (repeatable)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Add or remove members; prints the members."""
    from bus.groups import set_members

    members = _in_store(data_dir, lambda session: set_members(session, name, add=list(add or []),
                                                               remove=list(remove or [])))
    console.print(f"group {name}: {', '.join(members) or '(no member)'}")


@group_app.command("list")
def group_list(data_dir: DataDir = None) -> None:
    """Groups and their members."""
    from bus.groups import list_groups

    table = Table("group", "kind", "label", "members")
    for group in _in_store(data_dir, list_groups):
        table.add_row(group.name, group.kind, group.label, ", ".join(group.members))
    console.print(table)


@group_app.command("delete")
def group_delete(name: Annotated[str, typer.Argument(help="Group name")], data_dir: DataDir = None) -> None:
    """Delete a group (its collectivités stay)."""
    from bus.groups import delete_group

    _in_store(data_dir, lambda session: delete_group(session, name))
    console.print(f"group {name} deleted")


# -- annulation ---------------------------------------------------------------------------------


def annuler(
    document_id: Annotated[str, typer.Argument(help="The acknowledged acte to cancel")],
    api_url: Annotated[str | None, typer.Option("--api", help="API base URL (default: from endpoints.json)")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Operator API key (default: $DEMATBUS_API_KEY)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Cancel an acte the préfecture acknowledged (6-1 Annulation); it turns `cancelled` at the ARAnnulation."""
    from bus.cli import _api_error, _client_config

    url, api_key = _client_config(api_url, key, None, data_dir)
    resp = httpx.post(f"{url}/api/v1/documents/{document_id}/annulation",
                      headers={"Authorization": f"Bearer {api_key}"}, timeout=60)
    if resp.status_code != 202:
        _api_error(resp)
    console.print(f"[green]annulation of {document_id} requested[/green]")


def register(app: typer.Typer, collectivite_app: typer.Typer) -> None:
    app.add_typer(webhook_app, name="webhook")
    collectivite_app.add_typer(group_app, name="group")
    app.command("annuler")(annuler)
