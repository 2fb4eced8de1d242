"""Fixtures for the signature tests: test certificates and a REAL i-Parapheur simulator server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from connectors.base import Collectivite, InputFile, StageJob
from connectors.signature.certificates import make_test_certificate
from connectors.signature.pdf import make_pdf
from connectors.simulators.iparapheur import IparapheurSimSettings, create_app


@dataclass
class RunningServer:
    base_url: str
    app: FastAPI
    client: httpx.Client  # reused: building an httpx client (SSL context) costs tens of ms

    def admin(self, method: str, path: str, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
        response = self.client.request(method, f"{self.base_url}{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response


def _serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 on a free port, in a thread, for real HTTP."""
    # proto must be explicit: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
    # IPPROTO_TCP, and without it every response pays a ~40 ms Nagle/delayed-ACK stall.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("simulator did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def sim_settings(tmp_path: Path) -> IparapheurSimSettings:
    return IparapheurSimSettings(username="bus", password="s3cret", data_dir=tmp_path / "sim")


@pytest.fixture
def serve_app() -> Iterator[Callable[[FastAPI], str]]:
    """``serve_app(app) -> base_url``: any ASGI app on a real HTTP server, stopped after the test."""
    running: list[Iterator[str]] = []

    def serve(app: FastAPI) -> str:
        gen = _serve(app)
        base_url = next(gen)
        running.append(gen)
        return base_url

    yield serve
    for gen in running:
        next(gen, None)


@pytest.fixture
def start_simulator(serve_app) -> Iterator[Callable[[IparapheurSimSettings], RunningServer]]:  # type: ignore[no-untyped-def]
    client = httpx.Client()

    def start(settings: IparapheurSimSettings) -> RunningServer:
        app = create_app(settings)
        return RunningServer(serve_app(app), app, client)

    yield start
    client.close()


@pytest.fixture
def simulator(start_simulator, sim_settings) -> RunningServer:  # type: ignore[no-untyped-def]
    return start_simulator(sim_settings)


@pytest.fixture(scope="session")
def collectivite_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_test_certificate(
        "Mairie de Testville - Maire", "Commune de Testville", tmp_path_factory.mktemp("cert")
    )


def _make_job(reference: str, *, annexe: bool = True, **metadata: str) -> StageJob:
    files = [
        InputFile(
            name="délibération 2024-001.pdf",
            role="document",
            data=make_pdf("Délibération n° 2024-001", ["Le conseil municipal, après en avoir délibéré…"]),
        )
    ]
    if annexe:
        files.append(InputFile(name="annexe-budget.pdf", role="annexe", data=make_pdf("Annexe budgétaire")))
    return StageJob(
        document_id="doc-1",
        reference=reference,
        flow="actes",
        stage="signature",
        collectivite=Collectivite(
            siren="213401234",
            name="Commune de Testville",
            departement="034",
            arrondissement="1",
            nature_code="31",
        ),
        metadata={"objet": "Vote du budget primitif", **metadata},
        files=files,
    )


@pytest.fixture
def make_job() -> Callable[..., StageJob]:
    """``make_job(reference, annexe=True, **metadata)``: an ACTES signature job with a real PDF."""
    return _make_job
