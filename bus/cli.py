"""`dematbus` command line (Typer + Rich)."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from bus.cli_ops import register as register_ops
from bus.cli_publication import register as register_publication
from bus.chaos.command import chaos_command
from bus.cli_report import report
from bus.doctor import doctor_command
from bus.config import Settings

app = typer.Typer(help="dematbus: the document bus of the collectivités (ACTES, HELIOS, RH).",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
collectivite_app = typer.Typer(help="Manage collectivités.", no_args_is_help=True)
apikey_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
journal_app = typer.Typer(help="The tamper-evident journal.", no_args_is_help=True)
app.add_typer(collectivite_app, name="collectivite")
app.add_typer(apikey_app, name="apikey")
app.add_typer(journal_app, name="journal")
console = Console()
err = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory (default ./var)")]


def _settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    return Settings(**overrides)


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


# -- running --------------------------------------------------------------------------------


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="Create demo collectivités and deposit a few actes")] = False,
    data_dir: DataDir = None,
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    simulators_port: Annotated[int, typer.Option(help="Simulators port")] = 8100,
) -> None:
    """Start the whole bus: broker, simulators, API and worker. Ctrl-C stops everything."""
    from bus.stack import Stack

    settings = _settings(data_dir)
    stack = Stack(settings.data_dir, api_port=port, simulators_port=simulators_port)
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    # Ctrl-C stops everything even when SIGINT came ignored from the parent (a shell starts
    # background jobs with SIGINT ignored, and Python then never raises KeyboardInterrupt).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with console.status("starting the broker, simulators, API and worker…"):
            stack.start_broker()
            asyncio.run(_migrate(stack.settings))
            stack.start_simulators()
            stack.start_api()
            stack.start_worker()
            stack.start_watcher()
            stack.wait_healthy()
            demos = asyncio.run(_prepare(stack, demo))
        deposited = []
        if demo and demos:
            from bus.demo import deposit_demo_actes

            if not asyncio.run(_has_documents(stack.settings)):
                deposited = deposit_demo_actes(stack.api_url, demos)
        endpoints = stack.write_endpoints({"demo": [
            {"siren": d.siren, "name": d.name, "api_key": d.api_key, "signature": d.signature, "id_e": d.id_e,
             "pastell_url": f"{stack.api_url}/api/v2"} for d in demos
        ]} if demos else None)
        _print_welcome(stack, demos, deposited, endpoints)
        while not stopping:
            # Whatever died starts again (the broker on its port, the API, a worker...): its
            # documents are redriven from the store.
            for message in stack.supervise():
                err.print(f"[yellow]{message}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        with console.status("stopping…"):
            stack.stop()
        console.print("[green]dematbus stopped.[/green] Data kept in", str(stack.data_dir))


async def _migrate(settings: Settings) -> None:
    from bus.store.db import Store

    store = Store(settings.db_url)
    await store.migrate()
    await store.close()


async def _prepare(stack: Any, demo: bool) -> list[Any]:
    """Register every collectivité at the S²low simulator; create the demo ones if asked."""
    from sqlalchemy import select

    from bus.demo import ensure_demo, register_at_simulators
    from bus.store.db import Store
    from bus.store.models import Collectivite

    store = Store(stack.settings.db_url)
    try:
        demos = await ensure_demo(store, stack.data_dir) if demo else []
        async with store.sessions() as session:
            rows = (await session.execute(select(Collectivite))).scalars().all()
        register_at_simulators(stack.simulators_url, [
            (c.siren, c.name, c.departement, c.arrondissement, c.nature_code) for c in rows
        ])
        return demos
    finally:
        await store.close()


async def _has_documents(settings: Settings) -> bool:
    from sqlalchemy import func, select

    from bus.store.db import Store
    from bus.store.models import Document

    store = Store(settings.db_url)
    try:
        async with store.sessions() as session:
            return (await session.execute(select(func.count()).select_from(Document))).scalar_one() > 0
    finally:
        await store.close()


def _print_welcome(stack: Any, demos: list[Any], deposited: list[str], endpoints: Path) -> None:
    table = Table(show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("where")
    table.add_row("web console (log in: API key)", f"{stack.api_url}/console/")
    table.add_row("API (OpenAPI)", f"{stack.api_url}/docs")
    table.add_row("Pastell API (id_e)", f"{stack.api_url}/api/v2")
    table.add_row("S²low + préfecture simulator", f"{stack.simulators_url}/s2low/_admin/transmissions")
    table.add_row("As@lae simulator", f"{stack.simulators_url}/asalae/_admin/transfers")
    table.add_row("i-Parapheur simulator", f"{stack.simulators_url}/iparapheur/_admin/folders")
    table.add_row("coffre-fort simulator (payslips)", f"{stack.simulators_url}/coffre/_admin/deposits")
    table.add_row("watched folders", f"{stack.data_dir}/inbox/<SIREN>/<flow>/")
    table.add_row("Kafka broker", stack.bootstrap)
    table.add_row("data, logs", f"{stack.data_dir}  ({stack.data_dir}/logs)")
    table.add_row("endpoints", str(endpoints))
    console.print(Panel(table, title="dematbus is running", subtitle="Ctrl-C to stop"))
    if demos:
        demo_table = Table("SIREN", "id_e", "collectivité", "signature")
        demo_table.add_column("API key", overflow="fold")
        for d in demos:
            demo_table.add_row(d.siren, str(d.id_e), d.name, d.signature or "-", d.api_key)
        console.print(demo_table)
        first = demos[0]
        console.print(f"Try:  export DEMATBUS_API_KEY={first.api_key}\n"
                      f"      dematbus status <id>   (demo documents deposited: {', '.join(deposited) or 'earlier run'})")


@app.command()
def worker(loglevel: Annotated[str, typer.Option(help="Log level")] = "warning") -> None:
    """Run the stream processor (engine, stage runners, relay, poller, reconciler)."""
    from bus.worker import run_worker

    settings = _settings()
    if not settings.kafka_bootstrap_servers:
        _fail("KAFKA_BOOTSTRAP_SERVERS is not set (dematbus up starts an embedded broker for you)")
    sys.argv = [sys.argv[0]]  # faust's Worker reads argv
    run_worker(settings, settings.kafka_bootstrap_servers or "", loglevel)


@app.command()
def api(port: Annotated[int | None, typer.Option(help="Port")] = None) -> None:
    """Run the HTTP API."""
    import uvicorn

    from connectors.inbound.api import create_app

    settings = _settings()
    uvicorn.run(create_app(settings), host=settings.host, port=port or settings.api_port, log_level="warning")


@app.command()
def watch(interval: Annotated[float | None, typer.Option(help="Seconds between scans")] = None) -> None:
    """Deposit the files dropped in the watched folders (<data-dir>/inbox/<SIREN>/<flow>/)."""
    import logging

    from bus.blobs import BlobStore
    from bus.deposits import Depositor
    from bus.store.db import Store
    from connectors.inbound.watcher import FolderWatcher, watch_forever

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings()
    store = Store(settings.db_url)
    watcher = FolderWatcher(settings.inbox_dir, Depositor(store, BlobStore(settings.blob_dir, settings.keys_dir), settings))
    try:
        asyncio.run(watch_forever(watcher, interval or settings.watch_interval))
    except KeyboardInterrupt:
        pass


@app.command()
def simulators(port: Annotated[int | None, typer.Option(help="Port")] = None) -> None:
    """Run the simulators (S²low + préfecture, As@lae, i-Parapheur) under one port."""
    import uvicorn

    from connectors.simulators.hub import create_hub

    settings = _settings()
    hub = create_hub(settings.data_dir / "simulators", delay=float(os.environ.get("DEMATBUS_SIM_DELAY", "1.0")),
                     persist=os.environ.get("DEMATBUS_SIM_PERSIST", "1") != "0")
    uvicorn.run(hub, host=settings.host, port=port or settings.simulators_port, log_level="warning")


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Create or upgrade the database schema."""
    asyncio.run(_migrate(_settings(data_dir)))
    console.print("[green]schema up to date[/green]")


