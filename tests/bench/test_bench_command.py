"""`dematbus bench` end to end on a tiny workload: the figures it promises are there and coherent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bus.bench.workload import bench_sirens, parse_mix, workload
from schemas.siren import is_valid_siren


def test_the_mix_is_parsed_and_honoured() -> None:
    mix = parse_mix("actes=3,helios=1")
    assert mix == {"actes": 0.75, "helios": 0.25}
    docs = workload(8, mix, bench_sirens(3))
    assert [d.flow for d in docs].count("helios") == 2
    assert all(is_valid_siren(d.siren) for d in docs)
    assert len({d.metadata.get("numero_interne") for d in docs if d.flow == "actes"}) == 6
    with pytest.raises(ValueError, match="unknown flow"):
        parse_mix("actes=1,fax=1")


@pytest.mark.timeout(600)
def test_bench_prints_ceilings_and_ratios_and_writes_the_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "bus", "bench", "--docs", "6", "--collectivites", "2",
                          "--quick", "--json", str(out)], capture_output=True, text=True, timeout=580)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "bare faust 3-hop pipeline" in run.stdout and "pipeline ÷ ceiling" in run.stdout
    data = json.loads(out.read_text())
    assert data["states"] == {"archived": 6}
    assert set(data["latency_ms"]) == {"p50", "p95", "p99"}
    assert data["latency_ms"]["p50"] <= data["latency_ms"]["p99"]
    assert set(data["ceilings"]) == {"aiokafka_msgs_per_s", "faust_3hop_events_per_s", "rsa2048_signs_per_s",
                                     "db_commits_per_s"}
    assert all(v > 0 for v in data["ceilings"].values())
    assert data["ratios"]["faust_3hop"] == pytest.approx(
        data["docs_per_s"] / data["ceilings"]["faust_3hop_events_per_s"], rel=1e-2)
    assert data["docs_per_s"] > 0 and data["deposits_per_s"] > 0
    assert {"api", "worker-1", "simulators", "broker"} <= set(data["peak_rss_mb_by_process"])
    assert data["peak_rss_mb"] == max(data["peak_rss_mb_by_process"].values())
    assert {"actes.tdt", "actes.sae", "helios.tdt"} <= set(data["stage_latency_ms"])
    # What a document costs, so that a regression shows in one run (issue 13).
    for row in ("CPU per document", "SQL statements / document", "Kafka messages / document",
                "HTTP requests / document"):
        assert row in run.stdout
    by_process = data["cpu_ms_per_doc_by_process"]
    assert {"api", "worker-1", "simulators", "broker"} <= set(by_process)
    assert all(ms >= 0 for ms in by_process.values()) and by_process["worker-1"] > 0
    assert data["cpu_ms_per_doc"] == pytest.approx(sum(by_process.values()), abs=0.05)
    assert 1 < data["cpu_ms_per_doc"] < 10_000
    assert 10 <= data["sql_statements_per_doc"] < 2_000  # deposit, moves, journal, outbox, effects
    assert 5 <= data["kafka_messages_per_doc"] < 500  # several hops per document, changelogs
    assert 3 <= data["http_requests_per_doc"] < 200  # every document goes to the TdT and the SAE
