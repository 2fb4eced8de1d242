"""Running the bus: `up` (the whole stack, supervised by bus/stack.py), each process on its own
(`worker`, `api`, `simulators`, `watch`), `migrate`, and the campaigns on a private stack
(`bench`, `chaos`) with `doctor` to check a deployment."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

from bus.chaos.command import chaos_command
from bus.cli.common import DataDir, app, console, err, fail, settings_for, with_store
from bus.doctor import doctor_command

if TYPE_CHECKING:
    from bus.demo import DemoCollectivite
    from bus.stack import Stack

PANEL = "Run the bus"


@app.command(rich_help_panel=PANEL)
def up(
    demo: Annotated[bool, typer.Option(help="Create demo collectivités and deposit a few actes")] = False,
    data_dir: DataDir = None,
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    simulators_port: Annotated[int, typer.Option(help="Simulators port")] = 8100,
) -> None:
    """Start the whole bus: broker, simulators, API and worker. Ctrl-C stops everything."""
    from bus.demo import deposit_demo_actes, prepare_stack
    from bus.stack import Stack

    settings = settings_for(data_dir)
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
            with_store(stack.data_dir, _nothing)  # migrated before any process opens it
            stack.start_simulators()
            stack.start_api()
            stack.start_worker()
            stack.start_watcher()
            stack.wait_healthy()
            demos, has_documents = with_store(stack.data_dir, lambda store: prepare_stack(
                store, stack.data_dir, stack.simulators_url, demo))
        deposited = deposit_demo_actes(stack.api_url, demos) if demos and not has_documents else []
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


async def _nothing(_: Any) -> None:
    return None


def _print_welcome(stack: Stack, demos: list[DemoCollectivite], deposited: list[str], endpoints: Path) -> None:
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


@app.command(rich_help_panel=PANEL)
def worker(loglevel: Annotated[str, typer.Option(help="Log level")] = "warning") -> None:
    """Run the stream processor (engine, stage runners, relay, poller, reconciler)."""
    from bus.processes import run_stream_processor

    settings = settings_for()
    if not settings.kafka_bootstrap_servers:
        fail("KAFKA_BOOTSTRAP_SERVERS is not set (dematbus up starts an embedded broker for you)")
    run_stream_processor(settings, loglevel)


@app.command(rich_help_panel=PANEL)
def api(port: Annotated[int | None, typer.Option(help="Port")] = None) -> None:
    """Run the HTTP API."""
    from bus.processes import run_api

    run_api(settings_for(), port)


@app.command(rich_help_panel=PANEL)
def watch(interval: Annotated[float | None, typer.Option(help="Seconds between scans")] = None) -> None:
    """Deposit the files dropped in the watched folders (<data-dir>/inbox/<SIREN>/<flow>/)."""
    from bus.processes import run_watcher

    run_watcher(settings_for(), interval)


@app.command(rich_help_panel=PANEL)
def simulators(port: Annotated[int | None, typer.Option(help="Port")] = None) -> None:
    """Run the simulators (S²low + préfecture, As@lae, i-Parapheur) under one port."""
    from bus.processes import run_simulators

    run_simulators(settings_for(), port)


@app.command(rich_help_panel=PANEL)
def migrate(data_dir: DataDir = None) -> None:
    """Create or upgrade the database schema."""
    with_store(data_dir, _nothing)
    console.print("[green]schema up to date[/green]")


@app.command(rich_help_panel=PANEL)
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
        fail(str(exc), 2)
    options = BenchOptions(docs=docs, mix=shares, workers=workers, concurrency=concurrency,
                           collectivites=collectivites, database_url=database_url)
    result = run_bench(options, measure_ceilings=ceilings, ceiling_scale=0.1 if quick else 1.0)
    print_result(console, result)
    if json_file:
        json_file.write_text(dumps(result))
        console.print(f"figures written to {json_file}")


app.command("chaos", rich_help_panel=PANEL)(chaos_command)
app.command("doctor", rich_help_panel=PANEL)(doctor_command)