@app.command()
def bench(
    docs: Annotated[int, typer.Option(help="Documents deposited and followed to their terminal state")] = 200,
    mix: Annotated[str, typer.Option(help="Share of each flow (actes, helios, rh = RH arrêtés)")] = "actes=0.5,helios=0.3,rh=0.2",
    workers: Annotated[int, typer.Option(help="Worker processes in one consumer group")] = 1,
    concurrency: Annotated[int, typer.Option(help="Deposits in flight at once")] = 16,
    collectivites: Annotated[int, typer.Option(help="Collectivités the documents are spread over")] = 8,
    database_url: Annotated[str | None, typer.Option(help="Store URL (default: SQLite in the run's directory)")] = None,
    ceilings: Annotated[bool, typer.Option(help="Measure the machine's ceilings first")] = True,
    quick: Annotated[bool, typer.Option(help="Shorter ceiling measures (a smoke run; rougher figures)")] = False,
    json_file: Annotated[Path | None, typer.Option("--json", help="Write the figures as JSON")] = None,
) -> None:
    """Measure the real pipeline on a private embedded stack (simulators at zero delay) against
    ceilings measured in the same run: bare aiokafka, a bare faust 3-hop pipeline, RSA-2048, DB commits."""
    from bus.bench import BenchOptions, dumps, run_bench
    from bus.bench.report import print_result
    from bus.bench.workload import parse_mix

    try:
        shares = parse_mix(mix)
    except ValueError as exc:
        _fail(str(exc), 2)
    options = BenchOptions(docs=docs, mix=shares, workers=workers, concurrency=concurrency,
                           collectivites=collectivites, database_url=database_url)
    result = run_bench(options, measure_ceilings=ceilings, ceiling_scale=0.1 if quick else 1.0)
    print_result(console, result)
    if json_file:
        json_file.write_text(dumps(result))
        console.print(f"figures written to {json_file}")


