"""Administration, written straight to the store: collectivités (and their publication settings),
groups, API keys, webhooks, and the journal's verification."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from bus.cli.common import (
    DataDir,
    apikey_app,
    app,
    collectivite_app,
    console,
    err,
    fail,
    group_app,
    in_transaction,
    journal_app,
    settings_for,
    webhook_app,
    with_store,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bus.store import journal
    from bus.store.db import Store
    from bus.store.models import Collectivite

PANEL = "Administration"
app.add_typer(collectivite_app, name="collectivite", rich_help_panel=PANEL)
app.add_typer(apikey_app, name="apikey", rich_help_panel=PANEL)
app.add_typer(webhook_app, name="webhook", rich_help_panel=PANEL)
app.add_typer(journal_app, name="journal", rich_help_panel=PANEL)


# -- collectivités -------------------------------------------------------------------------------


@collectivite_app.command("add")
def collectivite_add(
    siren: Annotated[str, typer.Option(help="SIREN (9 digits, Luhn)")],
    name: Annotated[str, typer.Option(help="Name")],
    departement: Annotated[str, typer.Option(help="Département, 3 characters (034, 02A)")],
    arrondissement: Annotated[str, typer.Option(help="Arrondissement, 1 digit")] = "0",
    nature: Annotated[str, typer.Option(help="Authority nature code (31 commune, 44 CC…)")] = "31",
    classification: Annotated[Path | None, typer.Option(help="RetourClassification XML")] = None,
    signature: Annotated[str, typer.Option(help="none, pades or iparapheur")] = "none",
    data_dir: DataDir = None,
) -> None:
    """Add (or update) a collectivité, wired to the simulators by default."""
    from bus.collectivites import (
        InvalidCollectivite,
        add_collectivite,
        simulator_connectors,
    )

    cert_dir = settings_for(data_dir).data_dir / "certs" / siren
    if signature == "pades" and not (cert_dir / "cert.pem").exists():
        from connectors.signature.certificates import make_test_certificate

        cert_dir.mkdir(parents=True, exist_ok=True)
        cert, key = make_test_certificate(name, name, cert_dir)
        cert.rename(cert_dir / "cert.pem")
        key.rename(cert_dir / "key.pem")

    async def action(session: AsyncSession) -> None:
        await add_collectivite(
            session, siren=siren, name=name, departement=departement, arrondissement=arrondissement,
            nature_code=nature, classification_xml=classification.read_bytes() if classification else None,
            connectors=simulator_connectors(siren, None if signature == "none" else signature, cert_dir),
        )

    try:
        in_transaction(data_dir, action)
    except InvalidCollectivite as exc:
        fail(str(exc))
    console.print(f"[green]collectivité {siren} saved[/green]")


@collectivite_app.command("list")
def collectivite_list(data_dir: DataDir = None) -> None:
    """List collectivités."""
    from sqlalchemy import select

    from bus.collectivite_config import connectors_of
    from bus.store.entites import ensure_ids
    from bus.store.models import Collectivite

    async def action(session: AsyncSession) -> tuple[list[Collectivite], dict[str, int]]:
        ids = await ensure_ids(session)
        return list((await session.execute(select(Collectivite).order_by(Collectivite.siren))).scalars()), ids

    table = Table("SIREN", "id_e", "name", "dépt", "arr.", "nature", "classification", "signature")
    collectivites, ids = in_transaction(data_dir, action)
    for c in collectivites:
        table.add_row(c.siren, str(ids.get(c.siren, "-")), c.name, c.departement, c.arrondissement, c.nature_code,
                      str(c.classification_date or "-"), connectors_of(c).slot("signature").get("kind", "-"))
    console.print(table)


@collectivite_app.command("publication")
def collectivite_publication(
    siren: Annotated[str, typer.Argument(help="The collectivité's SIREN")],
    natures: Annotated[str, typer.Option(help="Natures published by default, e.g. 1,2 (others on request)")] = "",
    siret: Annotated[str | None, typer.Option(help="SIRET of the collectivité, for the SCDL open data")] = None,
    off: Annotated[bool, typer.Option("--off", help="Stop publishing (what was published stays online)")] = False,
    data_dir: DataDir = None,
) -> None:
    """Turn publication (R2131-1 CGCT) on or off for a collectivité."""
    from bus.publication import configure
    from schemas.actes.publication import PublicationSettings

    try:
        wanted = None if off else PublicationSettings(
            natures=[int(n) for n in natures.replace(" ", "").split(",") if n], siret=siret)
    except (ValueError, ValidationError) as exc:
        fail(f"invalid --natures or --siret: {exc}", 2)
    in_transaction(data_dir, lambda session: configure(session, siren, wanted))
    if wanted is None:
        console.print(f"publication of {siren} turned off (its registry keeps what was published)")
    else:
        console.print(f"[green]publication of {siren} on[/green]: registry at "
                      f"{settings_for(data_dir).public_base_url}/publication/{siren}")


# -- groups ------------------------------------------------------------------------------------


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

    async def action(session: AsyncSession) -> list[str]:
        await save_group(session, name, label, kind)
        return await set_members(session, name, add=list(member or []))

    members = in_transaction(data_dir, action)
    console.print(f"group {name}: {len(members)} member(s)")


@group_app.command("members")
def group_members(
    name: Annotated[str, typer.Argument(help="Group name")],
    add: Annotated[list[str] | None, typer.Option(help="SIREN to add (repeatable)")] = None,
    remove: Annotated[list[str] | None, typer.Option(help="SIREN to remove (repeatable)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Add or remove members; prints the members."""
    from bus.groups import set_members

    members = in_transaction(data_dir, lambda session: set_members(session, name, add=list(add or []),
                                                                    remove=list(remove or [])))
    console.print(f"group {name}: {', '.join(members) or '(no member)'}")


