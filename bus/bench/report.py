"""The bench's figures as tables: what the pipeline did, what the machine can do, the ratios."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bus.bench import BenchResult


def print_result(console: Console, result: BenchResult) -> None:
    data = result.to_json()
    pipeline = Table("pipeline", "value", title=f"{data['docs']} documents in {data['seconds']} s")
    pipeline.add_row("end to end", f"{data['docs_per_s']} documents/s")
    for flow, rate in sorted(data["docs_per_s_by_flow"].items()):
        pipeline.add_row(f"  {flow}", f"{rate} documents/s")
    pipeline.add_row("deposit API", f"{data['deposits_per_s']} deposits/s")
    lat = data["latency_ms"]
    pipeline.add_row("deposit → terminal", f"p50 {lat['p50']} ms · p95 {lat['p95']} ms · p99 {lat['p99']} ms")
    for stage, p in data["stage_latency_ms"].items():
        pipeline.add_row(f"  stage {stage}", f"p50 {p['p50']} ms · p95 {p['p95']} ms · p99 {p['p99']} ms")
    pipeline.add_row("final states", ", ".join(f"{k} {v}" for k, v in sorted(data["states"].items())))
    pipeline.add_row("CPU per document", f"{data['cpu_ms_per_doc']} ms (every process of the stack)")
    for name, ms in sorted(data["cpu_ms_per_doc_by_process"].items()):
        pipeline.add_row(f"  {name}", f"{ms} ms" + (f" ({data['cpu_postgres']})" if name == "postgres" else ""))
    if "cpu_postgres" in data and "postgres" not in data["cpu_ms_per_doc_by_process"]:
        pipeline.add_row("  postgres", data["cpu_postgres"])
    pipeline.add_row("SQL statements / document", str(data["sql_statements_per_doc"]))
    pipeline.add_row("Kafka messages / document", f"{data['kafka_messages_per_doc']} (every topic, changelogs included)")
    pipeline.add_row("HTTP requests / document", f"{data['http_requests_per_doc']} (served by the simulators)")
    for name, mb in sorted(data["peak_rss_mb_by_process"].items()):
        pipeline.add_row(f"peak RSS {name}", f"{mb} MB")
    console.print(pipeline)
    if data["ceilings"]:
        ceilings = Table("ceiling (same machine, same run)", "value", "pipeline ÷ ceiling")
        c, r = data["ceilings"], data["ratios"]
        ceilings.add_row("bare aiokafka produce → consume", f"{c['aiokafka_msgs_per_s']} msgs/s", str(r["aiokafka"]))
        ceilings.add_row("bare faust 3-hop pipeline", f"{c['faust_3hop_events_per_s']} events/s", str(r["faust_3hop"]))
        ceilings.add_row("RSA-2048 signatures", f"{c['rsa2048_signs_per_s']} /s", str(r["rsa2048"]))
        ceilings.add_row("database commits", f"{c['db_commits_per_s']} /s", str(r["db_commits"]))
        console.print(ceilings)
