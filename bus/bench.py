"""`dematbus bench`: the real pipeline on the embedded stack, measured.

It starts its own stack in a temporary directory (broker, simulators at zero delay, API, worker),
then measures:
- latency: actes deposited one at a time, each followed to `archived` (deposit → archived);
- throughput: a burst of actes deposited at once, until all are archived.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import httpx
from rich.progress import Progress

from bus.collectivites import add_collectivite, simulator_connectors
from bus.demo import register_at_simulators
from bus.stack import Stack
from bus.store.apikeys import create_key
from bus.store.db import Store
from connectors.signature.pdf import make_pdf

SIREN, NAME, DEP, ARR, NATURE = "214400152", "Commune de mesure", "044", "1", "31"
FAST = {"DEMATBUS_POLL_INTERVAL": "0.05", "DEMATBUS_SIM_DELAY": "0", "DEMATBUS_RETRY_BACKOFF": "0.2"}


@dataclass
class BenchResult:
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_max: float
    burst_docs: int
    burst_seconds: float
    docs_per_s: float
    deposits_per_s: float


async def _setup(stack: Stack) -> str:
    store = Store(stack.settings.db_url)
    await store.migrate()
    async with store.transaction() as session:
        await add_collectivite(session, siren=SIREN, name=NAME, departement=DEP, arrondissement=ARR,
                               nature_code=NATURE, connectors=simulator_connectors(SIREN))
        key = await create_key(session, [SIREN], ["depositor"], name="bench")
    await store.close()
    return key


def _deposit(client: httpx.Client, key: str, numero: str, pdf: bytes) -> str:
    meta = {"nature": 1, "numero_interne": numero, "date_decision": date.today().isoformat(),
            "objet": f"Délibération {numero}", "classification": "1.1"}
    resp = client.post("/api/v1/documents", headers={"Authorization": f"Bearer {key}"},
                       data={"flow": "actes", "siren": SIREN, "metadata": json.dumps(meta)},
                       files={"document": ("deliberation.pdf", pdf, "application/pdf")})
    resp.raise_for_status()
    return resp.json()["id"]


def _state(client: httpx.Client, key: str, doc_id: str) -> str:
    return client.get(f"/api/v1/documents/{doc_id}", headers={"Authorization": f"Bearer {key}"}).json()["state"]


def run_bench(latency_docs: int = 10, burst_docs: int = 100, data_dir: Path | None = None) -> BenchResult:
    tmp = tempfile.TemporaryDirectory(prefix="dematbus-bench-") if data_dir is None else None
    stack = Stack(Path(tmp.name) if tmp else data_dir, env=FAST)  # type: ignore[arg-type]
    try:
        stack.start_broker()
        key = asyncio.run(_setup(stack))
        stack.start_simulators()
        stack.start_api()
        stack.start_worker()
        stack.wait_healthy()
        register_at_simulators(stack.simulators_url, [(SIREN, NAME, DEP, ARR, NATURE)])
        pdf = make_pdf("Délibération", ["mesure"])
        latencies: list[float] = []
        with httpx.Client(base_url=stack.api_url, timeout=60) as client, Progress() as progress:
            task = progress.add_task("latency (one acte at a time)", total=latency_docs)
            for i in range(latency_docs + 1):  # the first acte warms up the consumer group: not counted
                start = time.perf_counter()
                doc_id = _deposit(client, key, f"LAT{i:05d}", pdf)
                while _state(client, key, doc_id) != "archived":
                    time.sleep(0.01)
                if i:
                    latencies.append((time.perf_counter() - start) * 1000)
                    progress.advance(task)
            task = progress.add_task(f"burst of {burst_docs} actes", total=burst_docs)
            start = time.perf_counter()
            ids = [_deposit(client, key, f"BURST{i:05d}", pdf) for i in range(burst_docs)]
            deposit_seconds = time.perf_counter() - start
            pending = set(ids)
            while pending:
                pending = {d for d in pending if _state(client, key, d) != "archived"}
                progress.update(task, completed=burst_docs - len(pending))
                time.sleep(0.1)
            burst_seconds = time.perf_counter() - start
        latencies.sort()
        return BenchResult(
            latency_ms_p50=round(statistics.median(latencies), 1),
            latency_ms_p95=round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))], 1),
            latency_ms_max=round(latencies[-1], 1),
            burst_docs=burst_docs,
            burst_seconds=round(burst_seconds, 2),
            docs_per_s=round(burst_docs / burst_seconds, 1),
            deposits_per_s=round(burst_docs / deposit_seconds, 1),
        )
    finally:
        stack.stop()
        if tmp:
            tmp.cleanup()


def as_json(result: BenchResult) -> str:
    return json.dumps(asdict(result), indent=2)
