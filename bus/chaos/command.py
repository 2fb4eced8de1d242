"""`dematbus chaos` as the command line runs it: parse, run, print the verdict, write the files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from bus.chaos.options import ChaosOptions, parse_duration, parse_faults, parse_kills

if TYPE_CHECKING:
    from bus.chaos.campaign import ChaosResult


def options_from_cli(*, docs: int, mix: str, kill_every: str, faults: str, kill: str, workers: int, seed: int,
                     max_kills: int | None, drain_timeout: str, concurrency: int, rate: float, collectivites: int,
                     database_url: str | None) -> ChaosOptions:
    """Raises ValueError with a message for the user on a bad spelling."""
    from bus.bench.workload import parse_mix

    return ChaosOptions(docs=docs, mix=parse_mix(mix), kill_every=parse_duration(kill_every),
                        kills=parse_kills(kill), faults=parse_faults(faults), workers=workers, seed=seed,
                        max_kills=max_kills, drain_timeout=parse_duration(drain_timeout),
                        concurrency=concurrency, rate=rate or None, collectivites=collectivites,
                        database_url=database_url)


def run_and_report(options: ChaosOptions, console: Console, json_path: Path, chart_path: Path) -> bool:
    from bus.chaos.campaign import run_chaos

    result = run_chaos(options, console)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result.report, indent=2, ensure_ascii=False, default=str))
    chart_path.parent.mkdir(parents=True, exist_ok=True)
    chart_path.write_text(result.svg)
    print_verdict(console, result)
    console.print(f"report: {json_path}   chart: {chart_path}")
    return result.ok


def print_verdict(console: Console, result: ChaosResult) -> None:
    r, v = result.report, result.report["verdict"]
    table = Table("invariant", "measured", "expected", title="dematbus chaos")
    dup = v["duplicates"]

    def row(name: str, value: object, good: bool, expected: str = "0") -> None:
        table.add_row(name, f"[{'green' if good else 'red'}]{value}[/]", expected)

    row("documents lost (acknowledged, never terminal)", v["lost"], v["lost"] == 0)
    row("duplicate transmissions (S²low ACTES + PES)", dup["s2low_actes"] + dup["s2low_helios"],
        dup["s2low_actes"] + dup["s2low_helios"] == 0)
    row("duplicate archive transfers (As@lae)", dup["asalae"], dup["asalae"] == 0)
    row("duplicate parapheur folders / safe deposits", dup["iparapheur"] + dup["coffre"],
        dup["iparapheur"] + dup["coffre"] == 0)
    row("documents in error without a reason", v["errors"]["without_reason"], v["errors"]["without_reason"] == 0)
    row("broken journal chains", len(v["journal"]["broken"]), not v["journal"]["broken"])
    console.print(table)
    kills = ", ".join(f"{k} {n}" for k, n in r["kills"].items() if k != "events")
    console.print(f"{r['deposits']['acknowledged']} documents acknowledged ({r['deposits']['retries']} deposit retries, "
                  f"{r['deposits']['replayed_by_idempotency_key']} answered from an earlier attempt), "
                  f"{r['docs_per_s']} documents/s over {r['seconds']:.0f} s; kills: {kills or 'none'}; "
                  f"{r['faults']['episodes']} fault episodes {r['faults']['consumed']}")
    console.print(f"states: {v['states']}; errors: {v['errors']['count']} {v['errors']['reasons']}")
    console.print("[green]every invariant holds[/green]" if result.ok else "[red]an invariant is broken[/red]")


def chaos_command(
    docs: Annotated[int, typer.Option(help="Documents deposited during the campaign")] = 300,
    mix: Annotated[str, typer.Option(help="Share of each flow (actes, helios, rh)")] = "actes=0.5,helios=0.3,rh=0.2",
    kill_every: Annotated[str, typer.Option(help="Mean time between kills (15s, 1m)")] = "15s",
    faults: Annotated[str, typer.Option(help="Chance of a fault episode per simulator and tick")] = "tdt=0.2,sae=0.1,parapheur=0.1",
    kill: Annotated[str, typer.Option(help="What may be SIGKILLed")] = "broker,worker,api",
    workers: Annotated[int, typer.Option(help="Worker processes")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the kills and faults")] = 1,
    max_kills: Annotated[int | None, typer.Option(help="Stop killing after this many (default: while documents flow)")] = None,
    drain_timeout: Annotated[str, typer.Option(help="Time documents get to finish after the chaos")] = "15m",
    concurrency: Annotated[int, typer.Option(help="Deposits in flight at once")] = 8,
    rate: Annotated[float, typer.Option(help="Deposits started per second (0: as fast as possible)")] = 4.0,
    collectivites: Annotated[int, typer.Option(help="Collectivités the documents are spread over")] = 8,
    database_url: Annotated[str | None, typer.Option(help="Store URL (default: SQLite in the run's directory)")] = None,
    json_file: Annotated[Path, typer.Option("--json", help="Report")] = Path("var/chaos.json"),
    chart: Annotated[Path, typer.Option(help="SVG chart of throughput and kills")] = Path("var/chaos.svg"),
) -> None:
    """Kill workers, the API and the broker and make the simulators fail while documents flow, on a
    private stack; then check nothing was lost or sent twice (exit 1 when an invariant broke)."""
    try:
        options = options_from_cli(docs=docs, mix=mix, kill_every=kill_every, faults=faults, kill=kill, workers=workers,
                                   seed=seed, max_kills=max_kills, drain_timeout=drain_timeout,
                                   concurrency=concurrency, rate=rate, collectivites=collectivites,
                                   database_url=database_url)
    except ValueError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if not run_and_report(options, Console(), json_file, chart):
        raise typer.Exit(1)