# -- administration --------------------------------------------------------------------------


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
    from bus.store.db import Store

    settings = _settings(data_dir)
    cert_dir = settings.data_dir / "certs" / siren

    async def run() -> None:
        store = Store(settings.db_url)
        await store.migrate()
        try:
            if signature == "pades" and not (cert_dir / "cert.pem").exists():
                from connectors.signature.certificates import make_test_certificate

                cert_dir.mkdir(parents=True, exist_ok=True)
                cert, key = make_test_certificate(name, name, cert_dir)
                cert.rename(cert_dir / "cert.pem")
                key.rename(cert_dir / "key.pem")
            async with store.transaction() as session:
                await add_collectivite(
                    session, siren=siren, name=name, departement=departement, arrondissement=arrondissement,
                    nature_code=nature, classification_xml=classification.read_bytes() if classification else None,
                    connectors=simulator_connectors(siren, None if signature == "none" else signature, cert_dir),
                )
        finally:
            await store.close()

    try:
        asyncio.run(run())
    except InvalidCollectivite as exc:
        _fail(str(exc))
    console.print(f"[green]collectivité {siren} saved[/green]")


@collectivite_app.command("list")
def collectivite_list(data_dir: DataDir = None) -> None:
    """List collectivités."""
    from sqlalchemy import select

    from bus.store.db import Store
    from bus.store.entites import ensure_ids
    from bus.store.models import Collectivite

    async def run() -> tuple[list[Collectivite], dict[str, int]]:
        store = Store(_settings(data_dir).db_url)
        await store.migrate()
        try:
            async with store.transaction() as session:
                ids = await ensure_ids(session)
                return list((await session.execute(select(Collectivite).order_by(Collectivite.siren))).scalars()), ids
        finally:
            await store.close()

    table = Table("SIREN", "id_e", "name", "dépt", "arr.", "nature", "classification", "signature")
    collectivites, ids = asyncio.run(run())
    for c in collectivites:
        table.add_row(c.siren, str(ids.get(c.siren, "-")), c.name, c.departement, c.arrondissement, c.nature_code,
                      str(c.classification_date or "-"), (c.connectors.get("signature") or {}).get("kind", "-"))
    console.print(table)


@apikey_app.command("create")
def apikey_create(
    siren: Annotated[list[str], typer.Option(help="SIREN in scope (repeatable; * for all)")],
    role: Annotated[list[str], typer.Option(help="depositor, operator, reporter, admin or rh (repeatable)")],
    name: Annotated[str, typer.Option(help="Label")] = "",
    data_dir: DataDir = None,
) -> None:
    """Create an API key. It is printed once and stored hashed."""
    from bus.store.apikeys import create_key
    from bus.store.db import Store

    async def run() -> str:
        store = Store(_settings(data_dir).db_url)
        await store.migrate()
        try:
            async with store.transaction() as session:
                return await create_key(session, siren, role, name)
        finally:
            await store.close()

    try:
        key = asyncio.run(run())
    except ValueError as exc:
        _fail(str(exc))
    console.print(key, highlight=False, soft_wrap=True)


# -- client side -------------------------------------------------------------------------------


def _endpoints(data_dir: Path | None) -> dict[str, Any]:
    path = _settings(data_dir).data_dir / "endpoints.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _client_config(api_url: str | None, key: str | None, siren: str | None, data_dir: Path | None) -> tuple[str, str]:
    endpoints = _endpoints(data_dir)
    url = api_url or endpoints.get("api") or "http://127.0.0.1:8000"
    key = key or os.environ.get("DEMATBUS_API_KEY")
    if not key:
        demos = endpoints.get("demo") or []
        match = [d for d in demos if siren is None or d["siren"] == siren]
        if match:
            key = match[0]["api_key"]
    if not key:
        _fail("no API key: pass --key or set DEMATBUS_API_KEY")
    return url, key or ""


