"""`dematbus collectivite publication SIREN`: turn a collectivité's publication of actes on (its
default natures and SIRET) or off. Written straight to the store, like `collectivite add`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from bus.config import Settings

console = Console()
err = Console(stderr=True)


def publication(
    siren: Annotated[str, typer.Argument(help="The collectivité's SIREN")],
    natures: Annotated[str, typer.Option(help="Natures published by default, e.g. 1,2 (others on request)")] = "",
    siret: Annotated[str | None, typer.Option(help="SIRET of the collectivité, for the SCDL open data")] = None,
    off: Annotated[bool, typer.Option("--off", help="Stop publishing (what was published stays online)")] = False,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Data directory (default ./var)")] = None,
) -> None:
    """Turn publication (R2131-1 CGCT) on or off for a collectivité."""
    from bus.publication import PublicationRefused, configure
    from bus.store.db import Store
    from schemas.actes.publication import PublicationSettings

    settings = Settings(data_dir=data_dir) if data_dir else Settings()
    try:
        wanted = None if off else PublicationSettings(
            natures=[int(n) for n in natures.replace(" ", "").split(",") if n], siret=siret)
    except (ValueError, ValidationError) as exc:
        err.print(f"[red]error:[/red] invalid --natures or --siret: {exc}")
        raise typer.Exit(2) from None

    async def run() -> None:
        store = Store(settings.db_url)
        await store.migrate()
        try:
            async with store.transaction() as session:
                await configure(session, siren, wanted)
        finally:
            await store.close()

    try:
        asyncio.run(run())
    except PublicationRefused as exc:
        err.print(f"[red]error:[/red] {exc.code}: {exc.message}")
        raise typer.Exit(2) from None
    if wanted is None:
        console.print(f"publication of {siren} turned off (its registry keeps what was published)")
    else:
        console.print(f"[green]publication of {siren} on[/green]: registry at "
                      f"{settings.public_base_url}/publication/{siren}")


def register(collectivite_app: typer.Typer) -> None:
    collectivite_app.command("publication")(publication)