@group_app.command("list")
def group_list(data_dir: DataDir = None) -> None:
    """Groups and their members."""
    from bus.groups import list_groups

    table = Table("group", "kind", "label", "members")
    for group in in_transaction(data_dir, list_groups):
        table.add_row(group.name, group.kind, group.label, ", ".join(group.members))
    console.print(table)


@group_app.command("delete")
def group_delete(name: Annotated[str, typer.Argument(help="Group name")], data_dir: DataDir = None) -> None:
    """Delete a group (its collectivités stay)."""
    from bus.groups import delete_group

    in_transaction(data_dir, lambda session: delete_group(session, name))
    console.print(f"group {name} deleted")


# -- API keys ----------------------------------------------------------------------------------


@apikey_app.command("create")
def apikey_create(
    siren: Annotated[list[str], typer.Option(help="SIREN in scope (repeatable; * for all)")],
    role: Annotated[list[str], typer.Option(help="depositor, operator, reporter, admin or rh (repeatable)")],
    name: Annotated[str, typer.Option(help="Label")] = "",
    data_dir: DataDir = None,
) -> None:
    """Create an API key. It is printed once and stored hashed."""
    from bus.store.apikeys import create_key

    try:
        key = in_transaction(data_dir, lambda session: create_key(session, siren, role, name))
    except ValueError as exc:
        fail(str(exc))
    console.print(key, highlight=False, soft_wrap=True)


# -- webhooks ----------------------------------------------------------------------------------


@webhook_app.command("add")
def webhook_add(
    siren: Annotated[str, typer.Option(help="The collectivité")],
    url: Annotated[str, typer.Option(help="http(s) URL receiving the POSTs")],
    secret: Annotated[str | None, typer.Option(help="HMAC secret, 16+ characters (default: generated)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Register a webhook; prints its id and its secret (shown once)."""
    from bus.webhooks import register

    async def action(session: AsyncSession) -> tuple[int, str]:
        hook, key = await register(session, siren, url, secret, "cli")
        return hook.id, key

    hook_id, key = in_transaction(data_dir, action)
    console.print(f"webhook {hook_id} for {siren}: {url}")
    console.print(f"secret: {key}", highlight=False, soft_wrap=True)


@webhook_app.command("list")
def webhook_list(siren: Annotated[str | None, typer.Option(help="Only this collectivité")] = None,
                 data_dir: DataDir = None) -> None:
    """Active webhooks with their delivery counts."""
    from sqlalchemy import func, select

    from bus.store.models import WebhookDelivery
    from bus.webhooks import webhooks_of

    async def action(session: AsyncSession) -> list[tuple[Any, dict[str, int]]]:
        out = []
        for hook in await webhooks_of(session, [siren] if siren else None):
            counts = dict((await session.execute(
                select(WebhookDelivery.status, func.count()).where(WebhookDelivery.webhook_id == hook.id)
                .group_by(WebhookDelivery.status))).tuples().all())
            out.append((hook, counts))
        return out

    table = Table("id", "SIREN", "url", "pending", "delivered", "failed", "created by")
    for hook, counts in in_transaction(data_dir, action):
        table.add_row(str(hook.id), hook.siren, hook.url, *(str(counts.get(s, 0)) for s in
                                                             ("pending", "delivered", "failed")), hook.created_by)
    console.print(table)


# -- journal -----------------------------------------------------------------------------------


@journal_app.command("verify")
def journal_verify(
    document_id: Annotated[str | None, typer.Argument(help="One document (default: every chain)")] = None,
    id_: Annotated[str | None, typer.Option("--id", help="One document (default: every chain)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Recompute the hash chains (one document, or all); exit 1 naming each broken entry."""
    from bus.store import journal

    target = id_ or document_id

    async def action(store: Store) -> tuple[int, list[journal.ChainReport]]:
        async with store.sessions() as session:
            if target is None:
                return await journal.verify_all(session)
            one = await journal.verify_chain(session, target)
            return (1 if one.entries else 0), ([] if one.valid else [one])

    checked, broken = with_store(data_dir, action, migrate=False)
    if target is not None and checked == 0:
        fail(f"no journal for {target}")
    for report_ in broken:
        err.print(f"[red]journal of {report_.document_id} is BROKEN at entry {report_.broken_at}[/red] "
                  f"({report_.entries} entries)")
    if broken:
        raise typer.Exit(1)
    what = f"journal of {target}" if target else f"{checked} journal chain(s)"
    console.print(f"[green]{what} intact[/green]")
