"""What every command of the command line shares: the Typer app and its groups, the consoles,
the settings, the one way to the store, and the API client's configuration."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from bus.config import Settings

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.ext.asyncio import AsyncSession

    from bus.store.db import Store

T = TypeVar("T")

app = typer.Typer(help="dematbus: the document bus of the collectivités (ACTES, HELIOS, RH).",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
collectivite_app = typer.Typer(help="Manage collectivités.", no_args_is_help=True)
group_app = typer.Typer(help="Collectivité groups (syndicat and members, EPCI and communes).", no_args_is_help=True)
apikey_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
webhook_app = typer.Typer(help="Webhooks: state changes POSTed to a collectivité's URL.", no_args_is_help=True)
journal_app = typer.Typer(help="The tamper-evident journal.", no_args_is_help=True)
collectivite_app.add_typer(group_app, name="group")

console = Console()
err = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory (default ./var)")]
ApiUrl = Annotated[str | None, typer.Option("--api", help="API base URL (default: from endpoints.json)")]
ApiKeyOpt = Annotated[str | None, typer.Option("--key", help="API key (default: $DEMATBUS_API_KEY)")]


def settings_for(data_dir: Path | None = None, **overrides: Any) -> Settings:
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    return Settings(**overrides)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


# -- the store ---------------------------------------------------------------------------------


def with_store(data_dir: Path | None, action: Callable[[Store], Awaitable[T]], *, migrate: bool = True) -> T:
    """The one way the command line reaches the store: open it (migrated to the code's schema
    unless `migrate` is off), run `action`, close it."""
    from bus.store.db import Store

    async def run() -> T:
        store = Store(settings_for(data_dir).db_url)
        try:
            if migrate:
                await store.migrate()
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(run())


def in_transaction(data_dir: Path | None, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """`action(session)` in one transaction of the store; a refusal (an error with a `code` and a
    `message`: group, webhook, publication…) exits 2 with its message."""
    async def run(store: Store) -> T:
        async with store.transaction() as session:
            return await action(session)

    try:
        return with_store(data_dir, run)
    except Exception as exc:
        if isinstance(getattr(exc, "code", None), str) and isinstance(getattr(exc, "message", None), str):
            fail(f"{exc.code}: {exc.message}", 2)  # type: ignore[attr-defined]
        raise


# -- the API, for the commands that go through it ---------------------------------------------


def endpoints(data_dir: Path | None) -> dict[str, Any]:
    path = settings_for(data_dir).data_dir / "endpoints.json"
    return json.loads(path.read_text()) if path.exists() else {}


def client_config(api_url: str | None, key: str | None, siren: str | None, data_dir: Path | None) -> tuple[str, str]:
    """The API's URL and the key to call it with: given, else `$DEMATBUS_API_KEY`, else a demo key
    from `endpoints.json` (the one of `siren` when given)."""
    known = endpoints(data_dir)
    url = api_url or known.get("api") or "http://127.0.0.1:8000"
    key = key or os.environ.get("DEMATBUS_API_KEY")
    if not key:
        match = [d for d in known.get("demo") or [] if siren is None or d["siren"] == siren]
        if match:
            key = match[0]["api_key"]
    if not key:
        fail("no API key: pass --key or set DEMATBUS_API_KEY")
    return url, key


def api_error(resp: httpx.Response) -> NoReturn:
    """Exit with the API's refusal: its code and message, or the raw answer."""
    try:
        error = resp.json()["error"]
        message = f"{resp.status_code} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {resp.status_code}: {resp.text[:500]}"
    fail(message)
