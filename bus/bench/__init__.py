"""`dematbus bench`: the real pipeline measured against what this machine can do at best.

Read top to bottom: start a private embedded stack → measure the ceilings on it (bare Kafka,
bare faust, RSA, database commits) → run the workload through the pipeline → divide.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.progress import Progress

from bus.bench import ceilings
from bus.bench.pipeline import (
    BenchOptions,
    PipelineFigures,
    new_stack,
    run_pipeline,
    temporary_dir,
)

__all__ = ["BenchOptions", "BenchResult", "run_bench"]


@dataclass
class BenchResult:
    options: dict[str, Any]
    pipeline: PipelineFigures
    ceilings: ceilings.Ceilings | None

    @property
    def ratios(self) -> dict[str, float]:
        if self.ceilings is None:
            return {}
        docs = self.pipeline.docs_per_s
        c = self.ceilings
        return {
            "faust_3hop": _significant(docs / c.faust_3hop_events_per_s),
            "aiokafka": _significant(docs / c.aiokafka_msgs_per_s),
            "rsa2048": _significant(docs / c.rsa2048_signs_per_s),
            "db_commits": _significant(docs / c.db_commits_per_s),
        }

    def to_json(self) -> dict[str, Any]:
        p = self.pipeline
        return {
            "options": self.options,
            "docs": p.docs,
            "seconds": p.seconds,
            "docs_per_s": p.docs_per_s,
            "docs_per_s_by_flow": p.per_flow_docs_per_s,
            "deposits_per_s": p.deposits_per_s,
            "latency_ms": p.latency_ms,
            "stage_latency_ms": p.stage_latency_ms,
            "states": p.states,
            "peak_rss_mb": max(p.peak_rss_mb.values(), default=0.0),
            "peak_rss_mb_by_process": p.peak_rss_mb,
            **p.per_doc,
            "ceilings": asdict(self.ceilings) if self.ceilings else None,
            "ratios": self.ratios,
        }


def run_bench(options: BenchOptions, *, measure_ceilings: bool = True, ceiling_scale: float = 1.0,
              data_dir: Path | None = None) -> BenchResult:
    tmp = temporary_dir() if data_dir is None else None
    stack = new_stack(options, Path(tmp.name) if tmp else data_dir)  # type: ignore[arg-type]
    try:
        stack.start_broker()
        with Progress() as progress:
            measured = None
            if measure_ceilings:
                task = progress.add_task("ceilings: aiokafka, faust 3-hop, RSA-2048, database commits", total=None)
                measured = ceilings.measure(stack.bootstrap, stack.settings.db_url, ceiling_scale)
                progress.remove_task(task)
            figures = run_pipeline(options, stack, progress)
        return BenchResult(options={**asdict(options), "database_url": _redacted(options.database_url)},
                           pipeline=figures, ceilings=measured)
    finally:
        stack.stop()
        if tmp:
            tmp.cleanup()


def _significant(value: float) -> float:
    return float(f"{value:.4g}")


def _redacted(url: str | None) -> str:
    if not url:
        return "sqlite (embedded)"
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def dumps(result: BenchResult) -> str:
    return json.dumps(result.to_json(), indent=2)
