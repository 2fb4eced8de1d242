"""All simulators under one port, as `dematbus up` runs them:

    /s2low       S²low + préfecture (ACTES)        connectors.simulators.s2low
    /asalae      As@lae (SEDA 2.1 archive)          connectors.simulators.asalae
    /iparapheur  i-Parapheur v5 REST                connectors.simulators.iparapheur
    /coffre      digital safe (payslip delivery)    connectors.simulators.coffre

Each keeps its state in `<state_dir>/<name>.json`, so a restart finds earlier transactions
(`persist=False` keeps it in memory only: the benchmark's throw-away stack, where rewriting a
state that grows with every document would make the simulators the bottleneck).
`delay` (seconds) paces every asynchronous answer: the préfecture's AR, the SAE's reply, the
signatory's decision.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from connectors.simulators import asalae, coffre, iparapheur, s2low


def create_hub(state_dir: Path, delay: float = 1.0, persist: bool = True) -> FastAPI:
    state_dir.mkdir(parents=True, exist_ok=True)

    def state(name: str) -> Path | None:
        return state_dir / f"{name}.json" if persist else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # Mounted apps get no lifespan of their own: write their pending state snapshots here.
        for route in app.routes:
            sim = getattr(getattr(getattr(route, "app", None), "state", None), "sim", None)
            if hasattr(sim, "flush"):
                sim.flush()

    hub = FastAPI(title="dematbus simulators", lifespan=lifespan)
    hub.mount("/s2low", s2low.create_app(s2low.S2lowSimSettings(
        trigramme="DMB", quadrigramme="EACT", validation_delay=delay / 3, transmit_delay=delay / 3,
        ack_delay=delay / 3, state_file=state("s2low"),
    )))
    hub.mount("/asalae", asalae.create_app(asalae.AsalaeSimSettings(
        login="dematbus", password="asalae", reply_delay=delay, state_file=state("asalae"),
    )))
    hub.mount("/iparapheur", iparapheur.create_app(iparapheur.IparapheurSimSettings(
        username="dematbus", password="iparapheur", sign_delay=delay, data_dir=state_dir,
        state_file=state("iparapheur"),
    )))
    hub.mount("/coffre", coffre.create_app(coffre.CoffreSimSettings(
        receipt_delay=delay, state_file=state("coffre"),
    )))

    @hub.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return hub