def _api_error(resp: httpx.Response) -> None:
    try:
        error = resp.json()["error"]
        _fail(f"{resp.status_code} {error['code']}: {error['message']}")
    except (ValueError, KeyError, TypeError):
        _fail(f"HTTP {resp.status_code}: {resp.text[:500]}")


ApiUrl = Annotated[str | None, typer.Option("--api", help="API base URL (default: from endpoints.json)")]
ApiKeyOpt = Annotated[str | None, typer.Option("--key", help="API key (default: $DEMATBUS_API_KEY)")]


@app.command()
def deposit(
    flow: Annotated[str, typer.Option(help="Flow (actes)")],
    siren: Annotated[str, typer.Option(help="SIREN of the collectivité")],
    file: Annotated[Path, typer.Option(help="The document (acte PDF, PES_Aller XML…)")],
    meta: Annotated[Path | None, typer.Option(help="Metadata JSON file (optional for helios)")] = None,
    annex: Annotated[list[Path] | None, typer.Option(help="Annexe (repeatable)")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Idempotency-Key header")] = None,
    api_url: ApiUrl = None,
    key: ApiKeyOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Deposit a document through the API; prints the created document as JSON."""
    url, api_key = _client_config(api_url, key, siren, data_dir)
    headers = {"Authorization": f"Bearer {api_key}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    def part(path: Path) -> tuple[str, bytes, str]:
        return path.name, path.read_bytes(), mimetypes.guess_type(path.name)[0] or "application/octet-stream"

    files = [("document", part(file))] + [("annexes", part(a)) for a in annex or []]
    resp = httpx.post(f"{url}/api/v1/documents", headers=headers, timeout=60,
                      data={"flow": flow, "siren": siren, "metadata": meta.read_text(encoding="utf-8") if meta else "{}"},
                      files=files)
    if resp.status_code not in (200, 201):
        _api_error(resp)
    console.print_json(data=resp.json())


@app.command()
def status(
    document_id: Annotated[str, typer.Argument(help="Document id")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the document as JSON")] = False,
    watch: Annotated[bool, typer.Option(help="Follow until a terminal state")] = False,
    api_url: ApiUrl = None,
    key: ApiKeyOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Show a document's state and timeline."""
    url, api_key = _client_config(api_url, key, None, data_dir)
    while True:
        resp = httpx.get(f"{url}/api/v1/documents/{document_id}", headers={"Authorization": f"Bearer {api_key}"},
                         timeout=30)
        if resp.status_code != 200:
            _api_error(resp)
        doc = resp.json()
        if not watch or doc["terminal"]:
            break
        time.sleep(0.5)
    if as_json:
        console.print_json(data=doc)
        return
    console.print(f"[bold]{doc['id']}[/bold]  flow={doc['flow']}  siren={doc['siren']}  state=[bold]{doc['state']}[/bold]")
    if doc.get("reason"):
        console.print(f"reason: {doc['reason']}")
    if doc.get("replies"):
        console.print("replies: " + ", ".join(f"{k}={v}" for k, v in doc["replies"].items()))
    table = Table("#", "time (UTC)", "event", "state", "detail")
    for entry in doc["timeline"]:
        detail = ", ".join(f"{k}={v}" for k, v in entry["detail"].items() if k != "stage")
        table.add_row(str(entry["seq"]), entry["at"][11:23], entry["event"], entry["state"], detail[:160])
    console.print(table)
    files = Table("file", "role", "size", "sha256")
    for f in doc["files"]:
        files.add_row(f["name"], f["role"], str(f["size"]), f["sha256"][:16] + "…")
    console.print(files)


@app.command()
def errors(
    siren: Annotated[str | None, typer.Option(help="Only this collectivité")] = None,
    flow: Annotated[str | None, typer.Option(help="Only this flow")] = None,
    api_url: ApiUrl = None,
    key: ApiKeyOpt = None,
    data_dir: DataDir = None,
) -> None:
    """The errors inbox: documents in error, grouped by cause (operator key)."""
    url, api_key = _client_config(api_url, key, None, data_dir)
    params = {k: v for k, v in {"siren": siren, "flow": flow}.items() if v}
    resp = httpx.get(f"{url}/api/v1/errors", params=params, headers={"Authorization": f"Bearer {api_key}"}, timeout=60)
    if resp.status_code != 200:
        _api_error(resp)
    table = Table("count", "flow", "stage", "cause", "documents")
    for group in resp.json()["groups"]:
        ids = [d["id"] for d in group["documents"]]
        table.add_row(str(group["count"]), group["flow"], group["stage"], group["cause"],
                      ", ".join(ids[:3]) + (f" … (+{len(ids) - 3})" if len(ids) > 3 else ""))
    console.print(table)


@app.command()
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

    url, api_key = _client_config(api_url, key, None, data_dir)
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        found: list[dict[str, Any]] = []
        if document_id:
            targets = [document_id]
        else:
            body = {"siren": siren, "flow": flow, "stage": stage, "reason_contains": reason, "dry_run": True}
            resp = client.post("/api/v1/replay", json=body)
            if resp.status_code != 200:
                _api_error(resp)
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
                    _api_error(resp)
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


@app.command()
def inspect(
    file: Annotated[Path, typer.Argument(help="An ACTES message or archive, PES_Aller, PES_ACQUIT or SEDA message")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """Recognise a message and print its type and key fields."""
    from schemas.errors import SchemaError
    from schemas.inspect import inspect_message

    data = file.read_bytes()
    try:
        info = inspect_message(data)
    except SchemaError as exc:
        _fail(f"{exc.code}: {exc.message}")
    if info.get("format") == "PES_Aller" and info.get("signatures"):
        from dataclasses import asdict

        from connectors.signature.xades import verify_pes

        info["signature_checks"] = [asdict(check) for check in verify_pes(data)]
    if as_json:
        print(json.dumps(info, ensure_ascii=False, indent=2, default=str))
        return
    table = Table("field", "value")
    for k, v in info.items():
        table.add_row(k, json.dumps(v, ensure_ascii=False, default=str) if not isinstance(v, str) else v)
    console.print(table)


@app.command("pes-memory")
def pes_memory(
    file: Annotated[Path | None, typer.Argument(help="A PES_Aller; default: generate one of --size-mb")] = None,
    size_mb: Annotated[int, typer.Option(help="Size of the generated PES")] = 200,
) -> None:
    """Peak memory of validating, then of signing, a (big) PES_Aller, each in a fresh process."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        if file is None:
            from schemas.helios.generate import main as generate

            file = Path(tmp) / "PES_big.xml"
            with console.status(f"generating a {size_mb} MB PES_Aller…"):
                generate([str(file), "--size-mb", str(size_mb), "--siret", "21060023500017"])
        table = Table("step", "peak RSS", "detail")
        for step, module in (("validate (streaming XSD)", "schemas.helios.measure"),
                             ("sign (XAdES) + verify", "connectors.signature.measure")):
            with console.status(f"{step}…"):
                out = subprocess.run([sys.executable, "-m", module, str(file), "--json"], capture_output=True,
                                     text=True, check=False)
            if not out.stdout.strip():
                _fail(f"{step} failed: {out.stderr[-500:]}")
            result = json.loads(out.stdout)
            detail = ", ".join(f"{k}={v}" for k, v in result.items() if k not in {"file", "peak_rss_kib"})
            table.add_row(step, f"{int(result['peak_rss_kib']) / 1024:.0f} MiB", detail)
        console.print(f"{file}: {file.stat().st_size / 1024 / 1024:.0f} MiB")
        console.print(table)


@journal_app.command("verify")
def journal_verify(
    document_id: Annotated[str | None, typer.Argument(help="One document (default: every chain)")] = None,
    id_: Annotated[str | None, typer.Option("--id", help="One document (default: every chain)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Recompute the hash chains (one document, or all); exit 1 naming each broken entry."""
    from bus.store import journal
    from bus.store.db import Store

    target = id_ or document_id

    async def run() -> tuple[int, list[journal.ChainReport]]:
        store = Store(_settings(data_dir).db_url)
        try:
            async with store.sessions() as session:
                if target is None:
                    return await journal.verify_all(session)
                one = await journal.verify_chain(session, target)
                return (1 if one.entries else 0), ([] if one.valid else [one])
        finally:
            await store.close()

    checked, broken = asyncio.run(run())
    if target is not None and checked == 0:
        _fail(f"no journal for {target}")
    for report_ in broken:
        err.print(f"[red]journal of {report_.document_id} is BROKEN at entry {report_.broken_at}[/red] "
                  f"({report_.entries} entries)")
    if broken:
        raise typer.Exit(1)
    what = f"journal of {target}" if target else f"{checked} journal chain(s)"
    console.print(f"[green]{what} intact[/green]")


app.command()(report)
app.command("doctor")(doctor_command)
app.command("chaos")(chaos_command)
register_ops(app, collectivite_app)
register_publication(collectivite_app)


def main() -> None:
    app()
